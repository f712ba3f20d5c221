package agent

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/runtime/fake"
)

func TestLifecycleOrderAndTimestamps(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := fake.New(fake.Options{}) // the image must be pulled
	ta := startAgent(t, cp, rt, t.TempDir())
	dt := desiredTask(container("app"))
	cp.addTask(dt)

	running := cp.waitStatus(dt.TaskArn, statusRunning)
	if got, want := ta.transitions(dt.TaskArn), []string{statusProvisioning, statusPending, statusActivating, statusRunning}; !slices.Equal(got, want) {
		t.Errorf("transitions = %v, want %v", got, want)
	}
	if running.Connectivity != "CONNECTED" || running.ConnectivityAt == nil {
		t.Errorf("connectivity = %q at %v", running.Connectivity, running.ConnectivityAt)
	}
	for name, ts := range map[string]any{"pullStartedAt": running.PullStartedAt, "pullStoppedAt": running.PullStoppedAt, "startedAt": running.StartedAt} {
		if ts == nil {
			t.Errorf("%s missing", name)
		}
	}
	if running.PullStartedAt.After(running.PullStoppedAt.Time) || running.PullStoppedAt.After(running.StartedAt.Time) {
		t.Errorf("timestamps out of order: pull %v..%v, started %v", running.PullStartedAt, running.PullStoppedAt, running.StartedAt)
	}
	if c := running.Containers[0]; c.LastStatus != containerRunning || c.RuntimeID == "" || c.HealthStatus != "UNKNOWN" {
		t.Errorf("container = %+v", c)
	}
	if callIndex(rt.Calls(), fake.MethodPull, "app:1") < 0 {
		t.Errorf("image was not pulled")
	}

	cp.stopTask(dt.TaskArn, "UserInitiated", "stopped by test")
	stopped := cp.waitStatus(dt.TaskArn, statusStopped)
	if got, want := ta.transitions(dt.TaskArn), []string{statusProvisioning, statusPending, statusActivating, statusRunning, statusDeactivating, statusStopping, statusDeprovisioning, statusStopped}; !slices.Equal(got, want) {
		t.Errorf("transitions = %v, want %v", got, want)
	}
	if stopped.StopCode != "UserInitiated" || stopped.StoppedReason != "stopped by test" {
		t.Errorf("stop = %q %q", stopped.StopCode, stopped.StoppedReason)
	}
	if stopped.StoppingAt == nil || stopped.ExecutionStoppedAt == nil || stopped.StoppedAt == nil {
		t.Fatalf("stop timestamps missing: %+v", stopped)
	}
	if stopped.StartedAt.After(stopped.StoppingAt.Time) || stopped.StoppingAt.After(stopped.ExecutionStoppedAt.Time) || stopped.ExecutionStoppedAt.After(stopped.StoppedAt.Time) {
		t.Errorf("stop timestamps out of order: %v %v %v", stopped.StoppingAt, stopped.ExecutionStoppedAt, stopped.StoppedAt)
	}
	if c := stopped.Containers[0]; c.LastStatus != containerStopped || c.ExitCode == nil || *c.ExitCode != 0 {
		t.Errorf("container = %+v", c)
	}
	// Every report of the task has its own, growing sequence number.
	reps := ta.reports(dt.TaskArn)
	for i := 1; i < len(reps); i++ {
		if reps[i].Seq != reps[i-1].Seq+1 {
			t.Errorf("report %d has seq %d after %d", i, reps[i].Seq, reps[i-1].Seq)
		}
	}
}

