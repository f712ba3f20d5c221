package fake

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

// The methods in this file play the engine's part: they make happen what a
// real container or kernel would, and publish the matching events. They are
// not calls to the runtime and are not recorded. Each returns an error
// wrapping errdefs.ErrNotFound for an unknown container and
// errdefs.ErrFailedPrecondition when the container is not in a state where
// the transition can happen.

// running finds a running container. The caller holds r.mu.
func (r *Runtime) running(idOrName, what string) (*container, error) {
	c, err := r.lookup(idOrName)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !c.state.Running {
		return nil, fmt.Errorf("%s: container %q is %s: %w", what, idOrName, c.state.Status, errdefs.ErrFailedPrecondition)
	}
	return c, nil
}

// Exit makes a running container exit with code, publishing die.
func (r *Runtime) Exit(idOrName string, code int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.running(idOrName, "exit")
	if err != nil {
		return err
	}
	r.exit(c, code, false)
	return nil
}

// OOM makes the kernel kill a running container for exceeding its memory
// limit: it publishes oom, then exits with 137 and OOMKilled set.
func (r *Runtime) OOM(idOrName string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.running(idOrName, "oom")
	if err != nil {
		return err
	}
	r.publish(c, "oom", nil)
	r.exit(c, 137, true)
	return nil
}

// SetHealth sets a running container's health status (one of the
// runtime.Health* constants) and publishes health_status if it changed.
func (r *Runtime) SetHealth(idOrName, status string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.running(idOrName, "set health")
	if err != nil {
		return err
	}
	switch status {
	case runtime.HealthStarting, runtime.HealthHealthy, runtime.HealthUnhealthy:
	default:
		return fmt.Errorf("set health of %q: status %q: %w", idOrName, status, errdefs.ErrInvalidArgument)
	}
	if c.state.Health == status {
		return nil
	}
	c.state.Health = status
	r.publish(c, "health_status", func(ev *runtime.Event) { ev.Health = status })
	return nil
}

// SetStopExitCode sets the exit code Stop ends a container with: 0 for an
// application that handles the stop signal, 137 for one that ignores it and
// is killed after the timeout, 143 for one that dies of SIGTERM.
func (r *Runtime) SetStopExitCode(idOrName string, code int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.lookup(idOrName)
	if err != nil {
		return fmt.Errorf("set stop exit code: %w", err)
	}
	c.stopExitCode = code
	return nil
}

// AppendLog adds text to a container's output, waking Logs followers.
func (r *Runtime) AppendLog(idOrName, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.lookup(idOrName)
	if err != nil {
		return fmt.Errorf("append log: %w", err)
	}
	c.logs = append(c.logs, text...)
	c.notify()
	return nil
}

// SetStats sets the document Stats returns for a container (by default a
// small one with memory_stats, cpu_stats and precpu_stats).
func (r *Runtime) SetStats(idOrName string, stats json.RawMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.lookup(idOrName)
	if err != nil {
		return fmt.Errorf("set stats: %w", err)
	}
	if !json.Valid(stats) {
		return fmt.Errorf("set stats of %q: invalid JSON: %w", idOrName, errdefs.ErrInvalidArgument)
	}
	c.stats = slices.Clone(stats)
	return nil
}
