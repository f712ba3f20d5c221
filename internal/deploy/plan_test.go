package deploy

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/state"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// svcWith builds a service whose deployments are ids, the first PRIMARY.
func svcWith(desired int, ids ...string) *state.Service {
	s := &state.Service{Deploys: map[string]*state.DeployState{}}
	s.ServiceName, s.Status, s.DesiredCount = "web", state.ServiceActive, int32(desired)
	s.SchedulingStrategy = ecstypes.SchedulingStrategyReplica
	Defaults(s)
	for i, id := range ids {
		d := ecstypes.Deployment{Id: id, Status: state.DeploymentActive, TaskDefinition: "td-" + id,
			RolloutState: ecstypes.DeploymentRolloutStateCompleted}
		if i == 0 {
			d.Status, d.RolloutState, d.DesiredCount = state.DeploymentPrimary, ecstypes.DeploymentRolloutStateInProgress, int32(desired)
		}
		s.Deployments = append(s.Deployments, d)
		s.Deploys[id] = &state.DeployState{RevisionArn: "rev-" + id}
	}
	return s
}

func pct(s *state.Service, minP, maxP int32) {
	s.DeploymentConfiguration.MinimumHealthyPercent = &minP
	s.DeploymentConfiguration.MaximumPercent = &maxP
}

// healthy is a task of dep RUNNING for a minute on instance i1.
func healthy(id, dep string) Task {
	return Task{ID: id, Deployment: dep, InstanceID: "i1", LastStatus: "RUNNING", DesiredStatus: "RUNNING",
		Health: ecstypes.HealthStatusUnknown, CreatedAt: t0.Add(-2 * time.Minute), StartedAt: t0.Add(-time.Minute)}
}

func pending(id, dep string) Task {
	return Task{ID: id, Deployment: dep, InstanceID: "i1", LastStatus: "PENDING", DesiredStatus: "RUNNING", CreatedAt: t0}
}

func input(s *state.Service, tasks ...Task) Input {
	return Input{Service: s, Tasks: tasks, Now: t0, HealthWait: DefaultHealthWait,
		Instances:   map[string]Instance{"i1": {ID: "i1", Status: "ACTIVE", Eligible: true}, "i2": {ID: "i2", Status: "ACTIVE", Eligible: true}},
		HealthCheck: map[string]bool{}}
}

func started(p Plan) int {
	n := 0
	for _, s := range p.Start {
		n += s.Count
	}
	return n
}

func hasEvent(p Plan, sub string) bool {
	for _, e := range p.Events {
		if strings.Contains(e, sub) {
			return true
		}
	}
	return false
}

func TestNewServiceStartsDesiredTasks(t *testing.T) {
	s := svcWith(3, "B")
	p := Reconcile(input(s))
	if started(p) != 3 || p.Start[0].Deployment != "B" || len(p.Stop) != 0 {
		t.Fatalf("plan = %+v, want 3 tasks of B started", p)
	}
	if s.Steady || hasEvent(p, "steady") {
		t.Fatal("a service with no tasks is not steady")
	}
}

func TestHealthyServiceCompletesAndIsSteady(t *testing.T) {
	s := svcWith(2, "B")
	p := Reconcile(input(s, healthy("t1", "B"), healthy("t2", "B")))
	if started(p) != 0 || len(p.Stop) != 0 {
		t.Fatalf("plan = %+v, want nothing to do", p)
	}
	if d := Primary(s); d.RolloutState != ecstypes.DeploymentRolloutStateCompleted || d.RolloutStateReason != "ECS deployment B completed." {
		t.Fatalf("primary = %+v, want COMPLETED", d)
	}
	if !hasEvent(p, "(service web) (deployment B) deployment completed.") || !hasEvent(p, "(service web) has reached a steady state.") {
		t.Fatalf("events = %q", p.Events)
	}
	if len(p.Finish) != 1 || p.Finish[0].Status != ecstypes.ServiceDeploymentStatusSuccessful {
		t.Fatalf("finish = %+v, want SUCCESSFUL", p.Finish)
	}
	if s.LastStable == nil || s.LastStable.ID != "B" || s.RunningCount != 2 || s.PendingCount != 0 {
		t.Fatalf("service = stable %+v running %d pending %d", s.LastStable, s.RunningCount, s.PendingCount)
	}
	// A second pass says nothing new.
	if p := Reconcile(input(s, healthy("t1", "B"), healthy("t2", "B"))); len(p.Events) != 0 {
		t.Fatalf("second pass events = %q", p.Events)
	}
}

