package docker_test

import (
	"context"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/runtime"
)

// healthcheck probes the test application's /health on port.
func healthcheck(port string) *runtime.Healthcheck {
	return &runtime.Healthcheck{
		Test:     []string{"CMD", "/app", "check", "http://localhost:" + port + "/health"},
		Interval: 100 * time.Millisecond,
		Timeout:  2 * time.Second,
		Retries:  2,
	}
}

func TestHealthcheck(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name string
		port string
		want string
	}{
		{"healthy", "8080", runtime.HealthHealthy},
		{"unhealthy", "9", runtime.HealthUnhealthy}, // nothing listens on 9
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h.sub(t)
			spec := h.spec(tt.name, "serve")
			spec.Healthcheck = healthcheck(tt.port)
			id := h.run(spec)
			h.waitState(id, "health "+tt.want, 20*time.Second, func(s runtime.ContainerState) bool {
				return s.Health == tt.want
			})
		})
	}
}

// collect reads events until stop says so or the deadline passes.
func collect(t *testing.T, evs <-chan runtime.Event, errs <-chan error, timeout time.Duration, stop func(runtime.Event) bool) []runtime.Event {
	t.Helper()
	var got []runtime.Event
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				t.Fatalf("event stream closed after %+v", got)
			}
			got = append(got, ev)
			if stop(ev) {
				return got
			}
		case err := <-errs:
			t.Fatalf("event stream failed: %v (after %+v)", err, got)
		case <-deadline:
			t.Fatalf("timed out after %v; events so far: %+v", timeout, got)
		}
	}
}

func TestEvents(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	// Subscribe to the "watched" containers of this test only.
	watched := map[string]string{testLabel: h.id, "watched": "yes"}
	evs, errs := h.rt.Events(ctx, watched)

	// An unwatched container lives and dies first: had the label filter
	// failed, its events would come before the watched ones.
	other := h.run(h.spec("other", "exit", "5"))
	h.waitExit(other)

	spec := h.spec("watched", "serve")
	spec.Labels = watched
	spec.Healthcheck = healthcheck("8080")
	id := h.run(spec)

	got := collect(t, evs, errs, 20*time.Second, func(ev runtime.Event) bool {
		return ev.Action == "health_status"
	})
	if len(got) != 2 || got[0].Action != "start" || got[1].Health != runtime.HealthHealthy {
		t.Errorf("events %+v, want start then health_status healthy", got)
	}
	for _, ev := range got {
		if ev.ContainerID != id {
			t.Errorf("event for another container: %+v", ev)
		}
		if ev.Labels["watched"] != "yes" || ev.Labels["image"] != "" || ev.Labels["name"] != "" {
			t.Errorf("event labels %v: want the container's labels only", ev.Labels)
		}
		if ev.Time.IsZero() || time.Since(ev.Time) > time.Minute {
			t.Errorf("event time %v", ev.Time)
		}
	}

	// The application exits with 7 when asked to: die carries the code.
	st, err := h.rt.Inspect(h.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + st.IPAddress + ":8080/exit?code=7"
	if _, err := get(url); err != nil {
		t.Fatal(err)
	}
	got = collect(t, evs, errs, 20*time.Second, func(ev runtime.Event) bool { return ev.Action == "die" })
	if die := got[len(got)-1]; die.ExitCode != 7 || die.ContainerID != id {
		t.Errorf("die event %+v, want exit code 7", die)
	}

	// Ending ctx closes both channels without an error.
	cancel()
	for range evs {
	}
	if err, ok := <-errs; ok {
		t.Errorf("error after cancel: %v", err)
	}
}
