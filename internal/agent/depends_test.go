package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/runtime"
	"github.com/berthdev/berth/internal/runtime/fake"
)

// TestDependsOn checks that "app" is created only once its dependency
// "init" meets the condition, by comparing the position of app's Create
// among the recorded calls with the moment the test made the condition
// true; or that the task fails when the condition can never be met.
func TestDependsOn(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cond      ecstypes.ContainerCondition
		initEdits []func(*ecstypes.ContainerDefinition)
		// trigger makes the engine do what meets (or breaks) the condition;
		// nil means the condition holds as soon as init starts.
		trigger func(rt *fake.Runtime, initID string) error
		// wantReason, if set, is part of the stoppedReason of a task whose
		// app can never start.
		wantReason string
	}{
		{name: "START", cond: ecstypes.ContainerConditionStart},
		{
			name: "COMPLETE", cond: ecstypes.ContainerConditionComplete,
			initEdits: []func(*ecstypes.ContainerDefinition){nonEssential},
			trigger:   func(rt *fake.Runtime, id string) error { return rt.Exit(id, 4) },
		},
		{
			name: "SUCCESS", cond: ecstypes.ContainerConditionSuccess,
			initEdits: []func(*ecstypes.ContainerDefinition){nonEssential},
			trigger:   func(rt *fake.Runtime, id string) error { return rt.Exit(id, 0) },
		},
		{
			name: "SUCCESS never met", cond: ecstypes.ContainerConditionSuccess,
			initEdits:  []func(*ecstypes.ContainerDefinition){nonEssential},
			trigger:    func(rt *fake.Runtime, id string) error { return rt.Exit(id, 1) },
			wantReason: `container "app" cannot start because "init" (condition SUCCESS) exited with exit code 1`,
		},
		{
			name: "HEALTHY", cond: ecstypes.ContainerConditionHealthy,
			initEdits: []func(*ecstypes.ContainerDefinition){withHealthCheck},
			trigger:   func(rt *fake.Runtime, id string) error { return rt.SetHealth(id, runtime.HealthHealthy) },
		},
		{
			name: "HEALTHY never met", cond: ecstypes.ContainerConditionHealthy,
			initEdits: []func(*ecstypes.ContainerDefinition){withHealthCheck, nonEssential},
			trigger: func(rt *fake.Runtime, id string) error {
				if err := rt.SetHealth(id, runtime.HealthUnhealthy); err != nil {
					return err
				}
				return rt.Exit(id, 1)
			},
			wantReason: `container "app" cannot start because "init" (condition HEALTHY) stopped before it became healthy`,
		},
		{
			name: "HEALTHY without a health check", cond: ecstypes.ContainerConditionHealthy,
			wantReason: `container "app" cannot start because "init" (condition HEALTHY) has no health check`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := newFakeControlPlane(t)
			rt := newFake()
			startAgent(t, cp, rt, t.TempDir())
			dt := desiredTask(
				container("app", dependsOn("init", tc.cond)),
				container("init", tc.initEdits...),
			)
			cp.addTask(dt)
			appName := dockerName(&dt, "app")

			waitUntil(t, "init started", func() bool { return callIndex(rt.Calls(), fake.MethodStart, "") >= 0 })
			initID := containerID(t, rt, dt, "init")
			mark := len(rt.Calls())
			if tc.trigger != nil {
				if err := tc.trigger(rt, initID); err != nil {
					t.Fatal(err)
				}
			}
			if tc.wantReason != "" {
				tr := cp.waitStatus(dt.TaskArn, statusStopped)
				if tr.StopCode != "TaskFailedToStart" || !strings.Contains(tr.StoppedReason, tc.wantReason) {
					t.Errorf("stop = %q %q, want TaskFailedToStart containing %q", tr.StopCode, tr.StoppedReason, tc.wantReason)
				}
				if i := callIndex(rt.Calls(), fake.MethodCreate, appName); i >= 0 {
					t.Errorf("app was created although its dependency failed")
				}
				if app := tr.Containers[0]; app.LastStatus != containerStopped || !strings.Contains(app.Reason, tc.wantReason) {
					t.Errorf("app = %+v", app)
				}
				return
			}
			cp.waitStatus(dt.TaskArn, statusRunning)
			calls := rt.Calls()
			create := callIndex(calls, fake.MethodCreate, appName)
			if create < 0 || create < callIndex(calls, fake.MethodStart, initID) {
				t.Fatalf("app created at %d, before init started", create)
			}
			if tc.trigger != nil && create < mark {
				t.Errorf("app created at call %d, before the condition was met at call %d", create, mark)
			}
		})
	}
}

// TestStartTimeout fails a task whose container waits too long.
func TestStartTimeout(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	clock := newTestClock(0)
	startAgent(t, cp, rt, t.TempDir(), func(c *Config) { c.Clock = clock })
	dt := desiredTask(
		container("app", dependsOn("init", ecstypes.ContainerConditionComplete), func(c *ecstypes.ContainerDefinition) { c.StartTimeout = new(int32(120)) }),
		container("init", nonEssential),
	)
	cp.addTask(dt)
	// The manager waits on the start timeout: jump over it.
	waitUntil(t, "a start-timeout timer", func() bool { return clock.pending(100*time.Second, 120*time.Second) })
	if tr, _ := cp.task(dt.TaskArn); tr.LastStatus == statusStopped {
		t.Fatalf("stopped before the timeout")
	}
	clock.Advance(121 * time.Second)
	tr := cp.waitStatus(dt.TaskArn, statusStopped)
	if tr.StopCode != "TaskFailedToStart" || !strings.Contains(tr.StoppedReason, "startTimeout") {
		t.Errorf("stop = %q %q", tr.StopCode, tr.StoppedReason)
	}
	if !strings.Contains(tr.StoppedReason, "2m0s") {
		t.Errorf("reason %q does not name the timeout", tr.StoppedReason)
	}
}
