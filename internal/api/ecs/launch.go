package ecs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/launch"
	"github.com/berthdev/berth/internal/scheduler"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// launchRequest is what RunTask and StartTask have in common.
type launchRequest struct {
	clusterRef, taskDef string
	overrides           *ecstypes.TaskOverride
	startedBy, group    string
	tags                []ecstypes.Tag
	propagate           ecstypes.PropagateTags
	network             *ecstypes.NetworkConfiguration
	constraints         []ecstypes.PlacementConstraint
	strategy            []ecstypes.PlacementStrategy
	count               int
	// on names the instances of StartTask (one task each); empty means place.
	on []string
	// clientToken makes a RunTask idempotent: a retry gets the same tasks.
	clientToken string
}

// launch validates a request, places its tasks and records them, all in one
// transaction so two launches can never take the same resources.
func (s *Service) launch(ctx context.Context, req launchRequest) ([]ecstypes.Task, []ecstypes.Failure, error) {
	if err := checkTags(req.tags); err != nil {
		return nil, nil, err
	}
	if len(req.startedBy) > 128 {
		return nil, nil, invalidParam("startedBy can be at most 128 characters.")
	}
	constraints, strategy, err := launch.PlacementRules(req.constraints, req.strategy)
	if err != nil {
		return nil, nil, err
	}
	if len(req.clientToken) > 64 || strings.IndexFunc(req.clientToken, func(r rune) bool { return r < 33 || r > 126 }) >= 0 {
		return nil, nil, invalidParam("clientToken must be at most 64 characters in the range 33-126.")
	}
	fingerprint := ""
	if req.clientToken != "" {
		fingerprint = fmt.Sprintf("%s|%d|%s|%s|%s", req.taskDef, req.count, req.group, req.startedBy, jsonString(req.overrides))
	}
	seed := launch.NewSeed()
	ids := make([]string, req.count)
	for i := range ids {
		ids[i] = launch.NewTaskID()
	}
	var tasks []ecstypes.Task
	var failures []ecstypes.Failure
	_, err = s.store.Update(ctx, func(tx store.Tx) error {
		tasks, failures = nil, nil
		cl, err := s.activeCluster(tx, req.clusterRef)
		if err != nil {
			return err
		}
		if req.clientToken != "" {
			prev, ok, err := state.GetClientToken(tx, cl.ClusterName, req.clientToken)
			if err != nil {
				return err
			}
			if ok {
				if prev.Request != fingerprint {
					return ecstypes.NewClientException("The clientToken %q was already used for a different RunTask request.", req.clientToken)
				}
				// A retry: answer with the tasks the first call started.
				for _, arn := range prev.TaskArns {
					_, rest, _ := s.arns.Resource(arn)
					_, id, _ := strings.Cut(rest, "/")
					if t, ok, err := state.Get[state.Task](tx, state.TaskKey(cl.ClusterName, id)); err != nil {
						return err
					} else if ok {
						tasks = append(tasks, *s.taskView(t, true))
					}
				}
				failures = prev.Failures
				return nil
			}
		}
		td, err := s.lookupTaskDefinition(tx, req.taskDef)
		if err != nil {
			return err
		}
		if td.TaskDefinition.Status != tdActive {
			return clientErr("TaskDefinition is inactive")
		}
		def := &td.TaskDefinition
		if err := checkNetwork(def, req.network); err != nil {
			return err
		}
		need, err := launch.Requirements(def, req.overrides)
		if err != nil {
			return err
		}
		group := req.group
		if group == "" {
			group = "family:" + def.Family
		}
		need.Group = group
		need.Constraints = append(constraints, launch.TaskDefConstraints(def)...)
		need.Strategy = strategy
		instances, err := s.launcher.Instances(tx, cl.ClusterName)
		if err != nil {
			return err
		}
		snap := scheduler.NewSnapshot(instances)
		var res scheduler.Result
		if len(req.on) > 0 {
			ids := make([]string, len(req.on))
			for i, ref := range req.on {
				_, id, ok := s.arns.ContainerInstanceID(ref)
				if !ok {
					id = ref
				}
				ids[i] = id
			}
			res, err = snap.PlaceOn(ids, need)
		} else {
			res, err = snap.Place(need, req.count, seed)
		}
		if err != nil {
			return invalidParam("%s", err.Error())
		}
		for _, f := range res.Failures {
			arn := f.InstanceARN
			if arn == "" {
				arn = s.missingInstanceARN(cl.ClusterName, f.InstanceID)
			}
			failures = append(failures, ecstypes.Failure{Arn: arn, Reason: f.Reason, Detail: f.Detail})
		}
		for i, p := range res.Placements {
			t, err := s.launcher.Create(tx, cl.ClusterName, ids[i], p.InstanceID, launch.Spec{
				TaskDef: td, Need: need, Overrides: req.overrides, StartedBy: req.startedBy,
				Tags: req.tags, Propagate: req.propagate,
			})
			if err != nil {
				return err
			}
			tasks = append(tasks, *s.taskView(t, true))
		}
		if req.clientToken != "" {
			ct := &state.ClientToken{Request: fingerprint, Failures: failures}
			for _, t := range tasks {
				ct.TaskArns = append(ct.TaskArns, t.TaskArn)
			}
			return state.PutClientToken(tx, cl.ClusterName, req.clientToken, ct, s.now())
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, t := range tasks {
		s.log.Info("task placed", "task_arn", t.TaskArn, "container_instance", t.ContainerInstanceArn)
	}
	return tasks, failures, nil
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// checkNetwork applies ECS's rule that awsvpc tasks need a network configuration.
func checkNetwork(def *ecstypes.TaskDefinition, nc *ecstypes.NetworkConfiguration) error {
	if def.NetworkMode == ecstypes.NetworkModeAwsvpc {
		if nc == nil || nc.AwsvpcConfiguration == nil {
			return invalidParam("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
		}
		return nil
	}
	if nc != nil && nc.AwsvpcConfiguration != nil {
		return invalidParam("Network Configuration is not valid for the given networkMode of this task definition.")
	}
	return nil
}

// instanceFilter compiles a ListContainerInstances filter.
func (s *Service) instanceFilter(filter string) (func(store.ReadTx, *state.ContainerInstance) (bool, error), error) {
	if filter == "" {
		return nil, nil
	}
	expr, err := scheduler.ParseExpression(filter)
	if err != nil {
		return nil, invalidParam("%s", err.Error())
	}
	return func(tx store.ReadTx, ci *state.ContainerInstance) (bool, error) {
		inst := s.launcher.Instance(ci)
		return expr.Match(&inst), nil
	}, nil
}
