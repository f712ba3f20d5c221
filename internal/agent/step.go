package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

// step moves the task by one operation toward its desired state (see the
// diagram in task.go): one engine call, or one lastStatus transition. It
// reports whether anything changed; false means the task waits for an
// event, a deadline or a retry.
func (m *manager) step(ctx context.Context) bool {
	r := m.rec
	now := m.a.clock.Now()
	if m.planErr != nil && !r.stopRequested() && r.Status != statusNone {
		return m.failPlan(m.planErr)
	}
	switch r.Status {
	case statusNone:
		if r.stopRequested() {
			return m.finishUnstarted(ctx)
		}
		m.transition(statusProvisioning)
		return true
	case statusProvisioning:
		if r.stopRequested() {
			return m.beginStop(statusStopping)
		}
		return m.provision(ctx)
	case statusPending:
		if r.stopRequested() {
			return m.beginStop(statusStopping)
		}
		return m.advance(ctx)
	case statusActivating:
		if r.stopRequested() {
			return m.beginStop(statusDeactivating)
		}
		r.StartedAt = timePtr(now)
		m.transition(statusRunning)
		return true
	case statusRunning:
		if r.stopRequested() {
			return m.beginStop(statusDeactivating)
		}
		return false
	case statusDeactivating:
		m.transition(statusStopping)
		return true
	case statusStopping:
		return m.stopContainers(ctx)
	case statusDeprovisioning:
		return m.deprovision(ctx)
	case statusStopped:
		return m.cleanup(ctx)
	}
	m.log.Error("task in an unknown status; stopping it", "status", r.Status)
	r.fail(ecstypes.TaskStopCodeTaskFailedToStart, fmt.Sprintf("Berth agent: unknown task status %q", r.Status))
	r.Status = statusStopping
	return true
}

// beginStop leaves the running side of the lifecycle.
func (m *manager) beginStop(next string) bool {
	if m.rec.StoppingAt == nil {
		m.rec.StoppingAt = timePtr(m.a.clock.Now())
	}
	m.transition(next)
	return true
}

// finishUnstarted stops a task that is to stop before it ever started:
// whatever containers of it exist (an agent that lost its state) are
// removed, and it is STOPPED.
func (m *manager) finishUnstarted(ctx context.Context) bool {
	r := m.rec
	stray, err := m.a.rt.List(ctx, map[string]string{labelTaskArn: r.TaskArn, labelAgentID: m.env.agentID})
	if err != nil {
		return m.retry("list", err)
	}
	for _, st := range stray {
		if err := m.a.rt.Remove(ctx, st.ID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return m.retry("remove", err)
		}
	}
	m.succeeded()
	now := m.a.clock.Now()
	for _, c := range r.Containers {
		c.NeverStarted = true
	}
	r.StoppingAt, r.ExecutionStoppedAt, r.StoppedAt = timePtr(now), timePtr(now), timePtr(now)
	r.CleanedUp = true
	m.transition(statusStopped)
	return true
}

// failPlan stops a task whose definition cannot run here.
func (m *manager) failPlan(err error) bool {
	reason := err.Error()
	var u *unsupportedError
	if !errors.As(err, &u) {
		reason = "Invalid task definition: " + reason
	}
	m.rec.fail(ecstypes.TaskStopCodeTaskFailedToStart, reason)
	return true
}

// provision makes the task-level resources: task volumes, and for awsvpc
// the pause container that holds the network namespace.
func (m *manager) provision(ctx context.Context) bool {
	r, p := m.rec, m.plan
	for _, v := range p.volumes {
		if !v.create || slices.ContainsFunc(r.Volumes, func(rv volumeRecord) bool { return rv.Name == v.source }) {
			continue
		}
		if err := m.a.rt.CreateVolume(ctx, v.source, v.driver, v.driverOpts, v.labels); err != nil {
			if ctx.Err() != nil {
				return false
			}
			r.fail(ecstypes.TaskStopCodeTaskFailedToStart, fmt.Sprintf("CannotCreateVolumeError: volume %q: %v", v.name, err))
			return true
		}
		r.Volumes = append(r.Volumes, volumeRecord{Name: v.source, Remove: v.taskScoped})
		return true
	}
	if p.pause != nil {
		if r.Pause == nil {
			r.Pause = &containerRecord{Name: pauseContainerName, DockerName: p.pause.Name, Essential: true}
		}
		pc := r.Pause
		switch {
		case !pc.Created:
			image, err := m.a.pause.EnsurePauseImage(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return false
				}
				r.fail(ecstypes.TaskStopCodeTaskFailedToStart, "ResourceInitializationError: cannot provide the awsvpc pause image: "+err.Error())
				return true
			}
			spec := *p.pause
			spec.Image = image
			return m.create(ctx, pc, spec)
		case !pc.Started:
			return m.start(ctx, pc)
		case pc.IPAddress == "":
			st, err := m.a.rt.Inspect(ctx, pc.RuntimeID)
			if err != nil {
				return m.retry("inspect", err)
			}
			m.observe(pc, st)
			if pc.IPAddress == "" {
				r.fail(ecstypes.TaskStopCodeTaskFailedToStart, "ResourceInitializationError: the task's pause container has no IP address")
			}
			return true
		}
	}
	r.ConnectivityAt = timePtr(m.a.clock.Now())
	m.transition(statusPending)
	return true
}

