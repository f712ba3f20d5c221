// Package deploy is the bookkeeping of service deployments, shared by the
// ECS API (CreateService, UpdateService, StopServiceDeployment) and the
// service controller: starting a deployment, finishing it, rolling it back,
// and the numbers ECS derives from a deployment configuration. It changes
// a *state.Service and writes ServiceDeployment records inside the caller's
// transaction; it does no I/O of its own and takes the time as an input.
package deploy

import (
	"fmt"
	"math"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/launch"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// ECS's deployment configuration defaults.
const (
	DefaultMaximumPercent        = 200
	DefaultMinimumHealthyPercent = 100
	// DaemonMaximumPercent is the only maximumPercent a DAEMON service has;
	// its minimumHealthyPercent defaults to DaemonMinimumHealthyPercent.
	DaemonMaximumPercent        = 100
	DaemonMinimumHealthyPercent = 0
)

// Defaults fills a service's deployment configuration with ECS's defaults.
func Defaults(svc *state.Service) {
	dc := svc.DeploymentConfiguration
	if dc == nil {
		dc = &ecstypes.DeploymentConfiguration{}
		svc.DeploymentConfiguration = dc
	}
	daemon := svc.SchedulingStrategy == ecstypes.SchedulingStrategyDaemon
	if dc.MaximumPercent == nil {
		v := int32(DefaultMaximumPercent)
		if daemon {
			v = DaemonMaximumPercent
		}
		dc.MaximumPercent = &v
	}
	if dc.MinimumHealthyPercent == nil {
		v := int32(DefaultMinimumHealthyPercent)
		if daemon {
			v = DaemonMinimumHealthyPercent
		}
		dc.MinimumHealthyPercent = &v
	}
	if dc.DeploymentCircuitBreaker == nil {
		dc.DeploymentCircuitBreaker = &ecstypes.DeploymentCircuitBreaker{}
	}
	if dc.Strategy == "" {
		dc.Strategy = ecstypes.DeploymentStrategyRolling
	}
}

// Bounds are a rollout's limits for desired tasks: at least minHealthy
// healthy tasks (ceil of minimumHealthyPercent) and at most maxTotal
// running or pending (floor of maximumPercent).
func Bounds(svc *state.Service, desired int) (minHealthy, maxTotal int) {
	minPct, maxPct := DefaultMinimumHealthyPercent, DefaultMaximumPercent
	if dc := svc.DeploymentConfiguration; dc != nil {
		if dc.MinimumHealthyPercent != nil {
			minPct = int(*dc.MinimumHealthyPercent)
		}
		if dc.MaximumPercent != nil {
			maxPct = int(*dc.MaximumPercent)
		}
	}
	minHealthy = (desired*minPct + 99) / 100
	maxTotal = desired * maxPct / 100
	return minHealthy, maxTotal
}

// Threshold is the circuit breaker's failure threshold for desired tasks:
// half the desired count, rounded up, at least 3 and at most 200.
func Threshold(desired int) int {
	return min(200, max(3, int(math.Ceil(0.5*float64(desired)))))
}

// BreakerOn reports whether the service's circuit breaker is enabled, and
// whether it rolls back.
func BreakerOn(svc *state.Service) (enabled, rollback bool) {
	if dc := svc.DeploymentConfiguration; dc != nil && dc.DeploymentCircuitBreaker != nil {
		return dc.DeploymentCircuitBreaker.Enable, dc.DeploymentCircuitBreaker.Rollback
	}
	return false, false
}

// Primary returns the service's PRIMARY deployment, nil if it has none.
func Primary(svc *state.Service) *ecstypes.Deployment {
	for i := range svc.Deployments {
		if svc.Deployments[i].Status == state.DeploymentPrimary {
			return &svc.Deployments[i]
		}
	}
	return nil
}

// Find returns the deployment with id, nil if the service has none.
func Find(svc *state.Service, id string) *ecstypes.Deployment {
	for i := range svc.Deployments {
		if svc.Deployments[i].Id == id {
			return &svc.Deployments[i]
		}
	}
	return nil
}

// InProgressReason and friends are ECS's rolloutStateReason texts.
func InProgressReason(id string) string { return fmt.Sprintf("ECS deployment %s in progress.", id) }

// CompletedReason is the rolloutStateReason of a completed deployment.
func CompletedReason(id string) string { return fmt.Sprintf("ECS deployment %s completed.", id) }

// BreakerReason is the rolloutStateReason of a deployment the circuit breaker failed.
const BreakerReason = "ECS deployment circuit breaker: tasks failed to start."

// Start makes taskDef the service's new PRIMARY deployment: the previous
// PRIMARY becomes ACTIVE (its tasks are replaced as the rollout goes), and
// a ServiceDeployment record is written for it. rollbackOf names the
// deployment this one rolls back ("" for a normal deployment).
func Start(tx store.Tx, arns state.ARNs, svc *state.Service, taskDef string, now time.Time, rollbackOf string) (*ecstypes.Deployment, error) {
	at := awsmodel.NewTime(now)
	var sources []ecstypes.ServiceRevisionSummary
	for i := range svc.Deployments {
		d := &svc.Deployments[i]
		if d.Status == state.DeploymentPrimary {
			d.Status = state.DeploymentActive
			d.UpdatedAt = at
			// A rollout overtaken by a new one ends here.
			if d.RolloutState == ecstypes.DeploymentRolloutStateInProgress && rollbackOf == "" {
				if err := Finish(tx, svc, d.Id, ecstypes.ServiceDeploymentStatusStopped, "Service deployment stopped by a newer deployment.", now); err != nil {
					return nil, err
				}
			}
		}
		if ds := svc.Deploys[d.Id]; ds != nil {
			sources = append(sources, ecstypes.ServiceRevisionSummary{Arn: ds.RevisionArn, RunningTaskCount: d.RunningCount, PendingTaskCount: d.PendingCount})
		}
	}
	id := "ecs-svc/" + launch.NewDigits(19)
	cluster, name := svc.Cluster, svc.ServiceName
	var ds *state.DeployState
	if prev := svc.Deploys[rollbackOf]; rollbackOf != "" && prev != nil && svc.LastStable != nil {
		// A rollback is tracked by the failed deployment's own record,
		// which goes ROLLBACK_IN_PROGRESS and then ROLLBACK_SUCCESSFUL.
		ds = &state.DeployState{
			ServiceDeploymentKey: prev.ServiceDeploymentKey,
			ServiceDeploymentArn: prev.ServiceDeploymentArn,
			RevisionArn:          svc.LastStable.RevisionArn,
			RolledBackFrom:       rollbackOf,
		}
	} else {
		svc.DeploymentSeq++
		ds = &state.DeployState{
			ServiceDeploymentKey: state.ServiceDeploymentKey(cluster, name, svc.DeploymentSeq),
			ServiceDeploymentArn: arns.ServiceDeployment(cluster, name, launch.NewAlnum(21)),
			RevisionArn:          arns.ServiceRevision(cluster, name, launch.NewDigits(19)),
		}
	}
	if svc.Deploys == nil {
		svc.Deploys = map[string]*state.DeployState{}
	}
	svc.Deploys[id] = ds
	desired := svc.DesiredCount
	d := ecstypes.Deployment{
		Id: id, Status: state.DeploymentPrimary, TaskDefinition: taskDef, DesiredCount: desired,
		CreatedAt: at, UpdatedAt: at, LaunchType: svc.LaunchType,
		NetworkConfiguration:     svc.NetworkConfiguration,
		RolloutState:             ecstypes.DeploymentRolloutStateInProgress,
		RolloutStateReason:       InProgressReason(id),
		CapacityProviderStrategy: []ecstypes.CapacityProviderStrategyItem{},
	}
	svc.Deployments = append([]ecstypes.Deployment{d}, svc.Deployments...)
	svc.TaskDefinition = taskDef
	svc.CurrentServiceDeployment = ds.ServiceDeploymentArn
	svc.Steady = false

	if rollbackOf != "" {
		rec, ok, err := state.Get[state.ServiceDeployment](tx, ds.ServiceDeploymentKey)
		if err != nil || !ok {
			return &svc.Deployments[0], err
		}
		rec.DeploymentID = id
		rec.Status = ecstypes.ServiceDeploymentStatusRollbackInProgress
		rec.UpdatedAt = at
		rec.Rollback = &ecstypes.Rollback{Reason: rec.StatusReason, StartedAt: at, ServiceRevisionArn: ds.RevisionArn}
		if rec.DeploymentCircuitBreaker != nil && rec.DeploymentCircuitBreaker.Status == "MONITORING" {
			rec.DeploymentCircuitBreaker.Status = "TRIGGERED"
		}
		return &svc.Deployments[0], state.Put(tx, ds.ServiceDeploymentKey, rec)
	}
	breaker := &ecstypes.ServiceDeploymentCircuitBreaker{Status: "DISABLED", Threshold: int32(Threshold(int(desired)))}
	if enabled, _ := BreakerOn(svc); enabled {
		breaker.Status = "MONITORING"
	}
	rec := &state.ServiceDeployment{DeploymentID: id, TaskDefinition: taskDef}
	sd := &rec.ServiceDeployment
	sd.ServiceDeploymentArn = ds.ServiceDeploymentArn
	sd.ServiceArn = svc.ServiceArn
	sd.ClusterArn = svc.ClusterArn
	sd.CreatedAt, sd.StartedAt, sd.UpdatedAt = at, at, at
	sd.SourceServiceRevisions = sources
	sd.TargetServiceRevision = &ecstypes.ServiceRevisionSummary{Arn: ds.RevisionArn, RequestedTaskCount: desired}
	sd.Status = ecstypes.ServiceDeploymentStatusInProgress
	if svc.DeploymentConfiguration != nil {
		dc := *svc.DeploymentConfiguration
		sd.DeploymentConfiguration = &dc
	}
	sd.DeploymentCircuitBreaker = breaker
	if err := state.Create(tx, ds.ServiceDeploymentKey, rec); err != nil {
		return nil, err
	}
	return &svc.Deployments[0], nil
}

// Finish records how a deployment's ServiceDeployment ended (or that a
// stop or rollback was asked for). A record already finished stays as it is.
func Finish(tx store.Tx, svc *state.Service, id string, status ecstypes.ServiceDeploymentStatus, reason string, now time.Time) error {
	ds := svc.Deploys[id]
	if ds == nil {
		return nil
	}
	rec, ok, err := state.Get[state.ServiceDeployment](tx, ds.ServiceDeploymentKey)
	if err != nil || !ok {
		return err
	}
	if Terminal(rec.Status) {
		return nil
	}
	at := awsmodel.NewTime(now)
	rec.Status, rec.StatusReason, rec.UpdatedAt = status, reason, at
	if Terminal(status) {
		rec.FinishedAt = at
		if status == ecstypes.ServiceDeploymentStatusStopped || status == ecstypes.ServiceDeploymentStatusRollbackSuccessful || status == ecstypes.ServiceDeploymentStatusRollbackFailed {
			rec.StoppedAt = at
		}
	}
	if d := Find(svc, id); d != nil && rec.TargetServiceRevision != nil {
		rec.TargetServiceRevision.RunningTaskCount = d.RunningCount
		rec.TargetServiceRevision.PendingTaskCount = d.PendingCount
		rec.TargetServiceRevision.RequestedTaskCount = d.DesiredCount
	}
	if rec.DeploymentCircuitBreaker != nil && ds != nil {
		rec.DeploymentCircuitBreaker.FailureCount = int32(ds.BreakerFailures)
		if status == ecstypes.ServiceDeploymentStatusRollbackRequested || status == ecstypes.ServiceDeploymentStatusRollbackInProgress {
			rec.DeploymentCircuitBreaker.Status = "TRIGGERED"
		}
	}
	return state.Put(tx, ds.ServiceDeploymentKey, rec)
}

// Terminal reports whether a ServiceDeployment status is final.
func Terminal(s ecstypes.ServiceDeploymentStatus) bool {
	switch s {
	case ecstypes.ServiceDeploymentStatusSuccessful, ecstypes.ServiceDeploymentStatusStopped,
		ecstypes.ServiceDeploymentStatusRollbackSuccessful, ecstypes.ServiceDeploymentStatusRollbackFailed:
		return true
	}
	return false
}

// RollBack ends deployment failed and starts a new PRIMARY deployment of
// the last deployment that completed. It returns the new deployment, or
// nil when there is nothing to roll back to.
func RollBack(tx store.Tx, arns state.ARNs, svc *state.Service, failed string, reason string, now time.Time) (*ecstypes.Deployment, error) {
	if svc.LastStable == nil || svc.LastStable.ID == failed {
		return nil, nil
	}
	if err := Finish(tx, svc, failed, ecstypes.ServiceDeploymentStatusRollbackRequested, reason, now); err != nil {
		return nil, err
	}
	// The failed deployment's record is finished when the rollback is.
	to := svc.LastStable.TaskDefinition
	d, err := Start(tx, arns, svc, to, now, failed)
	if err != nil {
		return nil, err
	}
	return d, nil
}
