package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/runtime"
	"github.com/berthdev/berth/internal/runtime/fake"
)

// TestRestartReadopts restarts the agent on the same state directory and
// engine: it re-registers as the same instance, adopts the running
// containers without creating any, reports again, and still manages them.
func TestRestartReadopts(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	dir := t.TempDir()
	first := startAgent(t, cp, rt, dir)
	dt := desiredTask(container("app"), container("db"))
	cp.addTask(dt)
	cp.waitStatus(dt.TaskArn, statusRunning)
	instance := first.InstanceID()
	first.stop(t)

	creates := len(rt.CallsTo(fake.MethodCreate))
	before, _ := cp.task(dt.TaskArn)
	second := startAgent(t, cp, rt, dir)
	// The new agent reports the task again, with a newer sequence number.
	tr := cp.waitTask(dt.TaskArn, "a report from the new agent", func(tr agentapi.TaskReport) bool { return tr.Seq > before.Seq })
	if tr.LastStatus != statusRunning {
		t.Errorf("after restart: %s", tr.LastStatus)
	}
	if second.InstanceID() != instance {
		t.Errorf("re-registered as %q, was %q", second.InstanceID(), instance)
	}
	if got := len(cp.registers); got != 2 || cp.registers[1].InstanceID != instance {
		t.Errorf("registrations = %+v", cp.registers)
	}
	// The restarted agent sees engine events for the adopted containers.
	rt.Exit(containerID(t, rt, dt, "db"), 9)
	tr = cp.waitStatus(dt.TaskArn, statusStopped)
	if tr.StopCode != "EssentialContainerExited" || *tr.Containers[1].ExitCode != 9 {
		t.Errorf("stop = %q, db exit %v", tr.StopCode, tr.Containers[1].ExitCode)
	}
	if got := len(rt.CallsTo(fake.MethodCreate)); got != creates {
		t.Errorf("the restarted agent created %d containers", got-creates)
	}
}

// TestRestartNoticesWhatHappenedMeanwhile restarts the agent after an
// essential container exited while no agent ran.
func TestRestartNoticesWhatHappenedMeanwhile(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	dir := t.TempDir()
	first := startAgent(t, cp, rt, dir)
	dt := desiredTask(container("app"))
	cp.addTask(dt)
	cp.waitStatus(dt.TaskArn, statusRunning)
	first.stop(t)
	rt.Exit(containerID(t, rt, dt, "app"), 3)

	startAgent(t, cp, rt, dir)
	tr := cp.waitStatus(dt.TaskArn, statusStopped)
	if tr.StopCode != "EssentialContainerExited" || *tr.Containers[0].ExitCode != 3 {
		t.Errorf("stop = %q exit %v", tr.StopCode, tr.Containers[0].ExitCode)
	}
}

