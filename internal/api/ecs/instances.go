package ecs

import (
	"context"
	"slices"
	"strconv"

	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/launch"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// RegisterContainerInstance registers an instance through the ECS API, as
// the AWS ECS agent does; Berth's own agent registers through the agent
// protocol, which shares this record. Re-registering an ARN updates it.
func (s *Service) RegisterContainerInstance(ctx context.Context, in *ecstypes.RegisterContainerInstanceRequest) (*ecstypes.RegisterContainerInstanceResponse, error) {
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	res := state.Resources{}
	for _, r := range in.TotalResources {
		switch r.Name {
		case "CPU":
			res.CPU = int(r.IntegerValue)
		case "MEMORY":
			res.MemoryMiB = int(r.IntegerValue)
		case "PORTS", "PORTS_UDP":
			for _, p := range r.StringSetValue {
				n, err := strconv.Atoi(p)
				if err != nil || n < 1 || n > 65535 {
					return nil, invalidParam("Invalid port %q in totalResources %s.", p, r.Name)
				}
				if r.Name == "PORTS" {
					res.ReservedTCP = append(res.ReservedTCP, n)
				} else {
					res.ReservedUDP = append(res.ReservedUDP, n)
				}
			}
		}
	}
	if res.CPU <= 0 || res.MemoryMiB <= 0 {
		return nil, invalidParam("totalResources must include positive CPU and MEMORY values.")
	}
	for _, a := range in.Attributes {
		if !attrNameRE.MatchString(a.Name) {
			return nil, invalidParam("Attribute name %q is not valid.", a.Name)
		}
	}
	var version ecstypes.VersionInfo
	if in.VersionInfo != nil {
		version = *in.VersionInfo
	}
	var out *state.ContainerInstance
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		cl, err := s.activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		ci, id := &state.ContainerInstance{}, ""
		if in.ContainerInstanceArn != "" {
			c, iid, ok := s.arns.ContainerInstanceID(in.ContainerInstanceArn)
			if !ok || (c != "" && c != cl.ClusterName) {
				return invalidParam("containerInstanceArn %q is not a container instance of cluster %s.", in.ContainerInstanceArn, cl.ClusterName)
			}
			prev, ok, err := state.Get[state.ContainerInstance](tx, state.InstanceKey(cl.ClusterName, iid))
			if err != nil {
				return err
			}
			if !ok || prev.Status == state.InstanceInactive {
				return invalidParam("Container instance %s is not registered.", in.ContainerInstanceArn)
			}
			ci, id = prev, iid
		} else {
			id = launch.NewTaskID() // the same 32-hex-digit form as ECS instance ids
		}
		state.RegisterInstance(ci, s.arns, cl.ClusterName, id, res, in.Attributes, version, ci.Held, s.now())
		if len(in.Tags) > 0 {
			ci.Tags = dedupeTags(in.Tags)
		}
		out = ci
		if err := state.Put(tx, state.InstanceKey(cl.ClusterName, id), ci); err != nil {
			return err
		}
		return tx.Put(state.InstanceIDKey(id), []byte(cl.ClusterName))
	})
	if err != nil {
		return nil, err
	}
	view, err := s.instanceView(ctx, out, true)
	if err != nil {
		return nil, err
	}
	return &ecstypes.RegisterContainerInstanceResponse{ContainerInstance: view}, nil
}

// resolveInstance finds a container instance of cluster by id or ARN.
func (s *Service) resolveInstance(tx store.ReadTx, cluster, ref string) (*state.ContainerInstance, bool, error) {
	c, id, ok := s.arns.ContainerInstanceID(ref)
	if !ok || (c != "" && c != cluster) {
		return nil, false, nil
	}
	return state.Get[state.ContainerInstance](tx, state.InstanceKey(cluster, id))
}

func (s *Service) missingInstanceARN(cluster, ref string) string {
	if state.IsARN(ref) {
		return ref
	}
	return s.arns.ContainerInstance(cluster, ref)
}

func (s *Service) instanceView(ctx context.Context, ci *state.ContainerInstance, withTags bool) (*ecstypes.ContainerInstance, error) {
	var v *ecstypes.ContainerInstance
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		var err error
		v, err = s.instanceViewTx(tx, ci, withTags)
		return err
	})
	return v, err
}

// instanceViewTx is an instance as Describe shows it: live task counts and
// agent connectivity.
func (s *Service) instanceViewTx(tx store.ReadTx, ci *state.ContainerInstance, withTags bool) (*ecstypes.ContainerInstance, error) {
	v := ci.ContainerInstance
	v.RunningTasksCount = int32(ci.RunningTasks)
	v.PendingTasksCount = int32(ci.LiveTasks - ci.RunningTasks)
	v.AgentConnected = ci.Status != state.InstanceInactive && s.connected(ci.ID)
	if !withTags {
		v.Tags = nil
	}
	orEmpty(&v.Attributes)
	orEmpty(&v.Attachments)
	return &v, nil
}

// DescribeContainerInstances describes instances by id or ARN.
func (s *Service) DescribeContainerInstances(ctx context.Context, in *ecstypes.DescribeContainerInstancesRequest) (*ecstypes.DescribeContainerInstancesResponse, error) {
	if len(in.ContainerInstances) > 100 {
		return nil, invalidParam("containerInstances can have at most 100 items.")
	}
	out := &ecstypes.DescribeContainerInstancesResponse{}
	withTags := slices.Contains(in.Include, ecstypes.ContainerInstanceFieldTags)
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		cl, err := s.activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		for _, ref := range in.ContainerInstances {
			ci, ok, err := s.resolveInstance(tx, cl.ClusterName, ref)
			if err != nil {
				return err
			}
			if !ok {
				out.Failures = append(out.Failures, ecstypes.Failure{Arn: s.missingInstanceARN(cl.ClusterName, ref), Reason: "MISSING"})
				continue
			}
			v, err := s.instanceViewTx(tx, ci, withTags)
			if err != nil {
				return err
			}
			out.ContainerInstances = append(out.ContainerInstances, *v)
		}
		return nil
	})
	return out, err
}

