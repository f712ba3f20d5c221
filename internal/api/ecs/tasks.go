package ecs

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// Task lifecycle statuses (see internal/agent for the diagram).
const (
	taskProvisioning = "PROVISIONING"
	taskRunning      = "RUNNING"
	taskStopped      = "STOPPED"
)

// RunTask places count tasks on the cluster's instances and records them;
// the instances' agents start them. Tasks that cannot be placed come back as
// failures with ECS's reasons.
func (s *Service) RunTask(ctx context.Context, in *ecstypes.RunTaskRequest) (*ecstypes.RunTaskResponse, error) {
	count := 1
	if in.Count != nil {
		count = int(*in.Count)
	}
	if count < 1 || count > 10 {
		return nil, invalidParam("count must be between 1 and 10.")
	}
	if err := checkLaunch(in.LaunchType, in.CapacityProviderStrategy, ptrTrue(&in.EnableExecuteCommand), len(in.VolumeConfigurations) > 0); err != nil {
		return nil, err
	}
	req := launchRequest{
		clusterRef: in.Cluster, taskDef: in.TaskDefinition, overrides: in.Overrides, startedBy: in.StartedBy,
		group: in.Group, tags: in.Tags, propagate: in.PropagateTags, network: in.NetworkConfiguration,
		constraints: in.PlacementConstraints, strategy: in.PlacementStrategy, count: count,
		clientToken: in.ClientToken,
	}
	tasks, failures, err := s.launch(ctx, req)
	if err != nil {
		return nil, err
	}
	return &ecstypes.RunTaskResponse{Tasks: tasks, Failures: failures}, nil
}

// StartTask starts one task on each named container instance, bypassing
// placement strategies but not resource checks.
func (s *Service) StartTask(ctx context.Context, in *ecstypes.StartTaskRequest) (*ecstypes.StartTaskResponse, error) {
	if n := len(in.ContainerInstances); n < 1 || n > 10 {
		return nil, invalidParam("containerInstances must name between 1 and 10 container instances.")
	}
	if err := checkLaunch("", nil, ptrTrue(&in.EnableExecuteCommand), len(in.VolumeConfigurations) > 0); err != nil {
		return nil, err
	}
	req := launchRequest{
		clusterRef: in.Cluster, taskDef: in.TaskDefinition, overrides: in.Overrides, startedBy: in.StartedBy,
		group: in.Group, tags: in.Tags, propagate: in.PropagateTags, network: in.NetworkConfiguration,
		on: in.ContainerInstances, count: len(in.ContainerInstances),
	}
	tasks, failures, err := s.launch(ctx, req)
	if err != nil {
		return nil, err
	}
	return &ecstypes.StartTaskResponse{Tasks: tasks, Failures: failures}, nil
}

// checkLaunch refuses, clearly, the launch options Berth does not have yet.
func checkLaunch(lt ecstypes.LaunchType, cps []ecstypes.CapacityProviderStrategyItem, exec, volumes bool) error {
	switch {
	case lt != "" && lt != ecstypes.LaunchTypeEc2:
		return invalidParam("Berth runs tasks with the EC2 launch type on registered container instances; launchType %s is not supported yet.", lt)
	case len(cps) > 0:
		return invalidParam("capacityProviderStrategy is not supported yet: Berth places tasks on the cluster's container instances (launch type EC2).")
	case exec:
		return invalidParam("enableExecuteCommand is not supported yet.")
	case volumes:
		return invalidParam("volumeConfigurations (EBS volumes) are not supported.")
	}
	return nil
}

// StopTask asks the task's agent to stop it.
func (s *Service) StopTask(ctx context.Context, in *ecstypes.StopTaskRequest) (*ecstypes.StopTaskResponse, error) {
	reason := in.Reason
	if reason == "" {
		reason = "Task stopped by user"
	}
	if len(reason) > 255 {
		return nil, invalidParam("reason can be at most 255 characters.")
	}
	var out *state.Task
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		cl, err := s.activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		id, ok := s.taskID(cl.ClusterName, in.Task)
		if !ok {
			return invalidParam("The referenced task was not found.")
		}
		t, ok, err := state.Get[state.Task](tx, state.TaskKey(cl.ClusterName, id))
		if err != nil {
			return err
		}
		if !ok {
			return invalidParam("The referenced task was not found.")
		}
		out = t
		_, err = s.launcher.Stop(tx, cl.ClusterName, t, ecstypes.TaskStopCodeUserInitiated, reason)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("task stop requested", "task_arn", out.TaskArn, "reason", reason)
	return &ecstypes.StopTaskResponse{Task: s.taskView(out, true)}, nil
}