// TestCreateAdoptsAfterCrash covers a crash between creating a container and
// persisting its id: the name is taken, and the agent adopts the container.
func TestCreateAdoptsAfterCrash(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	dir := t.TempDir()
	st, err := openStateStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.loadIdentity()
	if err != nil {
		t.Fatal(err)
	}
	dt := desiredTask(container("app"))
	// What the crashed agent left: the container, created with its labels.
	p, err := buildPlan(&dt, planEnv{agentID: id.AgentID, tokens: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	orphanID, err := rt.Create(context.Background(), p.containers[0].spec)
	if err != nil {
		t.Fatal(err)
	}
	startAgent(t, cp, rt, dir)
	cp.addTask(dt)
	tr := cp.waitStatus(dt.TaskArn, statusRunning)
	if tr.Containers[0].RuntimeID != orphanID {
		t.Errorf("runtime id = %q, want the adopted %q", tr.Containers[0].RuntimeID, orphanID)
	}
	if n := len(rt.CallsTo(fake.MethodCreate)); n != 2 { // the test's and the agent's refused one
		t.Errorf("%d creates", n)
	}
}

// TestOrphansAreRemoved checks that containers of this agent whose task is
// neither known nor desired are stopped and removed, and that other agents'
// containers are left alone.
func TestOrphansAreRemoved(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	dir := t.TempDir()
	st, _ := openStateStore(dir)
	id, _ := st.loadIdentity()
	ctx := context.Background()
	mk := func(name, agentID, task string) string {
		cid, err := rt.Create(ctx, runtime.ContainerSpec{Name: name, Image: "app:1", Labels: map[string]string{labelAgentID: agentID, labelTaskArn: task}})
		if err != nil {
			t.Fatal(err)
		}
		rt.Start(ctx, cid)
		return cid
	}
	orphan := mk("orphan", id.AgentID, "arn:aws:ecs:us-east-1:000000000000:task/default/gone")
	other := mk("other", "another-agent", "arn:aws:ecs:us-east-1:000000000000:task/default/theirs")
	dt := desiredTask(container("app"))
	desiredOne := mk("desired", id.AgentID, dt.TaskArn)
	cp.addTask(dt)
	startAgent(t, cp, rt, dir)
	cp.waitStatus(dt.TaskArn, statusRunning)
	waitUntil(t, "orphan removed", func() bool {
		return callIndex(rt.Calls(), fake.MethodRemove, orphan) >= 0
	})
	if callIndex(rt.Calls(), fake.MethodStop, orphan) < 0 {
		t.Errorf("orphan removed without a stop")
	}
	for _, keep := range []string{other, desiredOne} {
		if callIndex(rt.Calls(), fake.MethodRemove, keep) >= 0 || callIndex(rt.Calls(), fake.MethodStop, keep) >= 0 {
			t.Errorf("container %s was touched", keep)
		}
	}
}

// TestControlPlaneOutage keeps tasks running while the control plane is
// down, queues their reports, and delivers them when it is back.
func TestControlPlaneOutage(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	startAgent(t, cp, rt, t.TempDir())
	a, b := desiredTask(container("app")), desiredTask(container("app"))
	cp.addTask(a)
	cp.addTask(b)
	cp.waitStatus(a.TaskArn, statusRunning)
	cp.waitStatus(b.TaskArn, statusRunning)

	cp.set(func(cp *fakeControlPlane) { cp.down = true })
	rt.Exit(containerID(t, rt, a, "app"), 5)
	// The agent stops task a on its own and tries to report it.
	cp.waitFor("an attempt to report task a STOPPED", func() bool {
		for _, r := range cp.reports {
			for _, tr := range r.Tasks {
				if tr.TaskArn == a.TaskArn && tr.LastStatus == statusStopped {
					return true
				}
			}
		}
		return false
	})
	if tr, _ := cp.task(a.TaskArn); tr.LastStatus != statusRunning {
		t.Fatalf("a report got through the outage: %s", tr.LastStatus)
	}
	if !isRunning(rt, b, "app") {
		t.Errorf("task b stopped during the outage")
	}
	if n := len(rt.CallsTo(fake.MethodStop)); n != 0 {
		t.Errorf("%d stops during the outage; nothing needed stopping", n)
	}

	cp.set(func(cp *fakeControlPlane) { cp.down = false })
	tr := cp.waitStatus(a.TaskArn, statusStopped)
	if tr.StopCode != "EssentialContainerExited" || *tr.Containers[0].ExitCode != 5 {
		t.Errorf("after the outage: %q exit %v", tr.StopCode, tr.Containers[0].ExitCode)
	}
	if tr, _ := cp.task(b.TaskArn); tr.LastStatus != statusRunning {
		t.Errorf("task b = %s", tr.LastStatus)
	}
}

// TestReportsResentAfterFailure makes reports fail and checks that the agent
// resends the same reports until one is acknowledged.
func TestReportsResentAfterFailure(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	startAgent(t, cp, rt, t.TempDir())
	cp.set(func(cp *fakeControlPlane) { cp.failReports = 3 })
	dt := desiredTask(container("app"))
	cp.addTask(dt)
	cp.waitStatus(dt.TaskArn, statusRunning)
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.failReports != 0 {
		t.Fatalf("failures left: %d", cp.failReports)
	}
	// The first failed report carried task reports, and one with the same
	// task sequence number was sent again after the failure.
	first := cp.reports[0]
	if len(first.Tasks) == 0 {
		t.Fatalf("first report was a heartbeat")
	}
	resent := false
	for _, r := range cp.reports[1:] {
		for _, tr := range r.Tasks {
			if tr.TaskArn == dt.TaskArn && tr.Seq >= first.Tasks[0].Seq {
				resent = true
			}
		}
	}
	if !resent {
		t.Errorf("the failed report was never resent")
	}
	// Report sequence numbers keep growing across attempts.
	for i := 1; i < len(cp.reports); i++ {
		if cp.reports[i].Seq <= cp.reports[i-1].Seq {
			t.Errorf("report seq %d after %d", cp.reports[i].Seq, cp.reports[i-1].Seq)
		}
	}
}

// TestUnknownInstanceRegistersAfresh makes the control plane forget the
// instance; the agent registers as a new one and reports its tasks again.
func TestUnknownInstanceRegistersAfresh(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	ta := startAgent(t, cp, rt, t.TempDir())
	dt := desiredTask(container("app"))
	cp.addTask(dt)
	cp.waitStatus(dt.TaskArn, statusRunning)
	old := ta.InstanceID()
	cp.set(func(cp *fakeControlPlane) {
		delete(cp.instances, old)
		cp.seqs = map[string]uint64{} // a control plane that lost its store
		cp.applied = map[string]agentapi.TaskReport{}
	})
	cp.waitFor("a fresh registration", func() bool {
		n := len(cp.registers)
		return n >= 2 && cp.registers[n-1].InstanceID == ""
	})
	waitUntil(t, "new instance id", func() bool { id := ta.InstanceID(); return id != "" && id != old })
	// The task is still desired (this fake keeps its tasks), its report is resent.
	cp.waitStatus(dt.TaskArn, statusRunning)
	data, err := os.ReadFile(filepath.Join(ta.cfg.StateDir, "agent.json"))
	if err != nil || !strings.Contains(string(data), `"instanceId": "`+ta.InstanceID()+`"`) {
		t.Errorf("identity not persisted: %s %v", data, err)
	}
}

// TestRefusedTokenEndsRun checks that a refused join token is fatal.
func TestRefusedTokenEndsRun(t *testing.T) {
	cp := newFakeControlPlane(t)
	a, err := New(Config{Cluster: "default", Endpoint: cp.srv.URL, Token: "wrong", Runtime: newFake(), StateDir: t.TempDir(), MetadataListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	if err := a.Run(ctx); !errors.Is(err, agentapi.ErrUnauthorized) {
		t.Errorf("Run = %v, want ErrUnauthorized", err)
	}
}

// TestCleanupAfterDelay removes a stopped task's containers and task volumes
// after CleanupDelay, and forgets the task once the control plane does.
func TestCleanupAfterDelay(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	clock := newTestClock(0)
	ta := startAgent(t, cp, rt, t.TempDir(), func(c *Config) { c.Clock = clock; c.ResyncInterval = 24 * time.Hour })
	dt := desiredTask(container("app", func(c *ecstypes.ContainerDefinition) {
		c.MountPoints = []ecstypes.MountPoint{{SourceVolume: "scratch", ContainerPath: "/scratch"}, {SourceVolume: "shared", ContainerPath: "/shared"}}
	}))
	dt.Definition.Volumes = []ecstypes.Volume{
		{Name: "scratch"},
		{Name: "shared", DockerVolumeConfiguration: &ecstypes.DockerVolumeConfiguration{Scope: ecstypes.ScopeShared, Autoprovision: new(true)}},
	}
	cp.addTask(dt)
	cp.waitStatus(dt.TaskArn, statusRunning)
	if n := len(rt.Volumes()); n != 2 {
		t.Fatalf("volumes = %+v", rt.Volumes())
	}
	id := containerID(t, rt, dt, "app")
	cp.stopTask(dt.TaskArn, "UserInitiated", "")
	cp.waitStatus(dt.TaskArn, statusStopped)
	if callIndex(rt.Calls(), fake.MethodRemove, id) >= 0 {
		t.Fatalf("removed before the cleanup delay")
	}
	waitUntil(t, "the cleanup timer", func() bool { return clock.pending(2*time.Hour, DefaultCleanupDelay) })
	clock.Advance(DefaultCleanupDelay)
	waitUntil(t, "task forgotten", func() bool {
		_, err := os.Stat(filepath.Join(ta.cfg.StateDir, "tasks", taskIDOf(dt.TaskArn)+".json"))
		return os.IsNotExist(err)
	})
	if callIndex(rt.Calls(), fake.MethodRemove, id) < 0 {
		t.Errorf("container not removed")
	}
	vols := rt.Volumes()
	if len(vols) != 1 || vols[0].Name != "shared" {
		t.Errorf("volumes after cleanup = %+v, want only the shared one", vols)
	}
}

// TestLostStateIsStillHeard runs a second agent without the first one's
// state directory: its reports about the task must still be newer than
// the first agent's, or the control plane would ignore them.
func TestLostStateIsStillHeard(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	first := startAgent(t, cp, rt, t.TempDir())
	dt := desiredTask(container("app"))
	cp.addTask(dt)
	cp.waitStatus(dt.TaskArn, statusRunning)
	first.stop(t)
	cp.stopTask(dt.TaskArn, "UserInitiated", "")

	startAgent(t, cp, rt, t.TempDir())
	tr := cp.waitStatus(dt.TaskArn, statusStopped)
	if tr.StopCode != "UserInitiated" {
		t.Errorf("stopCode = %q", tr.StopCode)
	}
}