// ListContainerInstances lists instance ARNs, filtered by status and by a
// cluster query language expression.
func (s *Service) ListContainerInstances(ctx context.Context, in *ecstypes.ListContainerInstancesRequest) (*ecstypes.ListContainerInstancesResponse, error) {
	p, err := newPage(in.MaxResults, in.NextToken, 100)
	if err != nil {
		return nil, err
	}
	match, err := s.instanceFilter(in.Filter)
	if err != nil {
		return nil, err
	}
	out := &ecstypes.ListContainerInstancesResponse{}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		cl, err := s.activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		out.NextToken, err = scan(tx, state.InstancesClusterPrefix(cl.ClusterName), p, func(kv store.KV) (bool, error) {
			ci, err := state.Decode[state.ContainerInstance](kv)
			if err != nil {
				return false, err
			}
			if ci.Status == state.InstanceInactive || (in.Status != "" && ci.Status != string(in.Status)) {
				return false, nil
			}
			if match != nil {
				if ok, err := match(tx, ci); !ok || err != nil {
					return false, err
				}
			}
			out.ContainerInstanceArns = append(out.ContainerInstanceArns, ci.ContainerInstanceArn)
			return true, nil
		})
		return err
	})
	return out, err
}

// UpdateContainerInstancesState sets instances ACTIVE or DRAINING. A
// DRAINING instance gets no new tasks.
func (s *Service) UpdateContainerInstancesState(ctx context.Context, in *ecstypes.UpdateContainerInstancesStateRequest) (*ecstypes.UpdateContainerInstancesStateResponse, error) {
	if in.Status != ecstypes.ContainerInstanceStatusActive && in.Status != ecstypes.ContainerInstanceStatusDraining {
		return nil, invalidParam("Container instances can only be set to ACTIVE or DRAINING, not %s.", in.Status)
	}
	if len(in.ContainerInstances) > 10 {
		return nil, invalidParam("containerInstances can have at most 10 items.")
	}
	out := &ecstypes.UpdateContainerInstancesStateResponse{}
	var changed []*state.ContainerInstance
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		out.Failures, changed = nil, nil
		cl, err := s.activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		for _, ref := range in.ContainerInstances {
			ci, ok, err := s.resolveInstance(tx, cl.ClusterName, ref)
			if err != nil {
				return err
			}
			if !ok || ci.Status == state.InstanceInactive {
				out.Failures = append(out.Failures, ecstypes.Failure{Arn: s.missingInstanceARN(cl.ClusterName, ref), Reason: "MISSING"})
				continue
			}
			if ci.Status != string(in.Status) {
				ci.Status = string(in.Status)
				ci.Version++
				if err := state.Put(tx, state.InstanceKey(cl.ClusterName, ci.ID), ci); err != nil {
					return err
				}
				if err := state.DesiredChanged(tx, ci.ID); err != nil {
					return err
				}
			}
			changed = append(changed, ci)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, ci := range changed {
		v, err := s.instanceView(ctx, ci, false)
		if err != nil {
			return nil, err
		}
		out.ContainerInstances = append(out.ContainerInstances, *v)
	}
	return out, nil
}

// DeregisterContainerInstance takes an instance out of its cluster for
// good: it stays describable as INACTIVE, its agent is told to stop
// everything, and it cannot register again. An instance with live tasks
// needs force; its tasks are then recorded as stopped.
func (s *Service) DeregisterContainerInstance(ctx context.Context, in *ecstypes.DeregisterContainerInstanceRequest) (*ecstypes.DeregisterContainerInstanceResponse, error) {
	var gone *state.ContainerInstance
	now := s.now()
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		cl, err := s.activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		ci, ok, err := s.resolveInstance(tx, cl.ClusterName, in.ContainerInstance)
		if err != nil {
			return err
		}
		if !ok || ci.Status == state.InstanceInactive {
			return invalidParam("The referenced container instance %s does not exist in cluster %s.", in.ContainerInstance, cl.ClusterName)
		}
		var live []*state.Task
		if err := state.EachInstanceTask(tx, ci.ID, func(t *state.Task) error {
			if t.LastStatus != "STOPPED" {
				live = append(live, t)
			}
			return nil
		}); err != nil {
			return err
		}
		if len(live) > 0 && !ptrTrue(in.Force) {
			return invalidParam("The container instance has %d tasks that are not stopped. Stop them first or deregister with force.", len(live))
		}
		for _, t := range live {
			prev, code := t.LastStatus, "UserInitiated"
			if t.StartedAt == nil {
				code = "TaskFailedToStart"
			}
			released := t.Reserved
			launch.MarkStopped(t, code, "Container instance deregistered", now)
			ci.TaskMoved(t.Group, prev, taskStopped, released)
			if err := state.PutTask(tx, cl.ClusterName, t, prev, now); err != nil {
				return err
			}
		}
		ci.Status = state.InstanceInactive
		ci.Version++
		gone = ci
		if err := state.Put(tx, state.InstanceKey(cl.ClusterName, ci.ID), ci); err != nil {
			return err
		}
		return state.DesiredChanged(tx, ci.ID)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("container instance deregistered", "instance_id", gone.ID, "cluster", gone.Cluster)
	v := gone.ContainerInstance
	v.AgentConnected = false
	return &ecstypes.DeregisterContainerInstanceResponse{ContainerInstance: &v}, nil
}

func ptrTrue(b *bool) bool { return b != nil && *b }