func TestNoHealthCheckWaitsBeforeHealthy(t *testing.T) {
	s := svcWith(1, "B")
	tk := healthy("t1", "B")
	tk.StartedAt = t0.Add(-10 * time.Second)
	p := Reconcile(input(s, tk))
	if Primary(s).RolloutState != ecstypes.DeploymentRolloutStateInProgress {
		t.Fatal("a task running 10 s without a health check must not complete the deployment")
	}
	if p.Requeue != 30*time.Second {
		t.Fatalf("requeue = %v, want 30s (when it turns healthy)", p.Requeue)
	}
}

func TestRollingUpdateDefaults(t *testing.T) {
	s := svcWith(3, "B", "A")
	old := []Task{healthy("a1", "A"), healthy("a2", "A"), healthy("a3", "A")}
	// 100/200: start 3 new at once, stop nothing yet.
	p := Reconcile(input(s, old...))
	if started(p) != 3 || len(p.Stop) != 0 {
		t.Fatalf("step 1 plan = %+v, want 3 started, none stopped", p)
	}
	// New tasks healthy: the old ones go.
	s = svcWith(3, "B", "A")
	tasks := append(old, healthy("b1", "B"), healthy("b2", "B"), healthy("b3", "B"))
	p = Reconcile(input(s, tasks...))
	if started(p) != 0 || len(p.Stop) != 3 {
		t.Fatalf("step 2 plan = %+v, want the 3 old tasks stopped", p)
	}
	for _, st := range p.Stop {
		if !strings.HasPrefix(st.TaskID, "a") || st.Reason != "Scaling activity initiated by (deployment B)" {
			t.Fatalf("stop %+v", st)
		}
	}
}

func TestRollingUpdateWithinBounds(t *testing.T) {
	// desired 4, min 50%, max 100%: no room to start; 2 old may stop.
	s := svcWith(4, "B", "A")
	pct(s, 50, 100)
	p := Reconcile(input(s, healthy("a1", "A"), healthy("a2", "A"), healthy("a3", "A"), healthy("a4", "A")))
	if started(p) != 0 || len(p.Stop) != 2 {
		t.Fatalf("plan = %+v, want 0 started and 2 stopped", p)
	}
}

func TestRollingUpdateStuckSaysSo(t *testing.T) {
	s := svcWith(2, "B", "A")
	pct(s, 100, 100)
	p := Reconcile(input(s, healthy("a1", "A"), healthy("a2", "A")))
	if started(p) != 0 || len(p.Stop) != 0 || !hasEvent(p, "was unable to stop or start tasks during a deployment because of the service deployment configuration") {
		t.Fatalf("plan = %+v, want the deployment-configuration event", p)
	}
}

func TestRoundingOfBounds(t *testing.T) {
	s := svcWith(3, "B")
	pct(s, 50, 150)
	minH, maxT := Bounds(s, 3)
	if minH != 2 || maxT != 4 {
		t.Fatalf("bounds(3, 50%%, 150%%) = %d, %d; want ceil 2 and floor 4", minH, maxT)
	}
	if Threshold(1) != 3 || Threshold(10) != 5 || Threshold(11) != 6 || Threshold(1000) != 200 {
		t.Fatal("circuit breaker threshold is ceil(desired/2) clamped to 3..200")
	}
}

func TestUnhealthyTaskReplacedAfterGrace(t *testing.T) {
	s := svcWith(2, "B")
	grace := int32(30)
	s.HealthCheckGracePeriodSeconds = &grace
	sick := healthy("t2", "B")
	sick.Health = ecstypes.HealthStatusUnhealthy
	sick.StartedAt = t0.Add(-10 * time.Second)
	in := input(s, healthy("t1", "B"), sick)
	in.HealthCheck["B"] = true
	in.Tasks[0].Health = ecstypes.HealthStatusHealthy
	p := Reconcile(in)
	if len(p.Stop) != 0 || p.Requeue != 20*time.Second {
		t.Fatalf("within the grace period: plan = %+v, want no stop and a look in 20s", p)
	}
	in.Tasks[1].StartedAt = t0.Add(-time.Minute)
	p = Reconcile(in)
	if len(p.Stop) != 1 || p.Stop[0].TaskID != "t2" || p.Stop[0].Reason != ReasonUnhealthy {
		t.Fatalf("plan = %+v, want t2 stopped for failing its health checks", p)
	}
	if !hasEvent(p, "(service web) (task t2) failed container health checks.") {
		t.Fatalf("events = %q", p.Events)
	}
	if started(p) != 1 {
		t.Fatalf("started %d, want a replacement", started(p))
	}
}

