package deploy

import (
	"fmt"
	"slices"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/state"
)

// DefaultHealthWait is how long a RUNNING task without a container health
// check waits before it counts as healthy: "If a task has no essential
// containers with a health check defined, the service scheduler will wait
// for 40 seconds after a task reaches a RUNNING state before the task is
// counted towards the minimum healthy percent total." (ECS Developer Guide)
const DefaultHealthWait = 40 * time.Second

// StopCode and the reasons the scheduler gives tasks it stops.
const (
	StopCode          = ecstypes.TaskStopCodeServiceSchedulerInitiated
	ReasonUnhealthy   = "Task failed container health checks"
	ReasonDaemonMoved = "Container instance is not eligible for the daemon service"
)

// ELBReason is the stoppedReason of a task stopped because the load
// balancer found it unhealthy in a target group.
func ELBReason(targetGroupArn string) string {
	return fmt.Sprintf("Task failed ELB health checks in (target-group %s)", targetGroupArn)
}

// ScalingReason is the stoppedReason of a task a deployment stops.
func ScalingReason(deployment string) string {
	return fmt.Sprintf("Scaling activity initiated by (deployment %s)", deployment)
}

// Task is what the planner knows of one of the service's tasks.
type Task struct {
	ID, Deployment, InstanceID string
	LastStatus, DesiredStatus  string
	Health                     ecstypes.HealthStatus
	StopCode                   ecstypes.TaskStopCode
	CreatedAt, StartedAt       time.Time // StartedAt zero until RUNNING
	StoppedAt                  time.Time
	// Targets are the task's registrations in the service's target groups,
	// with the health the load balancer reports; nil until registered.
	Targets []Target
	// Deactivating: the task was deregistered from its target groups and
	// waits for their connections to drain before it is stopped with
	// DeactivateReason.
	Deactivating     bool
	DeactivateReason string
}

// Target is one registration of a task in a target group.
type Target struct {
	TargetGroupArn string
	// Name is the target group's name, for events.
	Name string
	// Port is the registered port (the host port for instance targets),
	// Instance the EC2-style instance id of an instance target ("" for ip).
	Port     int32
	Instance string
	// State is the load balancer's verdict (initial, healthy, unhealthy,
	// unused, draining, unavailable), Description its explanation.
	State, Description string
}

// Instance is what the planner knows of one container instance.
type Instance struct {
	ID     string
	Status string // ACTIVE, DRAINING, INACTIVE; "" when gone
	// Eligible: a daemon task belongs here (ACTIVE and meeting the
	// service's constraints).
	Eligible bool
}

// Input is one service's state at one moment.
type Input struct {
	Service *state.Service
	Tasks   []Task
	// Instances holds every instance the tasks run on and, for a DAEMON
	// service, every instance of the cluster.
	Instances map[string]Instance
	// HealthCheck says, per deployment, whether its task definition has an
	// essential container with a health check.
	HealthCheck map[string]bool
	Now         time.Time
	// HealthWait is DefaultHealthWait unless a test shortens it.
	HealthWait time.Duration
}

// StartTasks asks for Count new tasks of Deployment, placed by the service's
// strategy, or on Instance (DAEMON).
type StartTasks struct {
	Deployment string
	Count      int
	Instance   string
}

// StopTask asks for a task to stop with a reason. For a task registered
// in target groups, Drain asks the caller to deregister it first (the task
// goes DEACTIVATING) and to stop it once its targets have drained; the
// planner then emits the stop itself.
type StopTask struct {
	TaskID, Reason string
	Drain          bool
}

// Outcome is a ServiceDeployment record's new status.
type Outcome struct {
	Deployment string
	Status     ecstypes.ServiceDeploymentStatus
	Reason     string
}

// Plan is what to do now. The planner has already updated the service
// (counts, deployments, rollout states, bookkeeping); the caller carries out
// the starts, stops, forgets, rollback and finishes, adds the events, and
// looks again after Requeue (0: only on a change).
type Plan struct {
	Start []StartTasks
	Stop  []StopTask
	// Register lists running tasks to register in every target group of
	// the service's loadBalancers (ACTIVATING, in ECS's words).
	Register []string
	Forget   []string // stopped tasks accounted for: drop from the service's index
	Events   []string
	Finish   []Outcome
	RollBack string // the failed deployment to roll back
	Requeue  time.Duration
}

