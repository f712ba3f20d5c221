package docker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

// Create makes a container (not started) from spec and returns its id. A
// name already in use is reported around errdefs.ErrAlreadyExists, a missing
// image around errdefs.ErrNotFound.
func (r *Runtime) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	opts, err := createOptions(spec)
	if err != nil {
		return "", err
	}
	res, err := r.c.ContainerCreate(ctx, opts)
	if err != nil {
		return "", engineError(ctx, fmt.Sprintf("create container %q (image %q)", spec.Name, spec.Image), err, errdefs.ErrAlreadyExists)
	}
	for _, w := range res.Warnings {
		r.log.Warn("engine warning on create", "container_id", res.ID, "container_name", spec.Name, "warning", w)
	}
	r.log.Debug("container created", "container_id", res.ID, "container_name", spec.Name, "image", spec.Image)
	return res.ID, nil
}

// Start starts a created (or exited) container.
func (r *Runtime) Start(ctx context.Context, id string) error {
	_, err := r.c.ContainerStart(ctx, id, client.ContainerStartOptions{})
	return engineError(ctx, fmt.Sprintf("start container %q", id), err, errdefs.ErrFailedPrecondition)
}

// Stop sends the container's stop signal, waits up to timeout (rounded up to
// whole seconds, the engine's unit), then kills it. Stopping a container
// that is not running is not an error. The call returns once the container
// has stopped, so ctx should allow for timeout plus the engine's overhead.
func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	secs := max(0, int(math.Ceil(timeout.Seconds())))
	_, err := r.c.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
	return engineError(ctx, fmt.Sprintf("stop container %q", id), err, errdefs.ErrFailedPrecondition)
}

// Remove deletes a container, killing it first if it runs, together with
// its anonymous volumes.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	_, err := r.c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	return engineError(ctx, fmt.Sprintf("remove container %q", id), err, errdefs.ErrFailedPrecondition)
}

// Inspect returns a container's current state. For a container that joined
// another's network namespace (network mode container:<id>), IPAddress is
// the address of that namespace, read from the container that owns it.
// Ports and IPAddress are empty once the container has stopped.
//
// OOMKilled is not reliable on its own: Docker 20.10 takes it from the
// exit containerd reports, which carries it only if the kernel's OOM
// notification came first. When the notification comes second the oom event
// is still published, but OOMKilled stays false; callers should take an
// oom event for the container as authoritative. A process killed right at
// exec, before the engine watches its cgroup, may get neither.
//
// Health is empty until the container first starts.
func (r *Runtime) Inspect(ctx context.Context, id string) (runtime.ContainerState, error) {
	res, err := r.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return runtime.ContainerState{}, engineError(ctx, fmt.Sprintf("inspect container %q", id), err, errdefs.ErrFailedPrecondition)
	}
	st := containerState(res.Container)
	if hc := res.Container.HostConfig; hc != nil && hc.NetworkMode.IsContainer() {
		owner, err := r.c.ContainerInspect(ctx, hc.NetworkMode.ConnectedContainer(), client.ContainerInspectOptions{})
		if err == nil {
			st.IPAddress = ipAddress(owner.Container)
		}
	}
	return st, nil
}

// List returns the containers, running or not, carrying all the given
// labels (all containers if labels is empty), in creation order.
func (r *Runtime) List(ctx context.Context, labels map[string]string) ([]runtime.ContainerState, error) {
	res, err := r.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilters(labels)})
	if err != nil {
		return nil, engineError(ctx, "list containers", err, errdefs.ErrFailedPrecondition)
	}
	// The list summary lacks exit codes, health and times: inspect each one.
	out := make([]runtime.ContainerState, 0, len(res.Items))
	for _, c := range res.Items {
		st, err := r.Inspect(ctx, c.ID)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b runtime.ContainerState) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// labelFilters turns a label set into the engine's filter arguments.
func labelFilters(labels map[string]string) client.Filters {
	f := client.Filters{}
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	return f
}

// containerState converts the engine's inspect answer.
func containerState(c container.InspectResponse) runtime.ContainerState {
	st := runtime.ContainerState{
		ID:        c.ID,
		Name:      strings.TrimPrefix(c.Name, "/"),
		Image:     c.Image,
		CreatedAt: parseTime(c.Created),
		IPAddress: ipAddress(c),
	}
	if c.Config != nil {
		st.Image = c.Config.Image
		st.Labels = c.Config.Labels
	}
	if s := c.State; s != nil {
		st.Status = string(s.Status)
		st.Running = s.Running
		st.ExitCode = s.ExitCode
		st.OOMKilled = s.OOMKilled
		st.Error = s.Error
		st.Pid = s.Pid
		st.StartedAt = parseTime(s.StartedAt)
		st.FinishedAt = parseTime(s.FinishedAt)
		if s.Health != nil && s.Health.Status != container.NoHealthcheck {
			st.Health = string(s.Health.Status)
		}
	}
	if ns := c.NetworkSettings; ns != nil {
		st.Ports = boundPorts(ns)
	}
	return st
}

// boundPorts lists the published ports with the host ports the engine
// actually bound. The engine reports a binding once per address family
// (0.0.0.0 and ::) with the same host port; the IPv4 one is kept.
func boundPorts(ns *container.NetworkSettings) []runtime.PortBinding {
	var out []runtime.PortBinding
	for port, bindings := range ns.Ports {
		seen := map[uint16]int{}
		for _, b := range bindings {
			hp, err := strconv.ParseUint(b.HostPort, 10, 16)
			if err != nil || hp == 0 {
				continue
			}
			pb := runtime.PortBinding{
				ContainerPort: port.Num(),
				Protocol:      string(port.Proto()),
				HostPort:      uint16(hp),
			}
			if b.HostIP.IsValid() {
				pb.HostIP = b.HostIP.String()
			}
			if i, dup := seen[pb.HostPort]; dup {
				if b.HostIP.Is4() {
					out[i] = pb
				}
				continue
			}
			seen[pb.HostPort] = len(out)
			out = append(out, pb)
		}
	}
	slices.SortFunc(out, func(a, b runtime.PortBinding) int {
		return cmp.Or(cmp.Compare(a.ContainerPort, b.ContainerPort), strings.Compare(a.Protocol, b.Protocol),
			cmp.Compare(a.HostPort, b.HostPort), strings.Compare(a.HostIP, b.HostIP))
	})
	return out
}

// ipAddress is the container's IPv4 address on its own network: the one its
// network mode names if any, else the first network (by name) that has one.
func ipAddress(c container.InspectResponse) string {
	if c.NetworkSettings == nil {
		return ""
	}
	nets := c.NetworkSettings.Networks
	if c.HostConfig != nil {
		mode := string(c.HostConfig.NetworkMode)
		if mode == "default" || mode == "" {
			mode = "bridge"
		}
		if ep := nets[mode]; ep != nil && ep.IPAddress.IsValid() {
			return ep.IPAddress.String()
		}
	}
	names := make([]string, 0, len(nets))
	for name := range nets {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if ep := nets[name]; ep != nil && ep.IPAddress.IsValid() {
			return ep.IPAddress.String()
		}
	}
	return ""
}

// parseTime parses the engine's RFC 3339 times; the engine's zero time
// ("0001-01-01T00:00:00Z") and unparsable values become the zero time.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}