func failedTask(id, dep string) Task {
	return Task{ID: id, Deployment: dep, InstanceID: "i1", LastStatus: "STOPPED", DesiredStatus: "STOPPED",
		StopCode: ecstypes.TaskStopCodeEssentialContainerExited, CreatedAt: t0.Add(-time.Minute), StoppedAt: t0}
}

func TestCircuitBreakerRollsBack(t *testing.T) {
	s := svcWith(3, "B", "A")
	s.DeploymentConfiguration.DeploymentCircuitBreaker = &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true}
	s.LastStable = &state.StableDeployment{ID: "A", TaskDefinition: "td-A"}
	p := Reconcile(input(s, healthy("a1", "A"), healthy("a2", "A"), healthy("a3", "A"),
		failedTask("b1", "B"), failedTask("b2", "B"), failedTask("b3", "B")))
	if p.RollBack != "B" {
		t.Fatalf("plan = %+v, want a rollback of B", p)
	}
	if d := Find(s, "B"); d.RolloutState != ecstypes.DeploymentRolloutStateFailed || d.RolloutStateReason != BreakerReason || d.FailedTasks != 3 {
		t.Fatalf("B = %+v, want FAILED with 3 failed tasks", d)
	}
	if !hasEvent(p, "(service web) (deployment B) deployment failed: tasks failed to start.") || !hasEvent(p, "(service web) rolling back to deployment A.") {
		t.Fatalf("events = %q", p.Events)
	}
	if len(p.Forget) != 3 || len(p.Stop) != 0 {
		t.Fatalf("plan = %+v, want the 3 failures accounted and no healthy task stopped", p)
	}
}

func TestCircuitBreakerWithoutRollback(t *testing.T) {
	s := svcWith(3, "B", "A")
	s.DeploymentConfiguration.DeploymentCircuitBreaker = &ecstypes.DeploymentCircuitBreaker{Enable: true}
	p := Reconcile(input(s, healthy("a1", "A"), failedTask("b1", "B"), failedTask("b2", "B"), failedTask("b3", "B")))
	if p.RollBack != "" || Find(s, "B").RolloutState != ecstypes.DeploymentRolloutStateFailed {
		t.Fatalf("plan = %+v, want B FAILED without a rollback", p)
	}
	if len(p.Finish) != 1 || p.Finish[0].Status != ecstypes.ServiceDeploymentStatusStopped {
		t.Fatalf("finish = %+v", p.Finish)
	}
}

func TestBreakerOffDoesNotFail(t *testing.T) {
	s := svcWith(3, "B")
	_ = Reconcile(input(s, failedTask("b1", "B"), failedTask("b2", "B"), failedTask("b3", "B"), failedTask("b4", "B")))
	if Primary(s).RolloutState != ecstypes.DeploymentRolloutStateInProgress {
		t.Fatal("without the circuit breaker a deployment is never failed")
	}
}

func TestBackoffAfterRepeatedFailures(t *testing.T) {
	s := svcWith(2, "B")
	p := Reconcile(input(s, failedTask("b1", "B"), failedTask("b2", "B"), failedTask("b3", "B")))
	if started(p) != 0 || s.NextLaunchAt == nil || !s.NextLaunchAt.Time.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("plan = %+v next %v, want launches held 5 s", p, s.NextLaunchAt)
	}
	if !hasEvent(p, "is unable to consistently start tasks successfully") {
		t.Fatalf("events = %q", p.Events)
	}
	in := input(s)
	in.Now = t0.Add(6 * time.Second)
	if p := Reconcile(in); started(p) != 2 {
		t.Fatalf("after the backoff: started %d, want 2", started(p))
	}
	if Backoff(4) != 10*time.Second || Backoff(40) != 15*time.Minute {
		t.Fatal("backoff doubles up to 15 minutes")
	}
}

func TestHealthyCrashIsReplacedWithoutBackoff(t *testing.T) {
	s := svcWith(1, "B")
	crashed := healthy("t1", "B")
	crashed.LastStatus, crashed.DesiredStatus = "STOPPED", "STOPPED"
	crashed.StopCode = ecstypes.TaskStopCodeEssentialContainerExited
	crashed.StoppedAt = t0
	p := Reconcile(input(s, crashed))
	if started(p) != 1 || s.StartFailures != 0 || Primary(s).FailedTasks != 0 {
		t.Fatalf("plan = %+v failures %d, want a replacement and no failure counted", p, s.StartFailures)
	}
}

