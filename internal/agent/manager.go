package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

// manager runs one task: a goroutine that alternates between taking in
// what happened (desired-state changes, engine events, periodic inspection)
// and moving the task one step (step.go), and that publishes the result
// (report, state file, metadata) after every change. Only that goroutine
// touches rec.
type manager struct {
	a   *Agent
	log *slog.Logger
	rec *taskRecord
	env planEnv

	// Inbox, filled by other goroutines.
	mu      sync.Mutex
	desired *agentapi.DesiredTask
	absent  bool
	events  []runtime.Event
	wake    chan struct{}
	// nextResync is when every container is inspected next; zero asks
	// for it at once.
	nextResync time.Time

	// Owned by the run goroutine.
	plan       *plan
	planErr    error
	bo         *backoff
	retryAt    time.Time
	deadline   time.Time
	lastReport []byte
	lastSaved  []byte
}

// newTaskRecord makes the record of a task the agent has just been given.
//
// Its report sequence starts at the current time in microseconds rather
// than at zero: the control plane ignores reports whose Seq is not newer
// than the last it applied, and an agent that lost its state directory
// must still be heard about a task an earlier incarnation reported on.
// (The numbers stay below 2^53, exact in any JSON reader.)
func newTaskRecord(dt agentapi.DesiredTask, now time.Time) *taskRecord {
	r := &taskRecord{TaskArn: dt.TaskArn, Desired: dt, Seq: uint64(max(now.UnixMicro(), 0))}
	for _, def := range dt.Definition.ContainerDefinitions {
		r.Containers = append(r.Containers, &containerRecord{
			Name:       def.Name,
			DockerName: dockerName(&dt, def.Name),
			Token:      randomHex(16),
			Essential:  def.Essential == nil || *def.Essential,
		})
	}
	return r
}

func newManager(a *Agent, rec *taskRecord, env planEnv) *manager {
	m := &manager{
		a:    a,
		log:  a.log.With("task_arn", rec.TaskArn),
		rec:  rec,
		wake: make(chan struct{}, 1),
		bo:   newBackoff(a.cfg.RetryMin, a.cfg.RetryMax),
	}
	m.env = env
	m.plan, m.planErr = buildPlan(&rec.Desired, m.env)
	return m
}

// setDesired hands the manager a newer desired state.
func (m *manager) setDesired(dt agentapi.DesiredTask) {
	m.mu.Lock()
	m.desired = &dt
	m.mu.Unlock()
	m.poke()
}

// setAbsent tells the manager that the control plane no longer lists the task.
func (m *manager) setAbsent() {
	m.mu.Lock()
	m.absent = true
	m.mu.Unlock()
	m.poke()
}

// deliver hands the manager an engine event about one of its containers.
func (m *manager) deliver(ev runtime.Event) {
	m.mu.Lock()
	m.events = append(m.events, ev)
	m.mu.Unlock()
	m.poke()
}

// resync asks the manager to inspect all its containers.
func (m *manager) resync() {
	m.mu.Lock()
	m.nextResync = time.Time{}
	m.mu.Unlock()
	m.poke()
}