// PlacementRetry is how soon a service whose tasks could not all be
// started or placed is looked at again.
const PlacementRetry = 5 * time.Second

// LookAgainWithin makes the plan's Requeue at most d (d > 0).
func (p *Plan) LookAgainWithin(d time.Duration) {
	if d > 0 && (p.Requeue == 0 || d < p.Requeue) {
		p.Requeue = d
	}
}

// classified is one live task with what the planner derived.
type classified struct {
	Task
	healthy, unhealthy, stopping, misplaced bool
	// elbUnhealthy is the target group registration that failed, past the
	// grace period.
	elbUnhealthy *Target
}

// targetsHealthy: the task is registered in all n target groups and each
// reports it healthy.
func targetsHealthy(t Task, n int) bool {
	if len(t.Targets) < n {
		return false
	}
	for _, tg := range t.Targets {
		if tg.State != "healthy" {
			return false
		}
	}
	return true
}

// Backoff is how long launches wait after n tasks in a row failed to start:
// nothing for the first 3, then 5 s doubling up to 15 minutes.
func Backoff(n int) time.Duration {
	if n < 3 {
		return 0
	}
	d := 5 * time.Second
	for i := 3; i < n && d < 15*time.Minute; i++ {
		d *= 2
	}
	return min(d, 15*time.Minute)
}

