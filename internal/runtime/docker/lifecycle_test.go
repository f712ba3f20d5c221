package docker_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

func TestLifecycle(t *testing.T) {
	h := newHarness(t)
	spec := h.spec("web", "serve")
	before := time.Now().Add(-time.Second) // the engine's clock is the host's, at second precision in places
	id := h.create(spec)

	st, err := h.rt.Inspect(h.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "created" || st.Running || st.ID != id || st.Name != spec.Name || st.Image != h.image {
		t.Errorf("after Create: %+v", st)
	}
	if st.Labels[testLabel] != h.id {
		t.Errorf("labels %v, want %s=%s", st.Labels, testLabel, h.id)
	}
	if st.CreatedAt.Before(before) || !st.StartedAt.IsZero() {
		t.Errorf("times after Create: created %v started %v", st.CreatedAt, st.StartedAt)
	}

	// Inspect by name works as by id.
	if byName, err := h.rt.Inspect(h.ctx, spec.Name); err != nil || byName.ID != id {
		t.Errorf("Inspect by name: %v, %v", byName.ID, err)
	}

	if err := h.rt.Start(h.ctx, id); err != nil {
		t.Fatal(err)
	}
	st, err = h.rt.Inspect(h.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "running" || !st.Running || st.Pid == 0 || st.StartedAt.Before(st.CreatedAt) || st.Health != runtime.HealthNone {
		t.Errorf("after Start: %+v", st)
	}

	// The application handles SIGTERM: Stop returns well before the timeout.
	h.waitLog(id, "listening on")
	start := time.Now()
	if err := h.rt.Stop(h.ctx, id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("graceful Stop took %v", d)
	}
	st, err = h.rt.Inspect(h.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "exited" || st.Running || st.ExitCode != 0 || st.FinishedAt.Before(st.StartedAt) {
		t.Errorf("after Stop: %+v", st)
	}
	if out := h.logs(id); !strings.Contains(out, "stopping") {
		t.Errorf("logs %q lack the SIGTERM handler's line", out)
	}
	// Stopping a stopped container is not an error.
	if err := h.rt.Stop(h.ctx, id, time.Second); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	if err := h.rt.Remove(h.ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := h.rt.Inspect(h.ctx, id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Inspect after Remove: %v, want ErrNotFound", err)
	}
}

func TestRemoveKillsARunningContainer(t *testing.T) {
	h := newHarness(t)
	id := h.run(h.spec("x", "ignore-term"))
	if err := h.rt.Remove(h.ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := h.rt.Inspect(h.ctx, id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Inspect after Remove: %v, want ErrNotFound", err)
	}
}

func TestExitCode(t *testing.T) {
	h := newHarness(t)
	st, out := h.runToExit(h.spec("x", "exit", "3"))
	if st.ExitCode != 3 || st.Running || st.OOMKilled || st.Status != "exited" {
		t.Errorf("state %+v, want exited with 3", st)
	}
	if !strings.Contains(out, "exit 3") {
		t.Errorf("logs %q", out)
	}
}

func TestStopTimeoutKills(t *testing.T) {
	h := newHarness(t)
	const timeout = time.Second
	tests := []struct {
		name string
		spec runtime.ContainerSpec
	}{
		{"ignores SIGTERM", h.spec("ignore", "ignore-term")},
		// PID 1 without a handler ignores SIGUSR1, so the stop signal is
		// really the one in the spec if Stop has to kill.
		{"stop signal", func() runtime.ContainerSpec {
			s := h.spec("usr1", "sleep")
			s.StopSignal = "SIGUSR1"
			return s
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h.sub(t)
			id := h.run(tt.spec)
			// Wait until the application runs, so that the signal reaches it
			// and not the engine's process setup.
			h.waitFor("application start", 10*time.Second, func() (bool, error) {
				out := h.logs(id)
				return strings.Contains(out, "ignoring SIGTERM") || strings.Contains(out, "sleeping"), nil
			})
			start := time.Now()
			if err := h.rt.Stop(h.ctx, id, timeout); err != nil {
				t.Fatal(err)
			}
			elapsed := time.Since(start)
			if elapsed < timeout-100*time.Millisecond || elapsed > timeout+5*time.Second {
				t.Errorf("Stop took %v, want about %v", elapsed, timeout)
			}
			st, err := h.rt.Inspect(h.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if st.Running || st.ExitCode != 137 {
				t.Errorf("after Stop: running %v exit %d, want killed (137)", st.Running, st.ExitCode)
			}
		})
	}
}

func TestErrorClasses(t *testing.T) {
	h := newHarness(t)
	const missing = "berth-test-no-such-container"
	checks := []struct {
		name string
		err  error
		want error
	}{
		{"Start", h.rt.Start(h.ctx, missing), errdefs.ErrNotFound},
		{"Stop", h.rt.Stop(h.ctx, missing, time.Second), errdefs.ErrNotFound},
		{"Remove", h.rt.Remove(h.ctx, missing), errdefs.ErrNotFound},
		{"Inspect", func() error { _, err := h.rt.Inspect(h.ctx, missing); return err }(), errdefs.ErrNotFound},
		{"Stats", func() error { _, err := h.rt.Stats(h.ctx, missing); return err }(), errdefs.ErrNotFound},
		{"Logs", func() error { _, err := h.rt.Logs(h.ctx, missing, false); return err }(), errdefs.ErrNotFound},
		{"Create with a missing image", func() error {
			s := h.spec("noimage")
			s.Image = "berth-test-no-such-image:latest"
			_, err := h.rt.Create(h.ctx, s)
			return err
		}(), errdefs.ErrNotFound},
		{"Create with a bad spec", func() error {
			s := h.spec("bad")
			s.DNSServers = []string{"not-an-ip"}
			_, err := h.rt.Create(h.ctx, s)
			return err
		}(), errdefs.ErrInvalidArgument},
	}
	for _, c := range checks {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}

	spec := h.spec("dup", "sleep")
	h.create(spec)
	if _, err := h.rt.Create(h.ctx, spec); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("Create with a taken name: %v, want ErrAlreadyExists", err)
	}
}

func TestListByLabels(t *testing.T) {
	h := newHarness(t)
	a := h.spec("a", "exit", "0")
	a.Labels = map[string]string{testLabel: h.id, "role": "a"}
	b := h.spec("b", "sleep")
	b.Labels = map[string]string{testLabel: h.id, "role": "b"}
	idA := h.run(a)
	idB := h.run(b)
	h.waitExit(idA)

	all, err := h.rt.List(h.ctx, h.labels())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range all {
		ids = append(ids, s.ID)
	}
	if !slices.Equal(ids, []string{idA, idB}) {
		t.Errorf("List(all of the test) = %v, want [a b] = %v", ids, []string{idA, idB})
	}
	// Listed containers carry their full state, stopped ones included.
	if len(all) == 2 && (all[0].Status != "exited" || all[1].Status != "running") {
		t.Errorf("states %s, %s; want exited, running", all[0].Status, all[1].Status)
	}

	onlyB, err := h.rt.List(h.ctx, map[string]string{testLabel: h.id, "role": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if len(onlyB) != 1 || onlyB[0].ID != idB {
		t.Errorf("List(role=b) = %+v, want only b", onlyB)
	}
	none, err := h.rt.List(h.ctx, map[string]string{testLabel: h.id, "role": "c"})
	if err != nil || len(none) != 0 {
		t.Errorf("List(role=c) = %+v, %v; want none", none, err)
	}
}