func (m *manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// finished reports whether the task is done with: stopped, cleaned up, and
// no longer listed by the control plane.
func (m *manager) finished() bool {
	return m.rec.Status == statusStopped && m.rec.CleanedUp && m.rec.NotDesired
}

// run drives the task until it is finished or ctx ends. Containers keep
// running when ctx ends: a restarted agent re-adopts them.
func (m *manager) run(ctx context.Context) {
	m.publish()
	for {
		m.intake(ctx)
		if ctx.Err() != nil {
			return
		}
		m.deadline = time.Time{}
		progressed := m.step(ctx)
		if ctx.Err() != nil {
			return
		}
		m.publish()
		if m.finished() {
			return
		}
		if !progressed {
			m.wait(ctx)
		}
	}
}

// intake applies what arrived since the last step.
func (m *manager) intake(ctx context.Context) {
	m.mu.Lock()
	desired, absent, events := m.desired, m.absent, m.events
	m.desired, m.events = nil, nil
	resync := !m.nextResync.After(m.a.clock.Now())
	if resync {
		m.nextResync = m.a.clock.Now().Add(m.a.cfg.ResyncInterval)
	}
	m.mu.Unlock()

	r := m.rec
	if desired != nil && desired.Version >= r.Desired.Version && r.Status != statusStopped {
		def := r.Desired.Definition
		r.Desired = *desired
		if len(r.Desired.Definition.ContainerDefinitions) == 0 {
			r.Desired.Definition = def // the definition is fixed when the task is created
		}
	}
	if r.Desired.DesiredStatus == statusStopped {
		code := ecstypes.TaskStopCode(r.Desired.StopCode)
		if code == "" {
			code = ecstypes.TaskStopCodeUserInitiated
		}
		reason := r.Desired.StoppedReason
		if reason == "" {
			reason = reasonUserStop
		}
		r.fail(code, reason)
	}
	if absent && !r.NotDesired {
		r.NotDesired = true
		r.Desired.DesiredStatus = statusStopped
		r.fail(ecstypes.TaskStopCodeServiceSchedulerInitiated, reasonNotDesired)
	}
	for _, ev := range events {
		m.onEvent(ctx, ev)
	}
	if resync && !r.CleanedUp {
		m.inspectAll(ctx)
	}
}

// wait blocks until something arrives, a deadline passes, or ctx ends.
func (m *manager) wait(ctx context.Context) {
	now := m.a.clock.Now()
	m.mu.Lock()
	until := m.nextResync
	m.mu.Unlock()
	// Past retry times and deadlines were served by the step just taken.
	for _, t := range []time.Time{m.retryAt, m.deadline} {
		if t.After(now) && t.Before(until) {
			until = t
		}
	}
	d := until.Sub(now)
	if d <= 0 {
		return // a resync is due
	}
	t := m.a.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-m.wake:
	case <-t.C():
	}
}

// wakeAt asks to be woken at t even if nothing arrives.
func (m *manager) wakeAt(t time.Time) {
	if m.deadline.IsZero() || t.Before(m.deadline) {
		m.deadline = t
	}
}

// retry logs a transient error and schedules another attempt.
func (m *manager) retry(op string, err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	d := m.bo.Next()
	m.retryAt = m.a.clock.Now().Add(d)
	m.log.Warn("task step failed; retrying", "op", op, "retry_in", d, "err", err)
	return false
}

// succeeded clears the retry state after an operation worked.
func (m *manager) succeeded() {
	m.bo.Reset()
	m.retryAt = time.Time{}
}

// transition moves the task to its next lastStatus.
func (m *manager) transition(to string) {
	m.log.Info("task transition", "from", m.rec.Status, "to", to, "stop_code", m.rec.StopCode)
	m.rec.Status = to
}

// publish reports the task if its observable state changed, persists the
// record, and refreshes the metadata endpoint's view.
func (m *manager) publish() {
	r := m.rec
	// The metadata view first: once the control plane has a report, the
	// task's containers see at least that state.
	if r.CleanedUp {
		m.a.meta.remove(r.TaskArn)
	} else {
		m.a.meta.publish(r.TaskArn, m.metadataView())
	}
	if r.Status != statusNone {
		tr := m.report()
		b, _ := json.Marshal(tr)
		if !bytes.Equal(b, m.lastReport) {
			r.Seq++
			tr.Seq = r.Seq
			m.save()
			m.a.reporter.enqueue(tr)
			m.lastReport = b
			m.a.notifyChange()
		}
	}
	m.save()
}

// save persists the record if it changed.
func (m *manager) save() {
	b, err := json.Marshal(m.rec)
	if err != nil || bytes.Equal(b, m.lastSaved) {
		return
	}
	if err := m.a.store.saveTask(m.rec); err != nil {
		m.log.Error("persist task state", "err", err)
		return
	}
	m.lastSaved = b
}