// advance pulls the images, then creates and starts the containers in
// dependency order, one operation per call; when every container is
// running (or ran, or can never start) the task is ACTIVATING.
func (m *manager) advance(ctx context.Context) bool {
	r, p := m.rec, m.plan
	now := m.a.clock.Now()
	for i, c := range r.Containers {
		if c.Pulled {
			continue
		}
		if r.PullStartedAt == nil {
			r.PullStartedAt = timePtr(now)
		}
		return m.pull(ctx, c, p.containers[i].def.Image)
	}
	if r.PullStoppedAt == nil {
		r.PullStoppedAt = timePtr(now)
	}
	for _, i := range p.startOrder {
		c, cp := r.Containers[i], &p.containers[i]
		if c.settled() {
			continue
		}
		ready, never := m.dependencies(cp)
		switch {
		case never != "":
			return m.cannotStart(c, never)
		case !ready:
			if c.WaitingSince == nil {
				c.WaitingSince = timePtr(now)
			}
			if cp.startTimeout > 0 {
				due := c.WaitingSince.Add(cp.startTimeout)
				if !now.Before(due) {
					return m.cannotStart(c, fmt.Sprintf("Dependency not resolved: container %q waited longer than its startTimeout (%s) for its dependencies", c.Name, cp.startTimeout))
				}
				m.wakeAt(due)
			}
			continue
		case !c.Created:
			spec, err := m.resolve(cp)
			if err != nil {
				return m.cannotStart(c, err.Error())
			}
			return m.create(ctx, c, spec)
		default:
			return m.start(ctx, c)
		}
	}
	for _, c := range r.Containers {
		if !c.settled() {
			return false
		}
	}
	m.transition(statusActivating)
	return true
}

// cannotStart records that a container will never start; an essential one
// fails the task.
func (m *manager) cannotStart(c *containerRecord, reason string) bool {
	c.NeverStarted, c.Reason = true, reason
	m.log.Warn("container cannot start", "container", c.Name, "reason", reason)
	if c.Essential {
		m.rec.fail(ecstypes.TaskStopCodeTaskFailedToStart, reason)
	}
	return true
}

// pull makes a container's image present.
func (m *manager) pull(ctx context.Context, c *containerRecord, image string) bool {
	for _, o := range m.rec.Containers {
		if o.Pulled && m.imageOf(o) == image {
			c.Pulled, c.ImageID, c.ImageDigest = true, o.ImageID, o.ImageDigest
			return true
		}
	}
	present, err := m.a.rt.ImagePresent(ctx, image)
	if err != nil {
		return m.retry("image present", err)
	}
	if !present {
		m.log.Info("pulling image", "container", c.Name, "image", image)
		pctx, cancel := context.WithTimeout(ctx, m.a.cfg.PullTimeout)
		auth, fromBerth := m.a.pullAuth(pctx, image)
		err := m.a.rt.Pull(pctx, image, auth)
		if err != nil && fromBerth && pctx.Err() == nil && isAuthError(err) {
			// The control plane's registry refused cached credentials (it
			// restarted with a new key, or they lapsed early): once more
			// with fresh ones.
			m.log.Info("registry refused the pull; retrying with fresh credentials", "container", c.Name, "image", image, "err", err)
			m.a.registry.invalidate()
			auth, _ = m.a.pullAuth(pctx, image)
			err = m.a.rt.Pull(pctx, image, auth)
		}
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			reason := "CannotPullContainerError: " + err.Error()
			c.Reason = reason
			m.rec.fail(ecstypes.TaskStopCodeTaskFailedToStart, reason)
			return true
		}
	}
	m.succeeded()
	c.Pulled = true
	if ider, ok := m.a.rt.(ImageIDer); ok {
		if id, err := ider.ImageID(ctx, image); err == nil {
			c.ImageID = id
		}
	}
	if dg, ok := m.a.rt.(ImageDigester); ok {
		if d, err := dg.ImageDigest(ctx, image); err == nil {
			c.ImageDigest = d
		}
	}
	return true
}

// imageOf returns the image a container runs.
func (m *manager) imageOf(c *containerRecord) string {
	for i, o := range m.rec.Containers {
		if o == c {
			return m.plan.containers[i].def.Image
		}
	}
	return ""
}

// resolve fills in the parts of a container's spec that name other
// containers' engine ids: the awsvpc pause container and volumesFrom.
func (m *manager) resolve(cp *containerPlan) (runtime.ContainerSpec, error) {
	spec := cp.spec
	if m.plan.networkMode == ecstypes.NetworkModeAwsvpc {
		spec.NetworkMode = "container:" + m.rec.Pause.RuntimeID
	}
	spec.VolumesFrom = nil
	for _, vf := range cp.volumesFrom {
		src := m.rec.container(vf.SourceContainer)
		if src == nil || src.RuntimeID == "" {
			return spec, fmt.Errorf("container %q takes volumes from %q, which was not created", cp.def.Name, vf.SourceContainer)
		}
		v := src.RuntimeID
		if vf.ReadOnly != nil && *vf.ReadOnly {
			v += ":ro"
		}
		spec.VolumesFrom = append(spec.VolumesFrom, v)
	}
	return spec, nil
}

