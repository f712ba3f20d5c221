package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/runtime"
	"github.com/berthdev/berth/internal/runtime/fake"
)

// TestEngineFaults injects engine failures at each step of a task.
func TestEngineFaults(t *testing.T) {
	boom := errors.New("engine says no")
	for _, tc := range []struct {
		name       string
		method     fake.Method
		wantStatus string // the task's final (or steady) status
		wantReason string
	}{
		{"create", fake.MethodCreate, statusStopped, "CannotCreateContainerError: engine says no"},
		{"start", fake.MethodStart, statusStopped, "CannotStartContainerError: engine says no"},
		// Transient: the agent inspects again and reports the bindings.
		{"inspect", fake.MethodInspect, statusRunning, ""},
		{"image present", fake.MethodImagePresent, statusRunning, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := newFakeControlPlane(t)
			rt := newFake()
			rt.FailNext(tc.method, boom)
			startAgent(t, cp, rt, t.TempDir())
			dt := desiredTask(container("app", func(c *ecstypes.ContainerDefinition) {
				c.PortMappings = []ecstypes.PortMapping{{ContainerPort: new(int32(80))}}
			}))
			cp.addTask(dt)
			tr := cp.waitTask(dt.TaskArn, tc.wantStatus, func(tr agentapi.TaskReport) bool {
				return tr.LastStatus == tc.wantStatus && (tc.wantStatus != statusRunning || len(tr.Containers[0].NetworkBindings) == 1)
			})
			if tc.wantReason != "" && (tr.StopCode != "TaskFailedToStart" || tr.StoppedReason != tc.wantReason || tr.Containers[0].Reason != tc.wantReason) {
				t.Errorf("stop = %q %q, container reason %q", tr.StopCode, tr.StoppedReason, tr.Containers[0].Reason)
			}
		})
	}
}

// TestStopFailureIsRetried fails the first stop; the agent stops again.
func TestStopFailureIsRetried(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	startAgent(t, cp, rt, t.TempDir())
	dt := desiredTask(container("app"))
	cp.addTask(dt)
	cp.waitStatus(dt.TaskArn, statusRunning)
	rt.FailNext(fake.MethodStop, errors.New("daemon busy"))
	cp.stopTask(dt.TaskArn, "UserInitiated", "")
	cp.waitStatus(dt.TaskArn, statusStopped)
	if n := len(rt.CallsTo(fake.MethodStop)); n != 2 {
		t.Errorf("%d stops, want 2", n)
	}
}

// TestEventsResubscribe breaks the engine's event stream: the agent
// subscribes again, inspects its containers, and still sees exits.
func TestEventsResubscribe(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	startAgent(t, cp, rt, t.TempDir())
	dt := desiredTask(container("app"), container("side", nonEssential))
	cp.addTask(dt)
	cp.waitStatus(dt.TaskArn, statusRunning)
	subscriptions := len(rt.CallsTo(fake.MethodEvents))
	rt.BreakEvents(errors.New("connection reset"))
	waitUntil(t, "a new subscription", func() bool {
		return len(rt.CallsTo(fake.MethodEvents)) > subscriptions && rt.Subscribers() == 1
	})
	rt.Exit(containerID(t, rt, dt, "side"), 7)
	tr := cp.waitTask(dt.TaskArn, "side exited", func(tr agentapi.TaskReport) bool { return tr.Containers[1].ExitCode != nil })
	if *tr.Containers[1].ExitCode != 7 || tr.LastStatus != statusRunning {
		t.Errorf("after resubscribing: %s side exit %d", tr.LastStatus, *tr.Containers[1].ExitCode)
	}
}

// deafRuntime is the fake engine with an event stream that never delivers.
type deafRuntime struct{ *fake.Runtime }

func (d deafRuntime) Events(ctx context.Context, labels map[string]string) (<-chan runtime.Event, <-chan error) {
	out, errc := make(chan runtime.Event), make(chan error)
	go func() {
		<-ctx.Done()
		close(out)
		close(errc)
	}()
	return out, errc
}

// TestMissedEventCaughtByResync exits a container without an event: the
// periodic inspection notices.
func TestMissedEventCaughtByResync(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	clock := newTestClock(0)
	startAgent(t, cp, deafRuntime{rt}, t.TempDir(), func(c *Config) { c.Clock = clock; c.ResyncInterval = 10 * time.Minute })
	dt := desiredTask(container("app"))
	cp.addTask(dt)
	cp.waitStatus(dt.TaskArn, statusRunning)
	rt.Exit(containerID(t, rt, dt, "app"), 0)
	waitUntil(t, "the resync timer", func() bool { return clock.pending(9*time.Minute, 10*time.Minute) })
	if tr, _ := cp.task(dt.TaskArn); tr.LastStatus != statusRunning {
		t.Fatalf("noticed without an event or a resync: %s", tr.LastStatus)
	}
	clock.Advance(10 * time.Minute)
	tr := cp.waitStatus(dt.TaskArn, statusStopped)
	if tr.StopCode != "EssentialContainerExited" {
		t.Errorf("stopCode = %q", tr.StopCode)
	}
}