// onEvent applies one engine event.
func (m *manager) onEvent(ctx context.Context, ev runtime.Event) {
	c := m.rec.byRuntimeID(ev.ContainerID)
	if c == nil {
		return
	}
	switch ev.Action {
	case "health_status":
		if ev.Health != c.Health {
			c.Health, c.HealthSince = ev.Health, m.a.clock.Now()
		}
	case "die", "stop", "kill", "oom":
		m.refresh(ctx, c, &ev)
	case "destroy":
		m.gone(c, &ev)
	}
}

// inspectAll refreshes every container the task has created.
func (m *manager) inspectAll(ctx context.Context) {
	all := m.rec.Containers
	if m.rec.Pause != nil {
		all = append([]*containerRecord{m.rec.Pause}, all...)
	}
	for _, c := range all {
		if c.Created && c.RuntimeID != "" && !c.Removed {
			m.refresh(ctx, c, nil)
		}
	}
}

// refresh inspects one container and applies what the engine says.
func (m *manager) refresh(ctx context.Context, c *containerRecord, ev *runtime.Event) {
	st, err := m.a.rt.Inspect(ctx, c.RuntimeID)
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		m.gone(c, ev)
	case err != nil:
		if ev != nil && ev.Action == "die" && c.running() {
			code := int32(ev.ExitCode)
			m.exited(c, &code, false, ev.Time)
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		// Inspect everything again soon rather than at the next resync.
		d := m.bo.Next()
		m.mu.Lock()
		m.nextResync = m.a.clock.Now().Add(d)
		m.mu.Unlock()
		m.log.Warn("inspect failed; resyncing soon", "container", c.Name, "retry_in", d, "err", err)
	default:
		m.observe(c, st)
	}
}

// observe applies an engine snapshot of one container.
func (m *manager) observe(c *containerRecord, st runtime.ContainerState) {
	now := m.a.clock.Now()
	if st.Health != c.Health {
		c.Health, c.HealthSince = st.Health, now
	}
	if st.IPAddress != "" {
		c.IPAddress = st.IPAddress
	}
	ran := st.Running || !st.StartedAt.IsZero() || st.Status == "exited" || st.Status == "dead"
	if ran && !c.Started {
		// Started before a crash of the agent, or by the engine itself.
		c.Started, c.Created, c.NeverStarted = true, true, false
		if !st.StartedAt.IsZero() {
			c.StartedAt = timePtr(st.StartedAt)
		}
	}
	if st.Running {
		if c != m.rec.Pause {
			c.Bindings = m.bindings(c, st)
		}
		return
	}
	if c.Started && !c.Exited && (st.Status == "exited" || st.Status == "dead" || !st.FinishedAt.IsZero()) {
		code := int32(st.ExitCode)
		m.exited(c, &code, st.OOMKilled, st.FinishedAt)
	}
}

// gone handles a container that the engine no longer has.
func (m *manager) gone(c *containerRecord, ev *runtime.Event) {
	switch {
	case c.running():
		var code *int32
		if ev != nil && ev.Action == "die" {
			code = new(int32(ev.ExitCode))
		}
		c.Reason = "CannotInspectContainerError: the container was removed outside Berth"
		m.exited(c, code, false, m.a.clock.Now())
	case c.Created && !c.Started && m.rec.Status == statusPending:
		// Removed before it was started: create it again.
		c.Created, c.RuntimeID = false, ""
	}
}

// exited records that a started container stopped, and stops the task if
// the container is essential.
func (m *manager) exited(c *containerRecord, code *int32, oom bool, at time.Time) {
	if c.Exited {
		return
	}
	c.Exited, c.ExitCode = true, code
	if at.IsZero() {
		at = m.a.clock.Now()
	}
	c.FinishedAt = timePtr(at)
	if oom {
		c.Reason = reasonOOM
	}
	m.log.Info("container exited", "container", c.Name, "exit_code", exitText(code), "essential", c.Essential)
	if c == m.rec.Pause {
		m.rec.fail(ecstypes.TaskStopCodeEssentialContainerExited, "The task's network namespace (pause container) exited")
		return
	}
	if c.Essential {
		m.rec.fail(ecstypes.TaskStopCodeEssentialContainerExited, reasonEssentialExited)
	}
}
