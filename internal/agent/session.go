package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/errdefs"
)

// session registers the instance, then long-polls its desired state and
// hands it to the task managers, for as long as ctx lasts. Failures back
// off with jitter; tasks keep running meanwhile.
func (a *Agent) session(ctx context.Context) error {
	if err := a.register(ctx); err != nil {
		return err
	}
	bo := newBackoff(a.cfg.RetryMin, a.cfg.RetryMax)
	var after int64
	swept := false
	for {
		id := a.InstanceID()
		ds, err := a.client.Desired(ctx, id, after, a.cfg.PollWait)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, agentapi.ErrUnknownInstance) {
				a.log.Warn("control plane does not know this instance; registering afresh", "instance_id", id)
				if err := a.reregister(ctx, id); err != nil {
					return err
				}
				after = 0
				continue
			}
			d := bo.Next()
			a.log.Warn("desired state poll failed", "err", err, "retry_in", d)
			if !a.sleep(ctx, d) {
				return nil
			}
			continue
		}
		bo.Reset()
		after = ds.Revision
		a.apply(ds)
		if !swept {
			swept = true
			a.mu.Lock()
			a.spawnLocked(func() { a.sweepOrphans(ctx, ds) })
			a.mu.Unlock()
		}
		if ds.InstanceStatus == "INACTIVE" {
			return a.deregistered(ctx)
		}
	}
}

// register registers the instance, with its stored id if it has one,
// retrying until it succeeds. A refused join token ends the agent.
func (a *Agent) register(ctx context.Context) error {
	a.regMu.Lock()
	defer a.regMu.Unlock()
	return a.registerLocked(ctx)
}

// registerLocked is register with a.regMu held.
func (a *Agent) registerLocked(ctx context.Context) error {
	bo := newBackoff(a.cfg.RetryMin, a.cfg.RetryMax)
	for {
		req := a.registerRequest()
		resp, err := a.client.Register(ctx, req)
		switch {
		case err == nil:
			a.mu.Lock()
			a.id.InstanceID, a.id.ContainerInstanceArn, a.id.Cluster = resp.InstanceID, resp.ContainerInstanceArn, resp.Cluster
			if resp.InstanceSecret != "" {
				a.id.InstanceSecret = resp.InstanceSecret
			}
			id := a.id
			a.heartbeat = DefaultHeartbeat
			if resp.HeartbeatSeconds > 0 {
				a.heartbeat = time.Duration(resp.HeartbeatSeconds) * time.Second
			}
			if a.cfg.HeartbeatInterval > 0 && a.cfg.HeartbeatInterval < a.heartbeat {
				a.heartbeat = a.cfg.HeartbeatInterval
			}
			a.registry.registered(resp.Registries)
			select {
			case <-a.registered:
			default:
				close(a.registered)
			}
			a.mu.Unlock()
			if err := a.store.saveIdentity(id); err != nil {
				return fmt.Errorf("agent: persist identity: %w", err)
			}
			a.log.Info("registered", "instance_id", id.InstanceID, "container_instance_arn", id.ContainerInstanceArn, "cluster", id.Cluster)
			// The control plane may have lost what it knew: report every task.
			a.reporter.resendAll()
			return nil
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, agentapi.ErrSecretMismatch) && req.InstanceID != "":
			a.log.Warn("the stored instance belongs to another agent; registering as a new instance", "instance_id", req.InstanceID)
			a.forgetInstance()
			continue
		case errors.Is(err, agentapi.ErrUnknownInstance) && req.InstanceID != "":
			a.log.Warn("control plane does not know the stored instance id; registering afresh", "instance_id", req.InstanceID)
			a.forgetInstance()
			continue
		case errors.Is(err, agentapi.ErrUnauthorized):
			return fmt.Errorf("agent: register: %w", err)
		case errors.Is(err, agentapi.ErrDeregistered):
			// Deregistration is final, as in ECS: joining again as a new
			// instance takes removing the agent's state directory.
			return fmt.Errorf("%w (remove %s to register this host as a new instance): %v", ErrDeregistered, a.cfg.StateDir, err)
		}
		d := bo.Next()
		a.log.Warn("registration failed", "err", err, "retry_in", d)
		if !a.sleep(ctx, d) {
			return nil
		}
	}
}

// reregister registers afresh after the control plane answered that it
// does not know instance id stale, unless another loop already did.
func (a *Agent) reregister(ctx context.Context, stale string) error {
	a.regMu.Lock()
	defer a.regMu.Unlock()
	if a.InstanceID() != stale {
		return nil
	}
	a.forgetInstance()
	return a.registerLocked(ctx)
}

