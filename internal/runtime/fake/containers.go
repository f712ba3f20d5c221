package fake

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

// container is one container record. Fields are guarded by Runtime.mu.
type container struct {
	id    string
	seq   int
	spec  runtime.ContainerSpec
	state runtime.ContainerState
	// stopExitCode is the code Stop ends the container with.
	stopExitCode int
	stats        json.RawMessage
	logs         []byte
	// changed is closed (and replaced) when logs grow or the state changes,
	// to wake followers of the logs.
	changed chan struct{}
	removed bool
}

// notify wakes the container's log followers. The caller holds Runtime.mu.
func (c *container) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// lookup finds a container by id or name. The caller holds r.mu.
func (r *Runtime) lookup(idOrName string) (*container, error) {
	if c, ok := r.containers[idOrName]; ok {
		return c, nil
	}
	if id, ok := r.names[strings.TrimPrefix(idOrName, "/")]; ok {
		return r.containers[id], nil
	}
	return nil, fmt.Errorf("container %q: %w", idOrName, errdefs.ErrNotFound)
}

// targets are the names a container call may have been faulted under.
func targets(idOrName string, c *container) []string {
	if c == nil {
		return []string{idOrName}
	}
	return []string{idOrName, c.id, c.spec.Name}
}

// Create records a container in state created. The image must be present
// (errdefs.ErrNotFound otherwise), the name free (errdefs.ErrAlreadyExists),
// and containers named by a container:<id> network mode or by VolumesFrom
// must exist. Named volumes that do not exist are created, as the engine
// does.
func (r *Runtime) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, err := r.begin(ctx, Call{Method: MethodCreate, Target: spec.Name, Spec: cloneSpec(spec)}, spec.Name, spec.Image)
	if err != nil {
		return "", err
	}
	if spec.Image == "" {
		return "", r.end(i, fmt.Errorf("create container %q: no image: %w", spec.Name, errdefs.ErrInvalidArgument))
	}
	if !r.images[spec.Image] {
		return "", r.end(i, fmt.Errorf("create container %q: image %q: %w", spec.Name, spec.Image, errdefs.ErrNotFound))
	}
	if _, taken := r.names[spec.Name]; taken && spec.Name != "" {
		return "", r.end(i, fmt.Errorf("create container %q: name in use: %w", spec.Name, errdefs.ErrAlreadyExists))
	}
	if owner, ok := strings.CutPrefix(spec.NetworkMode, "container:"); ok {
		if _, err := r.lookup(owner); err != nil {
			return "", r.end(i, fmt.Errorf("create container %q: network mode: %w", spec.Name, err))
		}
	}
	for _, from := range spec.VolumesFrom {
		id, _, _ := strings.Cut(from, ":")
		if _, err := r.lookup(id); err != nil {
			return "", r.end(i, fmt.Errorf("create container %q: volumes from: %w", spec.Name, err))
		}
	}
	for _, m := range spec.Mounts {
		if m.Type != "bind" && m.Source != "" {
			if _, ok := r.volumes[m.Source]; !ok {
				r.volumes[m.Source] = Volume{Name: m.Source, Driver: "local"}
			}
		}
	}

	r.seq++
	c := &container{id: containerID(r.seq), seq: r.seq, spec: cloneSpec(spec), changed: make(chan struct{})}
	if c.spec.Name == "" {
		c.spec.Name = fmt.Sprintf("fake_%d", r.seq)
	}
	c.state = runtime.ContainerState{
		ID:        c.id,
		Name:      c.spec.Name,
		Image:     spec.Image,
		Labels:    maps.Clone(spec.Labels),
		Status:    "created",
		CreatedAt: r.now(),
	}
	r.containers[c.id] = c
	r.names[c.spec.Name] = c.id
	return c.id, nil
}

// hasHealthcheck reports whether the spec asks for a health check.
func hasHealthcheck(spec runtime.ContainerSpec) bool {
	h := spec.Healthcheck
	return h != nil && len(h.Test) > 0 && h.Test[0] != "NONE"
}

// Start moves a created or exited container to running: it gets a pid, an
// address (172.17.0.x on a bridge; its owner's in a container:<id> network
// mode), its host ports (0 gets the next port of the counter) and, if it has
// a health check, health "starting". Starting a running container does
// nothing; joining the namespace of a container that is not running is
// refused with errdefs.ErrFailedPrecondition.
func (r *Runtime) Start(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, lookupErr := r.lookup(id)
	i, err := r.begin(ctx, Call{Method: MethodStart, Target: id}, targets(id, c)...)
	if err != nil {
		return err
	}
	if lookupErr != nil {
		return r.end(i, fmt.Errorf("start: %w", lookupErr))
	}
	if c.state.Running {
		return nil
	}
	if owner, ok := strings.CutPrefix(c.spec.NetworkMode, "container:"); ok {
		o, err := r.lookup(owner)
		if err != nil || !o.state.Running {
			return r.end(i, fmt.Errorf("start container %s: cannot join the network of container %q, which is not running: %w", c.id, owner, errdefs.ErrFailedPrecondition))
		}
	}

	st := &c.state
	st.Status = "running"
	st.Running = true
	st.ExitCode = 0
	st.OOMKilled = false
	st.Error = ""
	st.StartedAt = r.now()
	st.FinishedAt = time.Time{}
	st.Pid = 1000 + c.seq
	switch c.spec.NetworkMode {
	case "", "bridge", "default":
		st.IPAddress = fmt.Sprintf("172.17.%d.%d", (c.seq+1)/256, (c.seq+1)%256)
	}
	st.Ports = nil
	for _, pb := range c.spec.PortBindings {
		if pb.Protocol == "" {
			pb.Protocol = "tcp"
		}
		if pb.HostIP == "" {
			pb.HostIP = "0.0.0.0"
		}
		if pb.HostPort == 0 {
			pb.HostPort = r.nextPort
			r.nextPort++
		}
		st.Ports = append(st.Ports, pb)
	}
	if hasHealthcheck(c.spec) {
		st.Health = runtime.HealthStarting
	}
	c.notify()
	r.publish(c, "start", nil)
	return nil
}