func TestEssentialAndNonEssentialExits(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	startAgent(t, cp, rt, t.TempDir())
	dt := desiredTask(container("app"), container("sidecar", nonEssential))
	cp.addTask(dt)
	cp.waitStatus(dt.TaskArn, statusRunning)

	if err := rt.Exit(containerID(t, rt, dt, "sidecar"), 3); err != nil {
		t.Fatal(err)
	}
	tr := cp.waitTask(dt.TaskArn, "sidecar stopped", func(tr agentapi.TaskReport) bool { return tr.Containers[1].LastStatus == containerStopped })
	if tr.LastStatus != statusRunning || *tr.Containers[1].ExitCode != 3 || tr.StopCode != "" {
		t.Errorf("after a non-essential exit: %s stopCode %q sidecar exit %v", tr.LastStatus, tr.StopCode, *tr.Containers[1].ExitCode)
	}
	if !isRunning(rt, dt, "app") {
		t.Errorf("app stopped after a non-essential exit")
	}

	if err := rt.Exit(containerID(t, rt, dt, "app"), 1); err != nil {
		t.Fatal(err)
	}
	tr = cp.waitStatus(dt.TaskArn, statusStopped)
	if tr.StopCode != "EssentialContainerExited" || tr.StoppedReason != "Essential container in task exited" {
		t.Errorf("stop = %q %q", tr.StopCode, tr.StoppedReason)
	}
	if *tr.Containers[0].ExitCode != 1 {
		t.Errorf("app exit code = %d", *tr.Containers[0].ExitCode)
	}
}

func TestEssentialExitStopsTheOthers(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	startAgent(t, cp, rt, t.TempDir())
	dt := desiredTask(container("app"), container("db"))
	cp.addTask(dt)
	cp.waitStatus(dt.TaskArn, statusRunning)
	rt.Exit(containerID(t, rt, dt, "db"), 2)
	tr := cp.waitStatus(dt.TaskArn, statusStopped)
	if tr.StopCode != "EssentialContainerExited" {
		t.Errorf("stopCode = %q", tr.StopCode)
	}
	if i := callIndex(rt.Calls(), fake.MethodStop, containerID(t, rt, dt, "app")); i < 0 {
		t.Errorf("app was not stopped")
	}
	if isRunning(rt, dt, "app") {
		t.Errorf("app still runs")
	}
}

func TestPullFailure(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := fake.New(fake.Options{})
	rt.FailPull("registry.example/app:missing", errors.New("manifest for registry.example/app:missing not found"))
	startAgent(t, cp, rt, t.TempDir())
	dt := desiredTask(container("app", func(c *ecstypes.ContainerDefinition) { c.Image = "registry.example/app:missing" }))
	cp.addTask(dt)
	tr := cp.waitStatus(dt.TaskArn, statusStopped)
	want := "CannotPullContainerError: manifest for registry.example/app:missing not found"
	if tr.StopCode != "TaskFailedToStart" || tr.StoppedReason != want {
		t.Errorf("stop = %q %q, want TaskFailedToStart %q", tr.StopCode, tr.StoppedReason, want)
	}
	if tr.Containers[0].Reason != want || tr.Containers[0].LastStatus != containerStopped {
		t.Errorf("container = %+v", tr.Containers[0])
	}
	if tr.PullStartedAt == nil {
		t.Errorf("pullStartedAt missing")
	}
	if n := len(rt.CallsTo(fake.MethodCreate)); n != 0 {
		t.Errorf("%d containers created after a failed pull", n)
	}
}

func TestUnsupportedLogDriverFailsClearly(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	ta := startAgent(t, cp, rt, t.TempDir())
	dt := desiredTask(container("app", func(c *ecstypes.ContainerDefinition) {
		c.LogConfiguration = &ecstypes.LogConfiguration{LogDriver: ecstypes.LogDriverAwslogs, Options: map[string]string{"awslogs-group": "g"}}
	}))
	cp.addTask(dt)
	tr := cp.waitStatus(dt.TaskArn, statusStopped)
	if tr.StopCode != "TaskFailedToStart" || !strings.Contains(tr.StoppedReason, "Berth does not support the awslogs log driver yet") {
		t.Errorf("stop = %q %q", tr.StopCode, tr.StoppedReason)
	}
	if n := len(rt.CallsTo(fake.MethodCreate)); n != 0 {
		t.Errorf("%d containers created", n)
	}
	if got, want := ta.transitions(dt.TaskArn), []string{statusProvisioning, statusStopping, statusDeprovisioning, statusStopped}; !slices.Equal(got, want) {
		t.Errorf("transitions = %v, want %v", got, want)
	}
}