func (a *Agent) forgetInstance() {
	a.mu.Lock()
	a.id.InstanceID, a.id.ContainerInstanceArn, a.id.InstanceSecret = "", "", ""
	id := a.id
	a.mu.Unlock()
	if err := a.store.saveIdentity(id); err != nil {
		a.log.Error("persist identity", "err", err)
	}
}

// instanceSecret is the secret of the stored instance.
func (a *Agent) instanceSecret() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id.InstanceSecret
}

// registerRequest describes this host: CPU units (cores x 1024), memory
// less the reserve, reserved ports and attributes.
func (a *Agent) registerRequest() agentapi.RegisterRequest {
	hostname := a.cfg.Hostname
	if hostname == "" {
		hostname = a.info.Hostname
	}
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	ports := slices.Concat(ecsReservedPorts, []int{a.metadataPort}, a.cfg.ReservedPorts)
	slices.Sort(ports)
	ports = slices.Compact(ports)
	return agentapi.RegisterRequest{
		Cluster:          a.cfg.Cluster,
		InstanceID:       a.InstanceID(),
		InstanceSecret:   a.instanceSecret(),
		Hostname:         hostname,
		AgentVersion:     Version,
		DockerVersion:    a.info.EngineVersion,
		CPU:              a.info.CPUs * 1024,
		MemoryMiB:        max(0, int(a.info.MemoryBytes>>20)-a.cfg.ReservedMemoryMiB),
		ReservedPorts:    ports,
		ReservedUDPPorts: slices.Clone(a.cfg.ReservedUDPPorts),
		Attributes:       a.attributes(),
	}
}

// attributes are the built-in attributes, ECS's names for what this agent
// supports, plus the custom ones. Values are empty for name-only ones.
func (a *Agent) attributes() map[string]string {
	arch := hostArch(a.info)
	if arch == "amd64" {
		arch = "x86_64"
	}
	attrs := map[string]string{
		"ecs.os-type":                                           "linux",
		"ecs.cpu-architecture":                                  arch,
		"ecs.capability.container-health-check":                 "",
		"ecs.capability.container-ordering":                     "",
		"ecs.capability.docker-plugin.local":                    "",
		"com.amazonaws.ecs.capability.logging-driver.json-file": "",
		"com.amazonaws.ecs.capability.logging-driver.none":      "",
		"com.amazonaws.ecs.capability.privileged-container":     "",
	}
	for v := 17; v <= 41; v++ {
		attrs[fmt.Sprintf("com.amazonaws.ecs.capability.docker-remote-api.1.%d", v)] = ""
	}
	if p, ok := a.pause.(runtimePause); !ok || p.canProvide(a.runCtx) {
		// awsvpc works when the pause image can be had.
		attrs["ecs.capability.task-eni"] = ""
	}
	if addr := a.hostAddress(); addr != "" {
		attrs[HostAddressAttribute] = addr
	}
	for k, v := range a.cfg.Attributes {
		attrs[k] = v
	}
	return attrs
}

// HostAddressAttribute is the attribute in which the agent reports the
// address other hosts reach this one at: the control plane's load
// balancers send an instance target's traffic there.
const HostAddressAttribute = "berth.host-address"