func TestDrainingInstanceTasksMove(t *testing.T) {
	s := svcWith(2, "B")
	a, b := healthy("t1", "B"), healthy("t2", "B")
	b.InstanceID = "i2"
	in := input(s, a, b)
	in.Instances["i2"] = Instance{ID: "i2", Status: "DRAINING"}
	p := Reconcile(in)
	// min 100%: start the replacement first; t2 stays until it is healthy.
	if started(p) != 1 || len(p.Stop) != 0 {
		t.Fatalf("plan = %+v, want 1 started and none stopped", p)
	}
	c := healthy("t3", "B")
	in = input(s, a, b, c)
	in.Instances["i2"] = Instance{ID: "i2", Status: "DRAINING"}
	p = Reconcile(in)
	if started(p) != 0 || len(p.Stop) != 1 || p.Stop[0].TaskID != "t2" {
		t.Fatalf("plan = %+v, want t2 stopped", p)
	}
}

func TestScaleInStopsPendingFirst(t *testing.T) {
	s := svcWith(2, "B")
	p := Reconcile(input(s, healthy("t1", "B"), healthy("t2", "B"), pending("t3", "B")))
	if len(p.Stop) != 1 || p.Stop[0].TaskID != "t3" {
		t.Fatalf("plan = %+v, want the pending t3 stopped", p)
	}
}

func TestDeletedServiceDrainsToInactive(t *testing.T) {
	s := svcWith(2, "B")
	s.Status = state.ServiceDraining
	p := Reconcile(input(s, healthy("t1", "B"), healthy("t2", "B")))
	if len(p.Stop) != 2 || s.Status != state.ServiceDraining {
		t.Fatalf("plan = %+v status %s, want both stopped, still DRAINING", p, s.Status)
	}
	gone := healthy("t1", "B")
	gone.LastStatus, gone.DesiredStatus, gone.StopCode = "STOPPED", "STOPPED", StopCode
	_ = Reconcile(input(s, gone))
	if s.Status != state.ServiceInactive {
		t.Fatalf("status = %s, want INACTIVE once no task is left", s.Status)
	}
}

func TestDaemonOneTaskPerEligibleInstance(t *testing.T) {
	s := svcWith(0, "B")
	s.SchedulingStrategy = ecstypes.SchedulingStrategyDaemon
	s.DeploymentConfiguration = nil
	Defaults(s)
	in := input(s, healthy("t1", "B"))
	in.Instances["i3"] = Instance{ID: "i3", Status: "ACTIVE", Eligible: true}
	in.Instances["i4"] = Instance{ID: "i4", Status: "DRAINING"}
	p := Reconcile(in)
	if s.DesiredCount != 3 || started(p) != 2 {
		t.Fatalf("desired %d plan %+v, want desired 3 and starts on i2, i3", s.DesiredCount, p)
	}
	for _, st := range p.Start {
		if st.Instance != "i2" && st.Instance != "i3" {
			t.Fatalf("start on %q", st.Instance)
		}
	}
	// i1 drains: its task stops and no new one goes there.
	in = input(s, healthy("t1", "B"))
	in.Instances["i1"] = Instance{ID: "i1", Status: "DRAINING"}
	p = Reconcile(in)
	if len(p.Stop) != 1 || p.Stop[0].TaskID != "t1" {
		t.Fatalf("plan = %+v, want t1 stopped", p)
	}
	for _, st := range p.Start {
		if st.Instance == "i1" {
			t.Fatal("a daemon task was started on a DRAINING instance")
		}
	}
}

func TestDaemonRollsInstanceByInstance(t *testing.T) {
	s := svcWith(0, "B", "A")
	s.SchedulingStrategy = ecstypes.SchedulingStrategyDaemon
	s.DeploymentConfiguration = nil
	Defaults(s)
	a2 := healthy("a2", "A")
	a2.InstanceID = "i2"
	p := Reconcile(input(s, healthy("a1", "A"), a2))
	// min 0%: old tasks stop, new ones start once they are gone.
	if len(p.Stop) != 2 || started(p) != 0 {
		t.Fatalf("plan = %+v, want both old tasks stopped first", p)
	}
}