// Reconcile plans one step for a service and updates in.Service to match.
// It is a pure function of its input.
func Reconcile(in Input) Plan {
	var p Plan
	svc := in.Service
	if svc.Status == state.ServiceInactive {
		return p
	}
	wait := in.HealthWait
	if wait <= 0 {
		wait = DefaultHealthWait
	}
	name := svc.ServiceName
	daemon := svc.SchedulingStrategy == ecstypes.SchedulingStrategyDaemon
	primary := Primary(svc)
	grace := time.Duration(0)
	if svc.HealthCheckGracePeriodSeconds != nil {
		grace = time.Duration(*svc.HealthCheckGracePeriodSeconds) * time.Second
	}
	balanced := len(svc.LoadBalancers) > 0
	// With load balancers a task is healthy once every target group says
	// so (and its container health check passes, if it has one); without,
	// by its container health check or after the health wait.
	isHealthy := func(t Task) bool {
		if t.LastStatus != "RUNNING" || t.StartedAt.IsZero() {
			return false
		}
		if in.HealthCheck[t.Deployment] && t.Health != ecstypes.HealthStatusHealthy {
			return false
		}
		if balanced {
			return targetsHealthy(t, len(svc.LoadBalancers))
		}
		return in.HealthCheck[t.Deployment] || in.Now.Sub(t.StartedAt) >= wait
	}

	// 1. Account for tasks that stopped: a task that stopped without the
	// scheduler asking, before it ever counted as healthy, failed.
	var live []*classified
	for _, t := range in.Tasks {
		if t.LastStatus == "STOPPED" {
			p.Forget = append(p.Forget, t.ID)
			if t.StopCode == StopCode || t.StopCode == ecstypes.TaskStopCodeUserInitiated {
				continue // asked for: not a failure
			}
			ranLongEnough := !t.StartedAt.IsZero() && !in.HealthCheck[t.Deployment] && t.StoppedAt.Sub(t.StartedAt) >= wait
			if ranLongEnough || t.Health == ecstypes.HealthStatusHealthy {
				continue // it was healthy; it is replaced, but it is no failure
			}
			failed(svc, t.Deployment, in.Now, &p)
			continue
		}
		if t.Deactivating && t.DesiredStatus != "STOPPED" && len(t.Targets) == 0 {
			// Its connections have drained: stop it now.
			p.Stop = append(p.Stop, StopTask{TaskID: t.ID, Reason: t.DeactivateReason})
		}
		c := &classified{Task: t}
		inst, ok := in.Instances[t.InstanceID]
		c.misplaced = !ok || inst.Status != state.InstanceActive || daemon && !inst.Eligible
		c.stopping = t.DesiredStatus == "STOPPED" || t.Deactivating
		c.healthy = !c.stopping && isHealthy(t)
		c.unhealthy = !c.stopping && t.LastStatus == "RUNNING" && t.Health == ecstypes.HealthStatusUnhealthy &&
			!t.StartedAt.IsZero() && in.Now.Sub(t.StartedAt) >= grace
		if !c.stopping && t.LastStatus == "RUNNING" && t.Health == ecstypes.HealthStatusUnhealthy && !c.unhealthy {
			p.LookAgainWithin(t.StartedAt.Add(grace).Sub(in.Now))
		}
		if !c.stopping && !c.healthy && t.LastStatus == "RUNNING" && !in.HealthCheck[t.Deployment] && !balanced {
			p.LookAgainWithin(t.StartedAt.Add(wait).Sub(in.Now))
		}
		if balanced && !c.stopping && t.LastStatus == "RUNNING" && !t.StartedAt.IsZero() {
			if len(t.Targets) < len(svc.LoadBalancers) {
				p.Register = append(p.Register, t.ID)
			}
			for _, tg := range t.Targets {
				if tg.State != "unhealthy" {
					continue
				}
				if in.Now.Sub(t.StartedAt) < grace {
					p.LookAgainWithin(t.StartedAt.Add(grace).Sub(in.Now))
					continue
				}
				c.elbUnhealthy = &tg
				break
			}
		}
		if c.healthy {
			healthyNow(svc, t.Deployment)
		}
		live = append(live, c)
	}
	stopping := func(c *classified, reason string) {
		c.stopping = true
		c.healthy = false
		p.Stop = append(p.Stop, StopTask{TaskID: c.ID, Reason: reason, Drain: len(c.Targets) > 0})
	}

	// 2. Tasks that fail their health checks are stopped and replaced.
	for _, c := range live {
		if c.unhealthy {
			p.Events = append(p.Events, fmt.Sprintf("(service %s) (task %s) failed container health checks.", name, c.ID))
			stopping(c, ReasonUnhealthy)
			failed(svc, c.Deployment, in.Now, &p)
			continue
		}
		if tg := c.elbUnhealthy; tg != nil && !c.stopping {
			where := ""
			if tg.Instance != "" {
				where = fmt.Sprintf(" (instance %s)", tg.Instance)
			}
			p.Events = append(p.Events, fmt.Sprintf("service %s%s (port %d) is unhealthy in target-group %s due to (reason %s).", name, where, tg.Port, tg.Name, tg.Description))
			stopping(c, ELBReason(tg.TargetGroupArn))
			failed(svc, c.Deployment, in.Now, &p)
		}
	}

	desired := int(svc.DesiredCount)
	if svc.Status == state.ServiceDraining {
		desired = 0
	}
	if daemon {
		desired = 0
		for _, inst := range in.Instances {
			if inst.Eligible {
				desired++
			}
		}
		if svc.Status == state.ServiceDraining {
			desired = 0
		}
		svc.DesiredCount = int32(desired)
	}
	if primary != nil {
		primary.DesiredCount = int32(desired)
	}
	minHealthy, maxTotal := Bounds(svc, desired)

	// 3. The circuit breaker.
	if primary != nil && primary.RolloutState == ecstypes.DeploymentRolloutStateInProgress {
		if on, rollback := BreakerOn(svc); on && svc.Deploys[primary.Id] != nil && svc.Deploys[primary.Id].BreakerFailures >= Threshold(desired) {
			ds := svc.Deploys[primary.Id]
			primary.RolloutState = ecstypes.DeploymentRolloutStateFailed
			primary.RolloutStateReason = BreakerReason
			primary.UpdatedAt = awsmodel.NewTime(in.Now)
			p.Events = append(p.Events, fmt.Sprintf("(service %s) (deployment %s) deployment failed: tasks failed to start.", name, primary.Id))
			switch {
			case ds.RolledBackFrom != "":
				p.Finish = append(p.Finish, Outcome{primary.Id, ecstypes.ServiceDeploymentStatusRollbackFailed, BreakerReason})
			case rollback && svc.LastStable != nil && svc.LastStable.ID != primary.Id:
				p.RollBack = primary.Id
				p.Events = append(p.Events, fmt.Sprintf("(service %s) rolling back to deployment %s.", name, svc.LastStable.ID))
				// The caller starts the rollback deployment and looks again.
				p.LookAgainWithin(time.Millisecond)
				count(svc, live)
				return p
			default:
				p.Finish = append(p.Finish, Outcome{primary.Id, ecstypes.ServiceDeploymentStatusStopped, BreakerReason})
			}
		}
	}

	launchAllowed := true
	if svc.NextLaunchAt != nil && in.Now.Before(svc.NextLaunchAt.Time) {
		launchAllowed = false
		p.LookAgainWithin(svc.NextLaunchAt.Sub(in.Now))
	}

	total := 0 // running or pending, stopping included: what maximumPercent bounds
	healthy := 0
	for _, c := range live {
		total++
		if c.healthy {
			healthy++
		}
	}
	if daemon {
		planDaemon(in, &p, svc, primary, live, minHealthy, launchAllowed, stopping, &healthy)
	} else {
		planReplica(in, &p, svc, primary, live, desired, minHealthy, maxTotal, launchAllowed, stopping, total, healthy)
	}

	// 4. Counts, deployments' progress and the steady state.
	finishDeployments(in, &p, svc, primary, live, desired)
	return p
}

