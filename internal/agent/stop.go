package agent

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

// stopContainers stops the running containers in reverse dependency order:
// each step stops, concurrently, the running containers that no running
// container depends on, each with its stopTimeout between SIGTERM and
// SIGKILL. When none runs, the task is DEPROVISIONING.
func (m *manager) stopContainers(ctx context.Context) bool {
	r := m.rec
	changed := false
	for _, c := range r.Containers {
		if !c.Started && !c.NeverStarted {
			c.NeverStarted, changed = true, true
		}
	}
	var wave []int
	for i, c := range r.Containers {
		if c.running() && !m.neededByRunning(c.Name) {
			wave = append(wave, i)
		}
	}
	if len(wave) == 0 {
		for i, c := range r.Containers {
			if c.running() {
				wave = append(wave, i) // only a dependency cycle gets here
			}
		}
	}
	if len(wave) == 0 {
		r.ExecutionStoppedAt = timePtr(m.a.clock.Now())
		m.transition(statusDeprovisioning)
		return true
	}

	type result struct {
		st  runtime.ContainerState
		err error
	}
	results := make([]result, len(wave))
	var wg sync.WaitGroup
	for k, i := range wave {
		c := r.Containers[i]
		timeout := m.a.cfg.StopTimeout
		if m.plan != nil {
			timeout = m.plan.containers[i].stopTimeout
		}
		wg.Go(func() {
			m.log.Info("stopping container", "container", c.Name, "container_id", c.RuntimeID, "timeout", timeout)
			err := m.a.rt.Stop(ctx, c.RuntimeID, timeout)
			if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				results[k].err = err
				return
			}
			results[k].st, results[k].err = m.a.rt.Inspect(ctx, c.RuntimeID)
		})
	}
	wg.Wait()
	var failed error
	for k, i := range wave {
		c, res := r.Containers[i], results[k]
		switch {
		case errors.Is(res.err, errdefs.ErrNotFound):
			m.gone(c, nil)
			changed = true
		case res.err != nil:
			failed = res.err
		default:
			m.observe(c, res.st)
			if c.running() {
				// The engine said it stopped it: believe the stop over a
				// stale inspect.
				m.exited(c, nil, false, m.a.clock.Now())
			}
			changed = true
		}
	}
	if failed != nil {
		m.retry("stop", failed)
		return changed
	}
	m.succeeded()
	return changed
}

// neededByRunning reports whether a running container depends on name.
func (m *manager) neededByRunning(name string) bool {
	if m.plan == nil {
		return false
	}
	for i, cp := range m.plan.containers {
		if !m.rec.Containers[i].running() {
			continue
		}
		if slices.ContainsFunc(cp.def.DependsOn, func(d ecstypes.ContainerDependency) bool { return d.ContainerName == name }) {
			return true
		}
	}
	return false
}

// deprovision releases the task-level resources that must go at stop: the
// pause container, whose network namespace the task no longer needs.
func (m *manager) deprovision(ctx context.Context) bool {
	r := m.rec
	if pc := r.Pause; pc != nil && pc.Created && !pc.Exited {
		err := m.a.rt.Stop(ctx, pc.RuntimeID, 0)
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return m.retry("stop pause", err)
		}
		m.succeeded()
		pc.Exited = true
		pc.FinishedAt = timePtr(m.a.clock.Now())
		return true
	}
	r.StoppedAt = timePtr(m.a.clock.Now())
	m.transition(statusStopped)
	return true
}

// cleanup removes a stopped task's containers and task volumes once
// CleanupDelay has passed since it stopped.
func (m *manager) cleanup(ctx context.Context) bool {
	r := m.rec
	if r.CleanedUp {
		return false
	}
	due := r.StoppedAt.Add(m.a.cfg.CleanupDelay)
	if m.a.clock.Now().Before(due) {
		m.wakeAt(due)
		return false
	}
	all := slices.Clone(r.Containers)
	if r.Pause != nil {
		all = append(all, r.Pause)
	}
	for _, c := range all {
		if c.RuntimeID == "" || c.Removed {
			continue
		}
		if err := m.a.rt.Remove(ctx, c.RuntimeID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return m.retry("remove", err)
		}
		m.a.disown(c.RuntimeID)
		c.Removed = true
		return true
	}
	for i, v := range r.Volumes {
		if !v.Remove {
			continue
		}
		if err := m.a.rt.RemoveVolume(ctx, v.Name); err != nil {
			return m.retry("remove volume", err)
		}
		r.Volumes[i].Remove = false
		return true
	}
	m.succeeded()
	m.log.Info("task cleaned up")
	r.CleanedUp = true
	return true
}