func TestStopInReverseDependencyOrder(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	startAgent(t, cp, rt, t.TempDir())
	dt := desiredTask(
		container("proxy", dependsOn("app", ecstypes.ContainerConditionStart), func(c *ecstypes.ContainerDefinition) { c.StopTimeout = new(int32(5)) }),
		container("app", dependsOn("db", ecstypes.ContainerConditionStart), func(c *ecstypes.ContainerDefinition) { c.StopTimeout = new(int32(7)) }),
		container("db"),
	)
	cp.addTask(dt)
	cp.waitStatus(dt.TaskArn, statusRunning)
	ids := map[string]string{}
	for _, n := range []string{"proxy", "app", "db"} {
		ids[n] = containerID(t, rt, dt, n)
	}
	cp.stopTask(dt.TaskArn, "ServiceSchedulerInitiated", "Scaling activity initiated by deployment")
	tr := cp.waitStatus(dt.TaskArn, statusStopped)
	if tr.StopCode != "ServiceSchedulerInitiated" {
		t.Errorf("stopCode = %q", tr.StopCode)
	}
	var order []string
	var timeouts []time.Duration
	for _, c := range rt.CallsTo(fake.MethodStop) {
		for n, id := range ids {
			if c.Target == id {
				order = append(order, n)
				timeouts = append(timeouts, c.Timeout)
			}
		}
	}
	if want := []string{"proxy", "app", "db"}; !slices.Equal(order, want) {
		t.Errorf("stop order = %v, want %v", order, want)
	}
	if want := []time.Duration{5 * time.Second, 7 * time.Second, DefaultStopTimeout}; !slices.Equal(timeouts, want) {
		t.Errorf("stop timeouts = %v, want %v", timeouts, want)
	}
	// And they started in dependency order.
	calls := rt.Calls()
	if !(callIndex(calls, fake.MethodStart, ids["db"]) < callIndex(calls, fake.MethodStart, ids["app"]) &&
		callIndex(calls, fake.MethodStart, ids["app"]) < callIndex(calls, fake.MethodStart, ids["proxy"])) {
		t.Errorf("start order wrong: %v", calls)
	}
}

func TestStopWhilePullingStopsCleanly(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := fake.New(fake.Options{})
	gate := rt.HoldPull("app:1")
	ta := startAgent(t, cp, rt, t.TempDir())
	dt := desiredTask(container("app"))
	cp.addTask(dt)
	<-gate.Entered()
	cp.waitApplied(cp.stopTask(dt.TaskArn, "UserInitiated", ""))
	gate.Release()
	tr := cp.waitStatus(dt.TaskArn, statusStopped)
	if tr.StopCode != "UserInitiated" || tr.StoppedReason != reasonUserStop {
		t.Errorf("stop = %q %q", tr.StopCode, tr.StoppedReason)
	}
	if n := len(rt.CallsTo(fake.MethodCreate)); n != 0 {
		t.Errorf("%d containers created for a task stopped while pulling", n)
	}
	if got := ta.transitions(dt.TaskArn); got[len(got)-1] != statusStopped || slices.Contains(got, statusRunning) {
		t.Errorf("transitions = %v", got)
	}
}

// TestStoppedBeforeItStarted reports STOPPED at once for a task the agent
// never ran and is asked to stop (a lost state directory, or a stop that
// overtook the start).
func TestStoppedBeforeItStarted(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	ta := startAgent(t, cp, rt, t.TempDir())
	dt := desiredTask(container("app"))
	dt.DesiredStatus, dt.StopCode, dt.StoppedReason = statusStopped, "UserInitiated", "never mind"
	cp.addTask(dt)
	tr := cp.waitStatus(dt.TaskArn, statusStopped)
	if tr.StopCode != "UserInitiated" || tr.StoppedReason != "never mind" || tr.StoppedAt == nil || tr.Containers[0].LastStatus != containerStopped {
		t.Errorf("report = %+v", tr)
	}
	if got := ta.transitions(dt.TaskArn); !slices.Equal(got, []string{statusStopped}) {
		t.Errorf("transitions = %v", got)
	}
	if n := len(rt.CallsTo(fake.MethodCreate)); n != 0 {
		t.Errorf("%d creates", n)
	}
}
