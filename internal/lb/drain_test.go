package lb

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestDrainingFinishesInFlight(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	old := newBackendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		_, _ = w.Write([]byte("old"))
	})
	fresh := newBackend(t, "new")
	rec := &recorder{}
	b := newTestBalancer(t, Config{OnHealth: rec.add})
	oldAddr := old.Listener.Addr().String()
	snap := oneListener(targetsOf(oldAddr)...)
	apply(t, b, snap)
	runBalancer(t, b)
	url := baseURL(t, b, "lb", "l")

	var wg sync.WaitGroup
	var slowCode int
	var slowBody string
	wg.Go(func() { slowCode, slowBody, _ = get(t, newClient(), url+"/slow") })
	<-started

	// Deregister the old target, register a new one.
	snap.TargetGroups[0].Targets = []Target{
		{ID: oldAddr, Addr: oldAddr, Draining: true, DrainUntil: time.Now().Add(time.Hour)},
		{ID: fresh.addr(), Addr: fresh.addr()},
	}
	apply(t, b, snap)
	if got := counts(t, url, 5); got["new"] != 5 {
		t.Errorf("while the old target drains: %v", got)
	}
	if h := b.Health("tg"); h[0].State != StateDraining || h[0].Reason != ReasonDeregistrationInProgress {
		t.Errorf("draining target: %+v", h[0])
	}
	if slices.Contains(rec.take(), oldAddr+" unused Target.NotRegistered") {
		t.Fatal("drained with a request in flight")
	}
	close(release)
	wg.Wait()
	if slowCode != 200 || slowBody != "old" {
		t.Errorf("in-flight request: %d %q", slowCode, slowBody)
	}
	var reports []string
	eventually(t, "the drained report", func() bool {
		reports = append(reports, rec.take()...)
		return slices.Contains(reports, oldAddr+" unused Target.NotRegistered")
	})
	if h := b.Health("tg"); h[0].State != StateUnused || h[0].Reason != ReasonNotRegistered {
		t.Errorf("drained target: %+v", h[0])
	}
}

func TestDrainDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b, err := New(Config{OnHealth: rec.add})
		if err != nil {
			t.Fatal(err)
		}
		b.prober = &scriptedProber{calls: map[string][]time.Time{}, script: map[string][]probeResult{}}
		snap := Snapshot{TargetGroups: []TargetGroup{{ID: "tg", Targets: targetsOf("busy:80", "idle:80", "now:80")}}}
		if err := b.Apply(context.Background(), snap); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- b.Run(ctx) }()
		synctest.Wait()
		rec.take()

		busy := b.groups["tg"].byID["busy:80"]
		busy.acquire() // a request in flight, that will not end
		deadline := time.Now().Add(5 * time.Second)
		snap.TargetGroups[0].Targets = []Target{
			{ID: "busy:80", Addr: "busy:80", Draining: true, DrainUntil: deadline},
			{ID: "idle:80", Addr: "idle:80", Draining: true, DrainUntil: deadline},
			{ID: "now:80", Addr: "now:80", Draining: true},
		}
		if err := b.Apply(context.Background(), snap); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		got := strings.Join(rec.take(), ",")
		for _, want := range []string{"busy:80 draining", "idle:80 unused", "now:80 unused"} {
			if !strings.Contains(got, want) {
				t.Errorf("at once: %s missing from %s", want, got)
			}
		}
		if strings.Contains(got, "busy:80 unused") {
			t.Errorf("busy target drained at once: %s", got)
		}
		time.Sleep(5*time.Second - time.Nanosecond)
		synctest.Wait()
		if got := rec.take(); len(got) != 0 {
			t.Errorf("before the deadline: %v", got)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if got := rec.take(); !slices.Equal(got, []string{"busy:80 unused Target.NotRegistered"}) {
			t.Errorf("at the deadline: %v", got)
		}
		busy.release()

		// Registered again: checked afresh.
		snap.TargetGroups[0].Targets = targetsOf("busy:80")
		if err := b.Apply(context.Background(), snap); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := rec.take(); !slices.Equal(got, []string{"busy:80 initial Elb.InitialHealthChecking", "busy:80 healthy "}) {
			t.Errorf("registered again: %v", got)
		}
		cancel()
		<-done
	})
}