// TestPlanInvariants checks, over random services, that a plan never starts
// past maximumPercent, never stops healthy tasks below
// minimumHealthyPercent (beyond scaling in and health failures), and never
// starts a daemon task on an ineligible instance.
func TestPlanInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	statuses := []string{"PROVISIONING", "PENDING", "RUNNING", "RUNNING", "RUNNING", "STOPPED"}
	for iter := range 5000 {
		desired := r.IntN(8)
		s := svcWith(desired, "B", "A")
		pct(s, int32(r.IntN(101)), int32(100+r.IntN(101)))
		daemon := r.IntN(4) == 0
		in := input(s)
		in.Instances = map[string]Instance{}
		for i := range 4 {
			st := []string{"ACTIVE", "ACTIVE", "DRAINING"}[r.IntN(3)]
			in.Instances[fmt.Sprint("i", i)] = Instance{ID: fmt.Sprint("i", i), Status: st, Eligible: st == "ACTIVE"}
		}
		if daemon {
			s.SchedulingStrategy = ecstypes.SchedulingStrategyDaemon
			var maxP int32 = 100
			s.DeploymentConfiguration.MaximumPercent = &maxP
		}
		for k := range r.IntN(12) {
			tk := healthy(fmt.Sprint("t", k), []string{"A", "B"}[r.IntN(2)])
			tk.InstanceID = fmt.Sprint("i", r.IntN(4))
			tk.LastStatus = statuses[r.IntN(len(statuses))]
			if tk.LastStatus == "STOPPED" {
				tk.DesiredStatus = "STOPPED"
			} else if r.IntN(6) == 0 {
				tk.DesiredStatus = "STOPPED"
			}
			if tk.LastStatus != "RUNNING" && tk.LastStatus != "STOPPED" {
				tk.StartedAt = time.Time{}
			}
			in.Tasks = append(in.Tasks, tk)
		}
		inCopy := in
		inCopy.Tasks = append([]Task(nil), in.Tasks...)
		minH, maxT := Bounds(s, desired)
		total, healthyBefore := 0, 0
		healthyIDs := map[string]bool{}
		for _, tk := range in.Tasks {
			if tk.LastStatus == "STOPPED" {
				continue
			}
			total++
			inst := in.Instances[tk.InstanceID]
			if tk.DesiredStatus == "RUNNING" && tk.LastStatus == "RUNNING" && (!daemon || inst.Eligible) {
				healthyBefore++
				healthyIDs[tk.ID] = true
			}
		}
		p := Reconcile(inCopy)
		if !daemon && started(p) > 0 && total+started(p) > maxT {
			t.Fatalf("iter %d: %d live + %d started > max %d (plan %+v)", iter, total, started(p), maxT, p)
		}
		stoppedHealthy := 0
		for _, st := range p.Stop {
			if healthyIDs[st.TaskID] && !strings.HasPrefix(st.Reason, "Task stopped by the service scheduler") {
				stoppedHealthy++
			}
		}
		scaleIn := !daemon && healthyBefore > desired
		// (A DAEMON service's floor is checked instance by instance in the
		// tests above.)
		if !daemon && !scaleIn && stoppedHealthy > 0 && healthyBefore-stoppedHealthy < min(minH, healthyBefore) && s.Status == state.ServiceActive {
			t.Fatalf("iter %d: stopped %d of %d healthy, floor %d (plan %+v)", iter, stoppedHealthy, healthyBefore, minH, p)
		}
		for _, st := range p.Start {
			if st.Instance != "" && !in.Instances[st.Instance].Eligible {
				t.Fatalf("iter %d: daemon task started on ineligible %s", iter, st.Instance)
			}
		}
	}
}

func TestDeletedDaemonStopsEverywhere(t *testing.T) {
	s := svcWith(0, "B")
	s.SchedulingStrategy = ecstypes.SchedulingStrategyDaemon
	s.Status = state.ServiceDraining
	b := healthy("t2", "B")
	b.InstanceID = "i2"
	p := Reconcile(input(s, healthy("t1", "B"), b))
	if len(p.Stop) != 2 || started(p) != 0 || s.DesiredCount != 0 {
		t.Fatalf("plan = %+v desired %d, want both tasks stopped and none started", p, s.DesiredCount)
	}
}

func TestRolledBackDeploymentLeavesItsRecordToTheRollback(t *testing.T) {
	// B was stopped with a rollback (StopServiceDeployment) while in
	// progress: R rolls back to A and shares B's record.
	s := svcWith(1, "R", "B")
	Find(s, "B").RolloutState = ecstypes.DeploymentRolloutStateInProgress
	s.Deploys["R"].RolledBackFrom = "B"
	p := Reconcile(input(s, healthy("r1", "R")))
	if len(s.Deployments) != 1 {
		t.Fatalf("deployments = %+v, want B gone", s.Deployments)
	}
	if len(p.Finish) != 1 || p.Finish[0].Deployment != "R" || p.Finish[0].Status != ecstypes.ServiceDeploymentStatusRollbackSuccessful {
		t.Fatalf("finish = %+v, want only R's ROLLBACK_SUCCESSFUL", p.Finish)
	}
}