// taskID resolves a task id or ARN within cluster.
func (s *Service) taskID(cluster, ref string) (string, bool) {
	if !state.IsARN(ref) {
		return ref, ref != "" && !strings.Contains(ref, "/")
	}
	typ, rest, ok := s.arns.Resource(ref)
	if !ok || typ != "task" {
		return "", false
	}
	c, id, found := strings.Cut(rest, "/")
	if !found { // short ARN form task/<id>
		return rest, true
	}
	return id, c == cluster && id != ""
}

// taskView is a task as the API shows it.
func (s *Service) taskView(t *state.Task, withTags bool) *ecstypes.Task {
	v := t.Task
	if !withTags {
		v.Tags = nil
	}
	orEmpty(&v.Attachments)
	orEmpty(&v.Attributes)
	for i := range v.Containers {
		orEmpty(&v.Containers[i].NetworkBindings)
		orEmpty(&v.Containers[i].NetworkInterfaces)
	}
	return &v
}

// DescribeTasks describes tasks by id or ARN; unknown ones are MISSING.
func (s *Service) DescribeTasks(ctx context.Context, in *ecstypes.DescribeTasksRequest) (*ecstypes.DescribeTasksResponse, error) {
	if len(in.Tasks) > 100 {
		return nil, invalidParam("tasks can have at most 100 items.")
	}
	withTags := slices.Contains(in.Include, ecstypes.TaskFieldTags)
	out := &ecstypes.DescribeTasksResponse{}
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		cl, err := s.activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		for _, ref := range in.Tasks {
			id, ok := s.taskID(cl.ClusterName, ref)
			var t *state.Task
			if ok {
				t, ok, err = state.Get[state.Task](tx, state.TaskKey(cl.ClusterName, id))
				if err != nil {
					return err
				}
			}
			if !ok {
				arn := ref
				if !state.IsARN(ref) {
					arn = s.arns.Task(cl.ClusterName, ref)
				}
				out.Failures = append(out.Failures, ecstypes.Failure{Arn: arn, Reason: "MISSING"})
				continue
			}
			out.Tasks = append(out.Tasks, *s.taskView(t, withTags))
		}
		return nil
	})
	return out, err
}

// ListTasks lists task ARNs of a cluster, by default those desired RUNNING.
func (s *Service) ListTasks(ctx context.Context, in *ecstypes.ListTasksRequest) (*ecstypes.ListTasksResponse, error) {
	p, err := newPage(in.MaxResults, in.NextToken, 100)
	if err != nil {
		return nil, err
	}
	if in.ServiceName != "" && in.Family != "" {
		return nil, invalidParam("family and serviceName cannot both be given.")
	}
	desired := string(in.DesiredStatus)
	if desired == "" {
		desired = taskRunning
	}
	out := &ecstypes.ListTasksResponse{}
	if desired == "PENDING" {
		// "Although you can filter results based on a desired status of
		// PENDING, this doesn't return any results." (the ECS API reference)
		return out, nil
	}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		cl, err := s.activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		instanceID := ""
		if in.ContainerInstance != "" {
			ci, ok, err := s.resolveInstance(tx, cl.ClusterName, in.ContainerInstance)
			if err != nil {
				return err
			}
			if !ok {
				return invalidParam("The referenced container instance %s was not found.", in.ContainerInstance)
			}
			instanceID = ci.ID
		}
		// With a container instance, walk that instance's index; else the
		// cluster's tasks.
		prefix, load := state.TasksClusterPrefix(cl.ClusterName), func(kv store.KV) (*state.Task, error) { return state.Decode[state.Task](kv) }
		if instanceID != "" {
			prefix = state.InstanceTasksKeyPrefix(instanceID)
			load = func(kv store.KV) (*state.Task, error) {
				t, _, err := state.Get[state.Task](tx, state.TaskKey(cl.ClusterName, strings.TrimPrefix(kv.Key, prefix)))
				return t, err
			}
		}
		out.NextToken, err = scan(tx, prefix, p, func(kv store.KV) (bool, error) {
			t, err := load(kv)
			if err != nil || t == nil {
				return false, err
			}
			switch {
			case desired == taskRunning && t.DesiredStatus == taskStopped,
				desired == taskStopped && t.DesiredStatus != taskStopped,
				instanceID != "" && t.InstanceID != instanceID,
				in.StartedBy != "" && t.StartedBy != in.StartedBy,
				in.Family != "" && !strings.HasPrefix(t.TaskDefinitionArn, s.arns.TaskDefinitionFamily(in.Family)),
				in.ServiceName != "" && t.Group != "service:"+in.ServiceName,
				in.LaunchType != "" && t.LaunchType != in.LaunchType:
				return false, nil
			}
			out.TaskArns = append(out.TaskArns, t.TaskArn)
			return true, nil
		})
		return err
	})
	return out, err
}

func itoa(n int) string { return strconv.Itoa(n) }
