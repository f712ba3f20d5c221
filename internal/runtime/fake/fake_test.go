package fake_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
	"github.com/berthdev/berth/internal/runtime/fake"
)

// clock is a deterministic clock: each reading is one second after the last.
func clock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

// next receives one event or fails the test.
func next(t *testing.T, evs <-chan runtime.Event) runtime.Event {
	t.Helper()
	select {
	case ev, ok := <-evs:
		if !ok {
			t.Fatal("event stream closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return runtime.Event{}
}

func TestLifecycleAndEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := fake.New(fake.Options{Now: clock(), Images: []string{"app:1"}})
	evs, errs := r.Events(ctx, map[string]string{"task": "a"})

	spec := runtime.ContainerSpec{
		Name: "web", Image: "app:1", Labels: map[string]string{"task": "a"},
		PortBindings: []runtime.PortBinding{{ContainerPort: 80}, {ContainerPort: 81, HostPort: 8081}, {ContainerPort: 82}},
		Healthcheck:  &runtime.Healthcheck{Test: []string{"CMD", "check"}},
	}
	id, err := r.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.Inspect(ctx, "web")
	if err != nil || st.Status != "created" || st.ID != id || st.Health != runtime.HealthNone {
		t.Fatalf("after Create: %+v, %v", st, err)
	}
	if err := r.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	st, _ = r.Inspect(ctx, id)
	wantPorts := []runtime.PortBinding{
		{ContainerPort: 80, Protocol: "tcp", HostIP: "0.0.0.0", HostPort: 32768},
		{ContainerPort: 81, Protocol: "tcp", HostIP: "0.0.0.0", HostPort: 8081},
		{ContainerPort: 82, Protocol: "tcp", HostIP: "0.0.0.0", HostPort: 32769},
	}
	if !st.Running || st.Health != runtime.HealthStarting || st.IPAddress == "" || !reflect.DeepEqual(st.Ports, wantPorts) {
		t.Errorf("after Start: %+v", st)
	}
	if ev := next(t, evs); ev.Action != "start" || ev.ContainerID != id || ev.Labels["task"] != "a" {
		t.Errorf("event %+v, want start", ev)
	}

	if err := r.SetHealth(id, runtime.HealthHealthy); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, evs); ev.Action != "health_status" || ev.Health != runtime.HealthHealthy {
		t.Errorf("event %+v, want health_status healthy", ev)
	}

	if err := r.Exit(id, 3); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, evs); ev.Action != "die" || ev.ExitCode != 3 {
		t.Errorf("event %+v, want die 3", ev)
	}
	st, _ = r.Inspect(ctx, id)
	if st.Running || st.Status != "exited" || st.ExitCode != 3 || st.Ports != nil || !st.FinishedAt.After(st.StartedAt) {
		t.Errorf("after Exit: %+v", st)
	}
	if err := r.Exit(id, 1); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Exit of an exited container: %v", err)
	}

	// Restarting gets new dynamic ports; Stop publishes kill, die, stop.
	if err := r.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	next(t, evs)
	if st, _ := r.Inspect(ctx, id); st.Ports[0].HostPort != 32770 {
		t.Errorf("ports after restart %+v", st.Ports)
	}
	r.SetStopExitCode(id, 143)
	if err := r.Stop(ctx, id, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for range 3 {
		ev := next(t, evs)
		actions = append(actions, ev.Action)
		if ev.Action == "die" && ev.ExitCode != 143 {
			t.Errorf("die after Stop: exit %d, want 143", ev.ExitCode)
		}
	}
	if fmt.Sprint(actions) != "[kill die stop]" {
		t.Errorf("Stop published %v", actions)
	}

	if err := r.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, evs); ev.Action != "destroy" {
		t.Errorf("event %+v, want destroy", ev)
	}
	if _, err := r.Inspect(ctx, id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Inspect after Remove: %v", err)
	}

	cancel()
	for range evs {
	}
	if err, ok := <-errs; ok {
		t.Errorf("error after cancel: %v", err)
	}
}