// Stop ends a running container with its stop exit code (0 unless
// SetStopExitCode says otherwise), publishing kill, die and stop. The
// timeout is recorded, not waited. Stopping a container that is not running
// does nothing.
func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, lookupErr := r.lookup(id)
	i, err := r.begin(ctx, Call{Method: MethodStop, Target: id, Timeout: timeout}, targets(id, c)...)
	if err != nil {
		return err
	}
	if lookupErr != nil {
		return r.end(i, fmt.Errorf("stop: %w", lookupErr))
	}
	if !c.state.Running {
		return nil
	}
	r.publish(c, "kill", nil)
	r.exit(c, c.stopExitCode, false)
	r.publish(c, "stop", nil)
	return nil
}

// Remove deletes a container, killing it first (exit code 137) if it runs,
// and publishes destroy.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, lookupErr := r.lookup(id)
	i, err := r.begin(ctx, Call{Method: MethodRemove, Target: id}, targets(id, c)...)
	if err != nil {
		return err
	}
	if lookupErr != nil {
		return r.end(i, fmt.Errorf("remove: %w", lookupErr))
	}
	if c.state.Running {
		r.publish(c, "kill", nil)
		r.exit(c, 137, false)
	}
	c.removed = true
	delete(r.containers, c.id)
	delete(r.names, c.spec.Name)
	c.notify()
	r.publish(c, "destroy", nil)
	return nil
}

// exit moves a running container to exited and publishes die. The caller
// holds r.mu.
func (r *Runtime) exit(c *container, code int, oom bool) {
	st := &c.state
	st.Status = "exited"
	st.Running = false
	st.ExitCode = code
	st.OOMKilled = oom
	st.FinishedAt = r.now()
	st.Pid = 0
	st.IPAddress = ""
	st.Ports = nil
	c.notify()
	r.publish(c, "die", func(ev *runtime.Event) { ev.ExitCode = code })
}

// Inspect returns a container's state, by id or name.
func (r *Runtime) Inspect(ctx context.Context, id string) (runtime.ContainerState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, lookupErr := r.lookup(id)
	i, err := r.begin(ctx, Call{Method: MethodInspect, Target: id}, targets(id, c)...)
	if err != nil {
		return runtime.ContainerState{}, err
	}
	if lookupErr != nil {
		return runtime.ContainerState{}, r.end(i, fmt.Errorf("inspect: %w", lookupErr))
	}
	return r.stateOf(c), nil
}

// stateOf copies a container's state, resolving the address of a joined
// network namespace. The caller holds r.mu.
func (r *Runtime) stateOf(c *container) runtime.ContainerState {
	st := c.state
	st.Labels = maps.Clone(st.Labels)
	st.Ports = slices.Clone(st.Ports)
	if owner, ok := strings.CutPrefix(c.spec.NetworkMode, "container:"); ok {
		if o, err := r.lookup(owner); err == nil {
			st.IPAddress = o.state.IPAddress
		}
	}
	return st
}

// List returns the containers carrying all the given labels, in creation
// order.
func (r *Runtime) List(ctx context.Context, labels map[string]string) ([]runtime.ContainerState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.begin(ctx, Call{Method: MethodList, Labels: maps.Clone(labels)}); err != nil {
		return nil, err
	}
	var found []*container
	for _, c := range r.containers {
		if hasLabels(c.spec.Labels, labels) {
			found = append(found, c)
		}
	}
	slices.SortFunc(found, func(a, b *container) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]runtime.ContainerState, 0, len(found))
	for _, c := range found {
		out = append(out, r.stateOf(c))
	}
	return out, nil
}

// hasLabels reports whether have includes every label of want.
func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// Spec returns the spec a container was created with.
func (r *Runtime) Spec(idOrName string) (runtime.ContainerSpec, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.lookup(idOrName)
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	return cloneSpec(c.spec), nil
}

// cloneSpec deep-copies the parts of a spec a caller might mutate.
func cloneSpec(s runtime.ContainerSpec) runtime.ContainerSpec {
	s.Entrypoint = slices.Clone(s.Entrypoint)
	s.Cmd = slices.Clone(s.Cmd)
	s.Env = slices.Clone(s.Env)
	s.Labels = maps.Clone(s.Labels)
	s.Ulimits = slices.Clone(s.Ulimits)
	s.CapAdd = slices.Clone(s.CapAdd)
	s.CapDrop = slices.Clone(s.CapDrop)
	s.Sysctls = maps.Clone(s.Sysctls)
	s.ExtraHosts = slices.Clone(s.ExtraHosts)
	s.DNSServers = slices.Clone(s.DNSServers)
	s.DNSSearch = slices.Clone(s.DNSSearch)
	s.PortBindings = slices.Clone(s.PortBindings)
	s.Mounts = slices.Clone(s.Mounts)
	s.VolumesFrom = slices.Clone(s.VolumesFrom)
	s.LogOptions = maps.Clone(s.LogOptions)
	if s.Healthcheck != nil {
		h := *s.Healthcheck
		h.Test = slices.Clone(h.Test)
		s.Healthcheck = &h
	}
	return s
}