// dependencies evaluates a container's dependsOn conditions (and that its
// volumesFrom sources exist): ready, or the reason they can never be met.
func (m *manager) dependencies(cp *containerPlan) (ready bool, never string) {
	ready = true
	for _, d := range cp.def.DependsOn {
		dep := m.rec.container(d.ContainerName)
		dp := m.planOf(d.ContainerName)
		cannot := func(why string) string {
			return fmt.Sprintf("Dependency not resolved: container %q cannot start because %q (condition %s) %s", cp.def.Name, d.ContainerName, d.Condition, why)
		}
		if dep.NeverStarted {
			return false, cannot("will never start")
		}
		switch d.Condition {
		case ecstypes.ContainerConditionStart:
			ready = ready && dep.Started
		case ecstypes.ContainerConditionComplete:
			ready = ready && dep.Exited
		case ecstypes.ContainerConditionSuccess:
			if dep.Exited && (dep.ExitCode == nil || *dep.ExitCode != 0) {
				return false, cannot("exited with " + exitText(dep.ExitCode))
			}
			ready = ready && dep.Exited
		case ecstypes.ContainerConditionHealthy:
			if dp == nil || !dp.hasHealthCheck {
				return false, cannot("has no health check")
			}
			if dep.Exited {
				return false, cannot("stopped before it became healthy")
			}
			ready = ready && dep.Health == runtime.HealthHealthy
		}
	}
	for _, vf := range cp.volumesFrom {
		src := m.rec.container(vf.SourceContainer)
		if src.NeverStarted && !src.Created {
			return false, fmt.Sprintf("Dependency not resolved: container %q takes volumes from %q, which will never be created", cp.def.Name, vf.SourceContainer)
		}
		ready = ready && src.Created
	}
	return ready, ""
}

func exitText(code *int32) string {
	if code == nil {
		return "an unknown exit code"
	}
	return fmt.Sprintf("exit code %d", *code)
}

// planOf returns the plan of the named container.
func (m *manager) planOf(name string) *containerPlan {
	for i := range m.plan.containers {
		if m.plan.containers[i].def.Name == name {
			return &m.plan.containers[i]
		}
	}
	return nil
}

// create makes a container. A name already taken is a container this
// agent made before it lost track (a crash between create and persist): it
// is adopted rather than duplicated.
func (m *manager) create(ctx context.Context, c *containerRecord, spec runtime.ContainerSpec) bool {
	id, err := m.a.rt.Create(ctx, spec)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		st, found, lerr := m.find(ctx, c)
		switch {
		case lerr != nil:
			return m.retry("list", lerr)
		case found:
			m.log.Info("adopted existing container", "container", c.Name, "container_id", st.ID)
			c.RuntimeID, c.Created = st.ID, true
			c.CreatedAt = timePtr(st.CreatedAt)
			m.a.own(st.ID, m.rec.TaskArn)
			m.observe(c, st)
			return true
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		if c == m.rec.Pause {
			m.rec.fail(ecstypes.TaskStopCodeTaskFailedToStart, "ResourceInitializationError: cannot create the pause container: "+err.Error())
			return true
		}
		return m.cannotStart(c, "CannotCreateContainerError: "+err.Error())
	}
	m.succeeded()
	c.RuntimeID, c.Created = id, true
	c.CreatedAt = timePtr(m.a.clock.Now())
	m.a.own(id, m.rec.TaskArn)
	m.log.Info("created container", "container", c.Name, "container_id", id)
	return true
}

// find looks a container up by its labels.
func (m *manager) find(ctx context.Context, c *containerRecord) (runtime.ContainerState, bool, error) {
	list, err := m.a.rt.List(ctx, map[string]string{labelTaskArn: m.rec.TaskArn, labelContainerName: c.Name, labelAgentID: m.env.agentID})
	if err != nil || len(list) == 0 {
		return runtime.ContainerState{}, false, err
	}
	return list[len(list)-1], true, nil
}

// start starts a created container and reads back its ports and address.
func (m *manager) start(ctx context.Context, c *containerRecord) bool {
	if err := m.a.rt.Start(ctx, c.RuntimeID); err != nil {
		if ctx.Err() != nil {
			return false
		}
		if c == m.rec.Pause {
			m.rec.fail(ecstypes.TaskStopCodeTaskFailedToStart, "ResourceInitializationError: cannot start the pause container: "+err.Error())
			return true
		}
		return m.cannotStart(c, "CannotStartContainerError: "+err.Error())
	}
	m.succeeded()
	c.Started, c.WaitingSince = true, nil
	c.StartedAt = timePtr(m.a.clock.Now())
	m.log.Info("started container", "container", c.Name, "container_id", c.RuntimeID)
	m.refresh(ctx, c, nil)
	return true
}