// hostAddress is Config.HostAddress, or the local address of the route to
// the control plane (a UDP "connection" sends nothing): 127.0.0.1 for an
// agent beside its control plane, this host's address on the network the
// control plane is on otherwise.
func (a *Agent) hostAddress() string {
	if a.cfg.HostAddress != "" {
		return a.cfg.HostAddress
	}
	u, err := url.Parse(a.cfg.Endpoint)
	if err != nil || u.Host == "" {
		return ""
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	c, err := net.Dial("udp", host)
	if err != nil {
		return ""
	}
	defer c.Close()
	ua, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok {
		return ""
	}
	return ua.IP.String()
}

// apply hands a desired state to the task managers: new tasks get one,
// known tasks get their newest desired state, and known tasks the control
// plane no longer lists are stopped and, once cleaned up, forgotten.
func (a *Agent) apply(ds agentapi.DesiredState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := map[string]bool{}
	for _, dt := range ds.Tasks {
		seen[dt.TaskArn] = true
		if m, ok := a.tasks[dt.TaskArn]; ok {
			m.setDesired(dt)
			continue
		}
		a.log.Info("new task", "task_arn", dt.TaskArn, "desired_status", dt.DesiredStatus, "family", dt.Definition.Family)
		a.startManagerLocked(a.runCtx, newTaskRecord(dt, a.clock.Now()))
	}
	for arn, m := range a.tasks {
		if !seen[arn] {
			m.setAbsent()
		}
	}
}

// sweepOrphans stops and removes this agent's containers whose task is
// neither known nor desired (left by a crash or a lost state directory).
func (a *Agent) sweepOrphans(ctx context.Context, ds agentapi.DesiredState) {
	list, err := a.rt.List(ctx, map[string]string{labelAgentID: a.AgentID()})
	if err != nil {
		a.log.Warn("orphan sweep: list containers", "err", err)
		return
	}
	keep := map[string]bool{}
	for _, dt := range ds.Tasks {
		keep[dt.TaskArn] = true
	}
	a.mu.Lock()
	for arn := range a.tasks {
		keep[arn] = true
	}
	a.mu.Unlock()
	for _, c := range list {
		arn := c.Labels[labelTaskArn]
		if keep[arn] {
			continue
		}
		a.log.Info("removing orphan container", "task_arn", arn, "container_id", c.ID, "container", c.Labels[labelContainerName])
		if c.Running {
			if err := a.rt.Stop(ctx, c.ID, a.cfg.StopTimeout); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				a.log.Warn("orphan sweep: stop", "container_id", c.ID, "err", err)
				continue
			}
		}
		if err := a.rt.Remove(ctx, c.ID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			a.log.Warn("orphan sweep: remove", "container_id", c.ID, "err", err)
		}
	}
}

// deregistered handles an INACTIVE instance: every task is stopped and the
// final reports are sent (best effort). The instance id is kept, so a
// restarted agent is refused rather than joining again as a new instance.
func (a *Agent) deregistered(ctx context.Context) error {
	a.log.Warn("instance deregistered; stopping every task")
	a.apply(agentapi.DesiredState{})
	for !a.allStopped() {
		select {
		case <-ctx.Done():
			return nil
		case <-a.changed:
		}
	}
	if batch := a.reporter.batch(a.cfg.MaxReportBatch); len(batch) > 0 {
		if _, err := a.client.Report(ctx, a.InstanceID(), agentapi.Report{Tasks: batch}); err != nil {
			a.log.Warn("final report failed", "err", err)
		}
	}
	return ErrDeregistered
}

// allStopped reports whether every known task has reported STOPPED.
func (a *Agent) allStopped() bool {
	a.reporter.mu.Lock()
	defer a.reporter.mu.Unlock()
	for _, tr := range a.reporter.latest {
		if tr.LastStatus != statusStopped {
			return false
		}
	}
	return true
}

// reportLoop sends pending task reports in batches, resending until the
// control plane acknowledges them, and a heartbeat when idle.
func (a *Agent) reportLoop(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-a.registered:
	}
	bo := newBackoff(a.cfg.RetryMin, a.cfg.RetryMax)
	var seq uint64
	hb := a.clock.NewTimer(a.heartbeatInterval())
	defer func() { hb.Stop() }()
	for {
		batch := a.reporter.batch(a.cfg.MaxReportBatch)
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-a.reporter.notify:
				continue
			case <-hb.C():
			}
		}
		id := a.InstanceID()
		if id == "" {
			// Between a refused instance id and the fresh registration.
			if !a.sleep(ctx, bo.Next()) {
				return nil
			}
			continue
		}
		seq++
		resp, err := a.client.Report(ctx, id, agentapi.Report{Seq: seq, Tasks: batch})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, agentapi.ErrUnknownInstance) {
				if err := a.reregister(ctx, id); err != nil {
					return err
				}
				continue
			}
			d := bo.Next()
			a.log.Warn("report failed; will resend", "tasks", len(batch), "pending", a.reporter.size(), "err", err, "retry_in", d)
			if !a.sleep(ctx, d) {
				return nil
			}
			continue
		}
		bo.Reset()
		a.reporter.ack(batch)
		if len(batch) > 0 {
			a.log.Debug("reported", "seq", seq, "tasks", len(batch), "applied", resp.Applied)
		}
		hb.Stop()
		hb = a.clock.NewTimer(a.heartbeatInterval())
	}
}

func (a *Agent) heartbeatInterval() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.heartbeat <= 0 {
		return DefaultHeartbeat
	}
	return a.heartbeat
}
