package ecs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
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
	constraints, strategy, err := placementRules(req.constraints, req.strategy)
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
	seed := newSeed()
	ids := make([]string, req.count)
	for i := range ids {
		ids[i] = newTaskID()
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
		need, err := requirements(def, req.overrides)
		if err != nil {
			return err
		}
		group := req.group
		if group == "" {
			group = "family:" + def.Family
		}
		need.Group = group
		need.Constraints = append(constraints, tdConstraints(def)...)
		need.Strategy = strategy
		instances, err := s.placementSnapshot(tx, cl.ClusterName)
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
			t, err := s.createTask(tx, cl.ClusterName, ids[i], td, p.InstanceID, need, req)
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

// requirements computes what one task of def needs from an instance: the
// task-level size if given, else the sum over containers (memory counts each
// container's reservation, else its limit), and the static host ports.
func requirements(def *ecstypes.TaskDefinition, ov *ecstypes.TaskOverride) (scheduler.Task, error) {
	var t scheduler.Task
	overrides := map[string]ecstypes.ContainerOverride{}
	if ov != nil {
		for _, co := range ov.ContainerOverrides {
			if !slices.ContainsFunc(def.ContainerDefinitions, func(c ecstypes.ContainerDefinition) bool { return c.Name == co.Name }) {
				return t, invalidParam("Override for container named %s is not a container in the TaskDefinition.", co.Name)
			}
			overrides[co.Name] = co
		}
	}
	cpu, mem := 0, 0
	for _, c := range def.ContainerDefinitions {
		ccpu, climit, cres := int(c.Cpu), c.Memory, c.MemoryReservation
		if co, ok := overrides[c.Name]; ok {
			if co.Cpu != nil {
				ccpu = int(*co.Cpu)
			}
			if co.Memory != nil {
				climit = co.Memory
			}
			if co.MemoryReservation != nil {
				cres = co.MemoryReservation
			}
		}
		cpu += ccpu
		switch {
		case cres != nil:
			mem += int(*cres)
		case climit != nil:
			mem += int(*climit)
		}
		if def.NetworkMode == ecstypes.NetworkModeAwsvpc {
			continue // each task has its own address: no host ports
		}
		for _, pm := range c.PortMappings {
			if pm.HostPort != nil && *pm.HostPort != 0 {
				t.Ports = append(t.Ports, scheduler.Port{Number: int(*pm.HostPort), Protocol: string(pm.Protocol)})
			}
		}
	}
	if def.Cpu != "" {
		cpu, _ = strconv.Atoi(def.Cpu)
	}
	if def.Memory != "" {
		mem, _ = strconv.Atoi(def.Memory)
	}
	if ov != nil && ov.Cpu != "" {
		n, err := strconv.Atoi(ov.Cpu)
		if err != nil {
			return t, invalidParam("overrides.cpu %q must be CPU units.", ov.Cpu)
		}
		cpu = n
	}
	if ov != nil && ov.Memory != "" {
		n, err := strconv.Atoi(ov.Memory)
		if err != nil {
			return t, invalidParam("overrides.memory %q must be MiB.", ov.Memory)
		}
		mem = n
	}
	t.CPU, t.Memory = cpu, mem
	for _, a := range def.RequiresAttributes {
		t.RequiredAttributes = append(t.RequiredAttributes, scheduler.Attribute{Name: a.Name, Value: a.Value})
	}
	return t, nil
}

// placementRules converts and checks the request's constraints and strategy.
func placementRules(cs []ecstypes.PlacementConstraint, ss []ecstypes.PlacementStrategy) ([]scheduler.Constraint, []scheduler.Strategy, error) {
	if len(cs) > 10 {
		return nil, nil, invalidParam("You can specify at most 10 placement constraints.")
	}
	if len(ss) > 5 {
		return nil, nil, invalidParam("You can specify at most 5 placement strategies.")
	}
	var out []scheduler.Constraint
	for _, c := range cs {
		con, err := scheduler.ParseConstraint(string(c.Type), c.Expression)
		if err != nil {
			return nil, nil, invalidParam("%s", err.Error())
		}
		out = append(out, con)
	}
	var strat []scheduler.Strategy
	for _, st := range ss {
		x, err := scheduler.ParseStrategy(string(st.Type), st.Field)
		if err != nil {
			return nil, nil, invalidParam("%s", err.Error())
		}
		strat = append(strat, x)
	}
	return out, strat, nil
}

// tdConstraints are the task definition's own memberOf constraints.
func tdConstraints(def *ecstypes.TaskDefinition) []scheduler.Constraint {
	var out []scheduler.Constraint
	for _, c := range def.PlacementConstraints {
		if con, err := scheduler.ParseConstraint(string(c.Type), c.Expression); err == nil {
			out = append(out, con)
		}
	}
	return out
}

// placementSnapshot lists the cluster's instances as the scheduler sees them.
func (s *Service) placementSnapshot(tx store.ReadTx, cluster string) ([]scheduler.Instance, error) {
	kvs, err := tx.List(state.InstancesClusterPrefix(cluster), "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]scheduler.Instance, 0, len(kvs))
	for _, kv := range kvs {
		ci, err := state.Decode[state.ContainerInstance](kv)
		if err != nil {
			return nil, err
		}
		inst, err := s.schedInstance(ci)
		if err != nil {
			return nil, err
		}
		out = append(out, inst)
	}
	return out, nil
}

// schedInstance is one instance as the scheduler (and the cluster query
// language) sees it.
func (s *Service) schedInstance(ci *state.ContainerInstance) (scheduler.Instance, error) {
	cpu, mem := ci.Remaining()
	inst := scheduler.Instance{
		ID: ci.ID, ARN: ci.ContainerInstanceArn, EC2InstanceID: ci.Ec2InstanceId, Status: ci.Status,
		AgentConnected: s.connected(ci.ID), RemainingCPU: cpu, RemainingMemory: mem,
		Attributes: make(map[string]string, len(ci.Attributes)),
	}
	if ci.VersionInfo != nil {
		inst.AgentVersion = ci.VersionInfo.AgentVersion
	}
	if ci.RegisteredAt != nil {
		inst.RegisteredAt = ci.RegisteredAt.Time
	}
	for _, a := range ci.Attributes {
		inst.Attributes[a.Name] = a.Value
	}
	for _, p := range ci.Registered.ReservedTCP {
		inst.UsedPorts = append(inst.UsedPorts, scheduler.Port{Number: p, Protocol: "tcp"})
	}
	for _, p := range ci.Registered.ReservedUDP {
		inst.UsedPorts = append(inst.UsedPorts, scheduler.Port{Number: p, Protocol: "udp"})
	}
	for _, p := range ci.Held.Ports {
		if port, err := scheduler.ParsePort(p); err == nil {
			inst.UsedPorts = append(inst.UsedPorts, port)
		}
	}
	inst.RunningTasksCount = ci.RunningTasks
	for group, n := range ci.Groups {
		for range n {
			inst.Tasks = append(inst.Tasks, scheduler.PlacedTask{Group: group})
		}
	}
	return inst, nil
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
		inst, err := s.schedInstance(ci)
		if err != nil {
			return false, err
		}
		return expr.Match(&inst), nil
	}, nil
}

func cutPort(p string) (string, int, bool) {
	proto, num, ok := strings.Cut(p, "/")
	n, err := strconv.Atoi(num)
	return proto, n, ok && err == nil
}

// familyOf is the family of a task definition ARN.
func familyOf(arn string) string {
	_, rest, _ := strings.Cut(arn, "task-definition/")
	fam, _, _ := strings.Cut(rest, ":")
	return fam
}

// createTask records one placed task, its spec, its index entry and the
// resources it holds on its instance.
func (s *Service) createTask(tx store.Tx, cluster, id string, td *state.TaskDefinition, instanceID string, need scheduler.Task, req launchRequest) (*state.Task, error) {
	ci, ok, err := state.Get[state.ContainerInstance](tx, state.InstanceKey(cluster, instanceID))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("placed on unknown instance %s", instanceID)
	}
	def := &td.TaskDefinition
	arn := s.arns.Task(cluster, id)
	created := awsmodel.NewTime(s.now())
	hold := state.Reservation{CPU: need.CPU, Memory: need.Memory}
	for _, p := range need.Ports {
		hold.Ports = append(hold.Ports, p.Protocol+"/"+strconv.Itoa(p.Number))
	}
	if err := ci.Place(hold, need.Group); err != nil {
		return nil, err
	}
	t := &state.Task{ID: id, InstanceID: instanceID, DesiredVersion: 1, Reserved: &hold}
	t.TaskArn = arn
	t.ClusterArn = s.arns.Cluster(cluster)
	t.TaskDefinitionArn = def.TaskDefinitionArn
	t.ContainerInstanceArn = ci.ContainerInstanceArn
	t.LastStatus = taskProvisioning
	t.DesiredStatus = taskRunning
	t.LaunchType = ecstypes.LaunchTypeEc2
	t.Cpu, t.Memory = strconv.Itoa(need.CPU), strconv.Itoa(need.Memory)
	t.CreatedAt = created
	t.StartedBy = req.startedBy
	t.Group = need.Group
	t.Version = 1
	t.HealthStatus = ecstypes.HealthStatusUnknown
	t.Connectivity = ""
	t.Overrides = req.overrides
	if t.Overrides == nil {
		t.Overrides = &ecstypes.TaskOverride{}
	}
	orEmpty(&t.Overrides.ContainerOverrides)
	orEmpty(&t.Overrides.InferenceAcceleratorOverrides)
	t.Attributes = []ecstypes.Attribute{{Name: "ecs.cpu-architecture", Value: attrValue(ci, "ecs.cpu-architecture")}}
	tags := slices.Clone(req.tags)
	if req.propagate == ecstypes.PropagateTagsTaskDefinition {
		tags, _ = mergeTags(td.Tags, tags)
	}
	t.Tags = tags
	for _, c := range def.ContainerDefinitions {
		tc := ecstypes.Container{
			ContainerArn: s.arns.Container(cluster, id, newUUID()),
			TaskArn:      arn,
			Name:         c.Name,
			Image:        c.Image,
			LastStatus:   "PENDING",
			Cpu:          strconv.Itoa(int(c.Cpu)),
			HealthStatus: ecstypes.HealthStatusUnknown,
		}
		if c.Memory != nil {
			tc.Memory = strconv.Itoa(int(*c.Memory))
		}
		if c.MemoryReservation != nil {
			tc.MemoryReservation = strconv.Itoa(int(*c.MemoryReservation))
		}
		t.Containers = append(t.Containers, tc)
	}
	spec := &state.TaskSpec{TaskArn: arn, Cluster: cluster, TaskDefinition: *def, Overrides: req.overrides}
	if err := state.Create(tx, state.TaskKey(cluster, id), t); err != nil {
		return nil, err
	}
	if err := state.Create(tx, state.TaskSpecKey(id), spec); err != nil {
		return nil, err
	}
	if err := tx.Put(state.InstanceTaskKey(instanceID, id), []byte(cluster)); err != nil {
		return nil, err
	}
	if err := state.DesiredChanged(tx, instanceID); err != nil {
		return nil, err
	}
	return t, state.Put(tx, state.InstanceKey(cluster, instanceID), ci)
}

func attrValue(ci *state.ContainerInstance, name string) string {
	for _, a := range ci.Attributes {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}