func TestCreateChecks(t *testing.T) {
	ctx := context.Background()
	r := fake.New(fake.Options{Images: []string{"app:1"}})
	if _, err := r.Create(ctx, runtime.ContainerSpec{Name: "a", Image: "missing:1"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing image: %v", err)
	}
	if _, err := r.Create(ctx, runtime.ContainerSpec{Name: "a", Image: "app:1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(ctx, runtime.ContainerSpec{Name: "a", Image: "app:1"}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("taken name: %v", err)
	}
	if _, err := r.Create(ctx, runtime.ContainerSpec{Name: "b", Image: "app:1", NetworkMode: "container:nope"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing network owner: %v", err)
	}
}

func TestJoinedNamespaceSharesTheAddress(t *testing.T) {
	ctx := context.Background()
	r := fake.New(fake.Options{Images: []string{"app:1"}})
	pause, _ := r.Create(ctx, runtime.ContainerSpec{Name: "pause", Image: "app:1"})
	app, _ := r.Create(ctx, runtime.ContainerSpec{Name: "app", Image: "app:1", NetworkMode: "container:" + pause})
	if err := r.Start(ctx, app); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Start before the owner runs: %v", err)
	}
	r.Start(ctx, pause)
	if err := r.Start(ctx, app); err != nil {
		t.Fatal(err)
	}
	p, _ := r.Inspect(ctx, pause)
	a, _ := r.Inspect(ctx, app)
	if p.IPAddress == "" || a.IPAddress != p.IPAddress {
		t.Errorf("addresses %q and %q, want equal", p.IPAddress, a.IPAddress)
	}
}

func TestFaultInjection(t *testing.T) {
	ctx := context.Background()
	r := fake.New(fake.Options{Images: []string{"app:1"}})
	boom := errors.New("boom")

	r.FailNext(fake.MethodCreate, boom)
	if _, err := r.Create(ctx, runtime.ContainerSpec{Name: "a", Image: "app:1"}); err != boom {
		t.Errorf("first Create: %v, want boom", err)
	}
	id, err := r.Create(ctx, runtime.ContainerSpec{Name: "a", Image: "app:1"})
	if err != nil {
		t.Fatalf("second Create: %v", err)
	}

	// Per container, by name or id, until cleared.
	r.Fail(fake.MethodStart, "a", boom)
	for range 2 {
		if err := r.Start(ctx, id); err != boom {
			t.Errorf("Start: %v, want boom", err)
		}
	}
	r.Fail(fake.MethodStart, "a", nil)
	if err := r.Start(ctx, id); err != nil {
		t.Errorf("Start after clearing: %v", err)
	}

	r.FailPull("private:1", boom)
	if err := r.Pull(ctx, "private:1", nil); err != boom {
		t.Errorf("Pull: %v, want boom", err)
	}
	if err := r.Pull(ctx, "public:1", nil); err != nil {
		t.Errorf("Pull of another image: %v", err)
	}

	r.FailNext(fake.MethodEvents, boom)
	evs, errs := r.Events(ctx, nil)
	if err := <-errs; err != boom {
		t.Errorf("Events: %v, want boom", err)
	}
	if _, ok := <-evs; ok {
		t.Error("failed Events stream is open")
	}

	// Calls are recorded, failed ones with their error.
	var got []string
	for _, c := range r.Calls() {
		got = append(got, fmt.Sprintf("%s(%s)=%v", c.Method, c.Target, c.Err))
	}
	want := []string{
		"Create(a)=boom", "Create(a)=<nil>", "Start(" + id + ")=boom", "Start(" + id + ")=boom",
		"Start(" + id + ")=<nil>", "Pull(private:1)=boom", "Pull(public:1)=<nil>", "Events()=boom",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("calls:\n got %v\nwant %v", got, want)
	}
	if creates := r.CallsTo(fake.MethodCreate); len(creates) != 2 || creates[1].Spec.Image != "app:1" {
		t.Errorf("CallsTo(Create) = %+v", creates)
	}
}

func TestHoldPull(t *testing.T) {
	r := fake.New(fake.Options{})
	gate := r.HoldPull("slow:1")

	done := make(chan error, 1)
	go func() { done <- r.Pull(context.Background(), "slow:1", nil) }()
	<-gate.Entered()
	select {
	case err := <-done:
		t.Fatalf("Pull returned before the release: %v", err)
	default:
	}
	if ok, _ := r.ImagePresent(context.Background(), "slow:1"); ok {
		t.Error("image present before the pull finished")
	}
	gate.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ok, _ := r.ImagePresent(context.Background(), "slow:1"); !ok {
		t.Error("image absent after the pull")
	}

	// A held pull ends with its context.
	r.HoldPull("stuck:1")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- r.Pull(ctx, "stuck:1", nil) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Pull: %v", err)
	}
}

func TestLogs(t *testing.T) {
	ctx := context.Background()
	r := fake.New(fake.Options{Images: []string{"app:1"}})
	id, _ := r.Create(ctx, runtime.ContainerSpec{Image: "app:1"})
	r.Start(ctx, id)
	r.AppendLog(id, "one\n")

	follow, err := r.Logs(ctx, id, true)
	if err != nil {
		t.Fatal(err)
	}
	defer follow.Close()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(follow, buf); err != nil || string(buf) != "one\n" {
		t.Fatalf("first read %q, %v", buf, err)
	}
	r.AppendLog(id, "two\n")
	r.Exit(id, 0)
	rest, err := io.ReadAll(follow)
	if err != nil || string(rest) != "two\n" {
		t.Errorf("rest %q, %v", rest, err)
	}

	snap, _ := r.Logs(ctx, id, false)
	all, _ := io.ReadAll(snap)
	if string(all) != "one\ntwo\n" {
		t.Errorf("logs %q", all)
	}
}

func TestVolumes(t *testing.T) {
	ctx := context.Background()
	r := fake.New(fake.Options{Images: []string{"app:1"}})
	if err := r.CreateVolume(ctx, "data", "", map[string]string{"o": "1"}, nil); err != nil {
		t.Fatal(err)
	}
	r.CreateVolume(ctx, "data", "other", nil, nil) // kept as it was
	id, _ := r.Create(ctx, runtime.ContainerSpec{Image: "app:1", Mounts: []runtime.Mount{{Type: "volume", Source: "data", Target: "/d"}}})
	if err := r.RemoveVolume(ctx, "data"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("RemoveVolume in use: %v", err)
	}
	want := []fake.Volume{{Name: "data", Driver: "local", Options: map[string]string{"o": "1"}}}
	if got := r.Volumes(); !reflect.DeepEqual(got, want) {
		t.Errorf("Volumes = %+v", got)
	}
	r.Remove(ctx, id)
	if err := r.RemoveVolume(ctx, "data"); err != nil {
		t.Errorf("RemoveVolume: %v", err)
	}
	if err := r.RemoveVolume(ctx, "data"); err != nil {
		t.Errorf("RemoveVolume of a missing volume: %v", err)
	}
}

func TestBreakEvents(t *testing.T) {
	r := fake.New(fake.Options{Images: []string{"app:1"}})
	evs, errs := r.Events(context.Background(), nil)
	id, _ := r.Create(context.Background(), runtime.ContainerSpec{Image: "app:1"})
	r.Start(context.Background(), id)
	lost := errors.New("connection lost")
	r.BreakEvents(lost)
	// Queued events come first, then the error, then both channels close.
	if ev := next(t, evs); ev.Action != "start" {
		t.Errorf("event %+v", ev)
	}
	if err := <-errs; err != lost {
		t.Errorf("error %v, want %v", err, lost)
	}
	if _, ok := <-evs; ok {
		t.Error("events open after the error")
	}
}

// TestConcurrentUse is for the race detector.
func TestConcurrentUse(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := fake.New(fake.Options{Images: []string{"app:1"}})
	evs, _ := r.Events(ctx, nil)
	go func() {
		for range evs {
		}
	}()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			id, err := r.Create(ctx, runtime.ContainerSpec{Name: fmt.Sprint("c", i), Image: "app:1",
				PortBindings: []runtime.PortBinding{{ContainerPort: 80}}})
			if err != nil {
				t.Error(err)
				return
			}
			r.Start(ctx, id)
			r.AppendLog(id, "x")
			r.List(ctx, nil)
			r.Stats(ctx, id)
			r.Exit(id, i)
			r.Remove(ctx, id)
		})
	}
	wg.Wait()
	if n := len(r.CallsTo(fake.MethodStart)); n != 8 {
		t.Errorf("%d starts", n)
	}
}