// failed counts a failed task against its deployment's circuit breaker and
// the service's launch backoff.
func failed(svc *state.Service, deployment string, now time.Time, p *Plan) {
	if d := Find(svc, deployment); d != nil {
		d.FailedTasks++
		if ds := svc.Deploys[deployment]; ds != nil {
			ds.BreakerFailures++
		}
	}
	svc.StartFailures++
	if b := Backoff(svc.StartFailures); b > 0 {
		svc.NextLaunchAt = awsmodel.NewTime(now.Add(b))
		if svc.StartFailures == 3 {
			p.Events = append(p.Events, fmt.Sprintf("(service %s) is unable to consistently start tasks successfully. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.", svc.ServiceName))
		}
	}
}

// healthyNow resets the failure counts once a task of the deployment is
// healthy (resetOnHealthyTask, ECS's default).
func healthyNow(svc *state.Service, deployment string) {
	svc.StartFailures = 0
	svc.NextLaunchAt = nil
	reset := true
	if dc := svc.DeploymentConfiguration; dc != nil && dc.DeploymentCircuitBreaker != nil && dc.DeploymentCircuitBreaker.ResetOnHealthyTask != nil {
		reset = *dc.DeploymentCircuitBreaker.ResetOnHealthyTask
	}
	if ds := svc.Deploys[deployment]; ds != nil && reset {
		ds.BreakerFailures = 0
	}
	if d := Find(svc, deployment); d != nil && reset {
		d.FailedTasks = 0
	}
}

