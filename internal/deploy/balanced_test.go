package deploy

import (
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/state"
)

const tgArn = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef"

// balanced gives s one load balancer (target group tgArn).
func balanced(s *state.Service, grace int32) *state.Service {
	s.LoadBalancers = []ecstypes.LoadBalancer{{TargetGroupArn: tgArn, ContainerName: "app", ContainerPort: ptrTo(int32(8080))}}
	if grace > 0 {
		s.HealthCheckGracePeriodSeconds = &grace
	}
	return s
}

func ptrTo[T any](v T) *T { return &v }

// behind is a healthy-looking task registered in tgArn with the given state.
func behind(id, dep, state, desc string) Task {
	t := healthy(id, dep)
	t.Targets = []Target{{TargetGroupArn: tgArn, Name: "web", Port: 8080, State: state, Description: desc}}
	return t
}

// TestBalancedTaskIsRegisteredAndHealthyOnlyWhenTheTargetIs: a running task
// is registered; it counts as healthy (and completes the deployment) only
// once its target is healthy, however long it has run.
func TestBalancedTaskIsRegisteredAndHealthyOnlyWhenTheTargetIs(t *testing.T) {
	s := balanced(svcWith(1, "B"), 0)
	p := Reconcile(input(s, healthy("t1", "B")))
	if len(p.Register) != 1 || p.Register[0] != "t1" {
		t.Fatalf("register = %v, want t1", p.Register)
	}
	if s.Deployments[0].RolloutState != ecstypes.DeploymentRolloutStateInProgress {
		t.Fatalf("rollout %s before the target is healthy", s.Deployments[0].RolloutState)
	}
	s = balanced(svcWith(1, "B"), 0)
	p = Reconcile(input(s, behind("t1", "B", "initial", "Target registration is in progress")))
	if len(p.Register) != 0 || s.Deployments[0].RolloutState != ecstypes.DeploymentRolloutStateInProgress {
		t.Fatalf("initial target: register %v, rollout %s", p.Register, s.Deployments[0].RolloutState)
	}
	s = balanced(svcWith(1, "B"), 0)
	Reconcile(input(s, behind("t1", "B", "healthy", "")))
	if s.Deployments[0].RolloutState != ecstypes.DeploymentRolloutStateCompleted {
		t.Fatalf("healthy target: rollout %s, want COMPLETED", s.Deployments[0].RolloutState)
	}
}

// TestELBUnhealthyTaskReplacedAfterGrace: a target the load balancer finds
// unhealthy gets its task stopped (draining first) with ECS's reason and
// event, but not within the health check grace period.
func TestELBUnhealthyTaskReplacedAfterGrace(t *testing.T) {
	s := balanced(svcWith(1, "B"), 120)
	p := Reconcile(input(s, behind("t1", "B", "unhealthy", "Health checks failed with these codes: [500]")))
	if len(p.Stop) != 0 || p.Requeue <= 0 || p.Requeue > 61*time.Second {
		t.Fatalf("within grace: stop %v requeue %v", p.Stop, p.Requeue)
	}
	s = balanced(svcWith(1, "B"), 30)
	p = Reconcile(input(s, behind("t1", "B", "unhealthy", "Health checks failed with these codes: [500]")))
	if len(p.Stop) != 1 || p.Stop[0].Reason != ELBReason(tgArn) || !p.Stop[0].Drain {
		t.Fatalf("stop = %+v, want t1 drained with %q", p.Stop, ELBReason(tgArn))
	}
	if !hasEvent(p, "service web (port 8080) is unhealthy in target-group web due to (reason Health checks failed with these codes: [500]).") {
		t.Fatalf("events %q", p.Events)
	}
	if started(p) != 1 {
		t.Fatalf("the replacement did not start: %+v", p.Start)
	}
}

// TestDeactivatingTaskStopsOnceDrained: a stopped task that is registered
// drains first; it holds its place within maximumPercent while it drains and
// is stopped with its reason once its targets are gone.
func TestDeactivatingTaskStopsOnceDrained(t *testing.T) {
	s := balanced(svcWith(1, "B", "A"), 0)
	old := behind("a1", "A", "healthy", "")
	p := Reconcile(input(s, behind("b1", "B", "healthy", ""), old))
	if len(p.Stop) != 1 || p.Stop[0].TaskID != "a1" || !p.Stop[0].Drain {
		t.Fatalf("stop = %+v, want a1 drained", p.Stop)
	}
	old.Deactivating, old.DeactivateReason = true, ScalingReason("B")
	old.Targets[0].State = "draining"
	p = Reconcile(input(s, behind("b1", "B", "healthy", ""), old))
	if len(p.Stop) != 0 || s.RunningCount != 1 {
		t.Fatalf("while draining: stop %+v running %d", p.Stop, s.RunningCount)
	}
	old.Targets = nil
	p = Reconcile(input(s, behind("b1", "B", "healthy", ""), old))
	if len(p.Stop) != 1 || p.Stop[0].TaskID != "a1" || p.Stop[0].Drain || p.Stop[0].Reason != ScalingReason("B") {
		t.Fatalf("drained: stop %+v, want a1 stopped with its reason", p.Stop)
	}
}