func planReplica(in Input, p *Plan, svc *state.Service, primary *ecstypes.Deployment, live []*classified,
	desired, minHealthy, maxTotal int, launchAllowed bool, stopping func(*classified, string), total, healthy int) {
	name := svc.ServiceName
	// The primary's tasks that stay, and the rest (older deployments and
	// tasks on instances that are draining or gone), which go.
	var keep, others []*classified
	for _, c := range live {
		if c.stopping {
			continue
		}
		if primary != nil && c.Deployment == primary.Id && !c.misplaced {
			keep = append(keep, c)
		} else {
			others = append(others, c)
		}
	}
	// Scale in: stop the primary's surplus, tasks not yet running first,
	// then the newest.
	if len(keep) > desired {
		slices.SortStableFunc(keep, func(a, b *classified) int {
			if a.LastStatus == "RUNNING" != (b.LastStatus == "RUNNING") {
				if a.LastStatus == "RUNNING" {
					return 1
				}
				return -1
			}
			return b.CreatedAt.Compare(a.CreatedAt)
		})
		reason := "Task stopped by the service scheduler"
		if primary != nil {
			reason = ScalingReason(primary.Id)
		}
		for _, c := range keep[:len(keep)-desired] {
			if c.healthy {
				healthy--
			}
			stopping(c, reason)
		}
		keep = keep[len(keep)-desired:]
	}
	// Start what the primary lacks, within maximumPercent.
	want := desired - len(keep)
	room := maxTotal - total
	started := 0
	if want > 0 && primary != nil {
		n := min(want, room)
		if n > 0 && launchAllowed {
			p.Start = append(p.Start, StartTasks{Deployment: primary.Id, Count: n})
			started = n
		}
		if n < want {
			p.LookAgainWithin(PlacementRetry)
		}
	}
	// Stop the others: those not running yet at once; running ones (healthy
	// or still in their health wait) while the healthy count stays at or
	// above minimumHealthyPercent.
	allowed := healthy - minHealthy
	stoppedOthers := 0
	// Not running first, then running but not yet healthy, then oldest.
	rank := func(c *classified) int {
		switch {
		case c.LastStatus != "RUNNING":
			return 0
		case !c.healthy:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(others, func(a, b *classified) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return a.CreatedAt.Compare(b.CreatedAt)
	})
	for _, c := range others {
		reason := "Task stopped by the service scheduler"
		if primary != nil {
			reason = ScalingReason(primary.Id)
		}
		if c.LastStatus != "RUNNING" {
			stopping(c, reason)
			stoppedOthers++
			continue
		}
		if allowed > 0 {
			allowed--
			stopping(c, reason)
			stoppedOthers++
		}
	}
	if want > 0 && started == 0 && stoppedOthers == 0 && len(others) > 0 && room <= 0 && launchAllowed {
		msg := fmt.Sprintf("(service %s) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again.", name)
		p.Events = append(p.Events, msg)
	}
}

func planDaemon(in Input, p *Plan, svc *state.Service, primary *ecstypes.Deployment, live []*classified,
	minHealthy int, launchAllowed bool, stopping func(*classified, string), healthy *int) {
	byInstance := map[string][]*classified{}
	for _, c := range live {
		if c.stopping {
			byInstance[c.InstanceID] = append(byInstance[c.InstanceID], c)
			continue
		}
		if svc.Status == state.ServiceDraining {
			stopping(c, "Task stopped by the service scheduler")
			continue
		}
		if c.misplaced {
			reason := ReasonDaemonMoved
			if c.healthy {
				*healthy--
			}
			stopping(c, reason)
		}
		byInstance[c.InstanceID] = append(byInstance[c.InstanceID], c)
	}
	ids := make([]string, 0, len(in.Instances))
	for id, inst := range in.Instances {
		if inst.Eligible && svc.Status != state.ServiceDraining {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	allowed := *healthy - minHealthy
	for _, id := range ids {
		var mine, old []*classified
		busy := false
		for _, c := range byInstance[id] {
			switch {
			case c.stopping:
				busy = true // wait for it to stop: it may hold the ports
			case primary != nil && c.Deployment == primary.Id:
				mine = append(mine, c)
			default:
				old = append(old, c)
			}
		}
		for _, c := range mine[min(1, len(mine)):] {
			stopping(c, "Task stopped by the service scheduler")
		}
		if len(mine) > 0 {
			for _, c := range old {
				stopping(c, ScalingReason(primary.Id))
			}
			continue
		}
		if len(old) > 0 {
			for _, c := range old {
				if c.healthy && allowed <= 0 {
					continue
				}
				if c.healthy {
					allowed--
				}
				stopping(c, ScalingReason(primary.Id))
			}
			continue
		}
		if !busy && primary != nil && launchAllowed {
			p.Start = append(p.Start, StartTasks{Deployment: primary.Id, Count: 1, Instance: id})
		}
	}
}

// count recomputes the service's and deployments' running and pending counts.
func count(svc *state.Service, live []*classified) {
	svc.RunningCount, svc.PendingCount = 0, 0
	for i := range svc.Deployments {
		svc.Deployments[i].RunningCount, svc.Deployments[i].PendingCount = 0, 0
	}
	for _, c := range live {
		if c.stopping {
			continue
		}
		d := Find(svc, c.Deployment)
		if c.LastStatus == "RUNNING" {
			svc.RunningCount++
			if d != nil {
				d.RunningCount++
			}
		} else {
			svc.PendingCount++
			if d != nil {
				d.PendingCount++
			}
		}
	}
}

func finishDeployments(in Input, p *Plan, svc *state.Service, primary *ecstypes.Deployment, live []*classified, desired int) {
	name := svc.ServiceName
	count(svc, live)
	// Deployments other than the primary are gone once none of their tasks is.
	has := map[string]bool{}
	for _, c := range live {
		has[c.Deployment] = true
	}
	// A deployment being rolled back shares its ServiceDeployment record
	// with the rollback, which finishes it.
	rolledBack := map[string]bool{}
	for _, ds := range svc.Deploys {
		if ds.RolledBackFrom != "" {
			rolledBack[ds.RolledBackFrom] = true
		}
	}
	kept := svc.Deployments[:0]
	for _, d := range svc.Deployments {
		if d.Status != state.DeploymentPrimary && !has[d.Id] {
			if d.RolloutState == ecstypes.DeploymentRolloutStateInProgress && !rolledBack[d.Id] {
				p.Finish = append(p.Finish, Outcome{d.Id, ecstypes.ServiceDeploymentStatusStopped, "Service deployment stopped by a newer deployment."})
			}
			delete(svc.Deploys, d.Id)
			continue
		}
		kept = append(kept, d)
	}
	svc.Deployments = kept
	primary = Primary(svc)
	if primary == nil {
		return
	}
	healthyPrimary, others := 0, 0
	for _, c := range live {
		switch {
		case c.stopping:
			others++ // still on its way out
		case c.Deployment == primary.Id && !c.misplaced:
			if c.healthy {
				healthyPrimary++
			}
		default:
			others++
		}
	}
	done := healthyPrimary == desired && others == 0 && len(p.Start) == 0 && len(p.Stop) == 0
	if done && primary.RolloutState == ecstypes.DeploymentRolloutStateInProgress {
		primary.RolloutState = ecstypes.DeploymentRolloutStateCompleted
		primary.RolloutStateReason = CompletedReason(primary.Id)
		primary.UpdatedAt = awsmodel.NewTime(in.Now)
		p.Events = append(p.Events, fmt.Sprintf("(service %s) (deployment %s) deployment completed.", name, primary.Id))
		status := ecstypes.ServiceDeploymentStatusSuccessful
		if ds := svc.Deploys[primary.Id]; ds != nil && ds.RolledBackFrom != "" {
			status = ecstypes.ServiceDeploymentStatusRollbackSuccessful
		}
		p.Finish = append(p.Finish, Outcome{primary.Id, status, ""})
		if ds := svc.Deploys[primary.Id]; ds != nil {
			svc.LastStable = &state.StableDeployment{ID: primary.Id, TaskDefinition: primary.TaskDefinition,
				ServiceDeploymentArn: ds.ServiceDeploymentArn, RevisionArn: ds.RevisionArn}
		}
	}
	if svc.Status == state.ServiceDraining {
		if len(live) == 0 && len(p.Start) == 0 {
			svc.Status = state.ServiceInactive
			svc.Deployments = svc.Deployments[:0]
		}
		return
	}
	steady := done && len(svc.Deployments) == 1 && int(svc.RunningCount) == desired && svc.PendingCount == 0
	if steady && !svc.Steady {
		svc.Steady = true
		p.Events = append(p.Events, fmt.Sprintf("(service %s) has reached a steady state.", name))
	}
	if !steady && (len(p.Start) > 0 || len(p.Stop) > 0) {
		svc.Steady = false
	}
}
