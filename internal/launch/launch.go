// Package launch is how tasks come to be and stop being, shared by the ECS
// API (RunTask, StartTask, StopTask) and the service controller: the
// scheduler's view of a cluster's instances, what a task needs from an
// instance, and the writes that create a placed task or ask for it to stop.
// Everything here runs inside the caller's store transaction.
package launch

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/scheduler"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// Task lifecycle statuses the control plane sets or tests. ACTIVATING and
// DEACTIVATING are also set by the service scheduler around a task's
// target registrations (controller.Services).
const (
	StatusProvisioning = "PROVISIONING"
	StatusActivating   = "ACTIVATING"
	StatusRunning      = "RUNNING"
	StatusDeactivating = "DEACTIVATING"
	StatusStopped      = "STOPPED"
)

// Launcher creates and stops tasks.
type Launcher struct {
	ARNs state.ARNs
	// Now is the clock; records' timestamps come from it.
	Now func() time.Time
	// Connected reports whether an instance's agent is connected.
	Connected func(instanceID string) bool
}

// Instances lists the cluster's instances as the scheduler sees them.
func (l *Launcher) Instances(tx store.ReadTx, cluster string) ([]scheduler.Instance, error) {
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
		out = append(out, l.Instance(ci))
	}
	return out, nil
}

// Instance is one instance as the scheduler (and the cluster query
// language) sees it.
func (l *Launcher) Instance(ci *state.ContainerInstance) scheduler.Instance {
	cpu, mem := ci.Remaining()
	inst := scheduler.Instance{
		ID: ci.ID, ARN: ci.ContainerInstanceArn, EC2InstanceID: ci.Ec2InstanceId, Status: ci.Status,
		AgentConnected: l.Connected != nil && l.Connected(ci.ID), RemainingCPU: cpu, RemainingMemory: mem,
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
	return inst
}

func invalidParam(format string, args ...any) error {
	return ecstypes.NewInvalidParameterException(format, args...)
}

// Requirements computes what one task of def needs from an instance: the
// task-level size if given, else the sum over containers (memory counts each
// container's reservation, else its limit), and the static host ports.
func Requirements(def *ecstypes.TaskDefinition, ov *ecstypes.TaskOverride) (scheduler.Task, error) {
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

// PlacementRules converts and checks a request's constraints and strategy.
func PlacementRules(cs []ecstypes.PlacementConstraint, ss []ecstypes.PlacementStrategy) ([]scheduler.Constraint, []scheduler.Strategy, error) {
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

// TaskDefConstraints are a task definition's own memberOf constraints.
func TaskDefConstraints(def *ecstypes.TaskDefinition) []scheduler.Constraint {
	var out []scheduler.Constraint
	for _, c := range def.PlacementConstraints {
		if con, err := scheduler.ParseConstraint(string(c.Type), c.Expression); err == nil {
			out = append(out, con)
		}
	}
	return out
}

// Spec is what a new task is made of besides where it runs.
type Spec struct {
	TaskDef   *state.TaskDefinition
	Need      scheduler.Task // Group set
	Overrides *ecstypes.TaskOverride
	StartedBy string
	Tags      []ecstypes.Tag
	Propagate ecstypes.PropagateTags
	// Service and Deployment name the service deployment the task belongs
	// to ("" for a standalone task); such a task is also indexed under its
	// service.
	Service, Deployment string
	// ServiceTags are the service's tags, propagated when Propagate is SERVICE.
	ServiceTags []ecstypes.Tag
	// Balanced: the service has loadBalancers, so the task is ACTIVATING
	// once running until it is registered in them (state.Task.Activating).
	Balanced bool
}

// Create records one placed task, its spec, its index entries and the
// resources it holds on its instance.
func (l *Launcher) Create(tx store.Tx, cluster, id, instanceID string, sp Spec) (*state.Task, error) {
	ci, ok, err := state.Get[state.ContainerInstance](tx, state.InstanceKey(cluster, instanceID))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("placed on unknown instance %s", instanceID)
	}
	def := &sp.TaskDef.TaskDefinition
	need := sp.Need
	arn := l.ARNs.Task(cluster, id)
	created := awsmodel.NewTime(l.Now())
	hold := state.Reservation{CPU: need.CPU, Memory: need.Memory}
	for _, p := range need.Ports {
		hold.Ports = append(hold.Ports, p.Protocol+"/"+strconv.Itoa(p.Number))
	}
	if err := ci.Place(hold, need.Group); err != nil {
		return nil, err
	}
	t := &state.Task{ID: id, InstanceID: instanceID, DesiredVersion: 1, Reserved: &hold}
	t.TaskArn = arn
	t.ClusterArn = l.ARNs.Cluster(cluster)
	t.TaskDefinitionArn = def.TaskDefinitionArn
	t.ContainerInstanceArn = ci.ContainerInstanceArn
	t.LastStatus = StatusProvisioning
	t.DesiredStatus = StatusRunning
	t.LaunchType = ecstypes.LaunchTypeEc2
	t.Cpu, t.Memory = strconv.Itoa(need.CPU), strconv.Itoa(need.Memory)
	t.CreatedAt = created
	t.StartedBy = sp.StartedBy
	t.Group = need.Group
	t.Activating = sp.Balanced
	t.Version = 1
	t.HealthStatus = ecstypes.HealthStatusUnknown
	t.Overrides = sp.Overrides
	if t.Overrides == nil {
		t.Overrides = &ecstypes.TaskOverride{}
	}
	orEmpty(&t.Overrides.ContainerOverrides)
	orEmpty(&t.Overrides.InferenceAcceleratorOverrides)
	t.Attributes = []ecstypes.Attribute{{Name: "ecs.cpu-architecture", Value: attrValue(ci, "ecs.cpu-architecture")}}
	tags := slices.Clone(sp.Tags)
	switch sp.Propagate {
	case ecstypes.PropagateTagsTaskDefinition:
		tags = MergeTags(sp.TaskDef.Tags, tags)
	case ecstypes.PropagateTagsService:
		tags = MergeTags(sp.ServiceTags, tags)
	}
	t.Tags = tags
	for _, c := range def.ContainerDefinitions {
		tc := ecstypes.Container{
			ContainerArn: l.ARNs.Container(cluster, id, NewUUID()),
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
	spec := &state.TaskSpec{TaskArn: arn, Cluster: cluster, TaskDefinition: *def, Overrides: sp.Overrides}
	if err := state.Create(tx, state.TaskKey(cluster, id), t); err != nil {
		return nil, err
	}
	if err := state.Create(tx, state.TaskSpecKey(id), spec); err != nil {
		return nil, err
	}
	if err := tx.Put(state.InstanceTaskKey(instanceID, id), []byte(cluster)); err != nil {
		return nil, err
	}
	if sp.Service != "" {
		if err := tx.Put(state.ServiceTaskKey(cluster, sp.Service, id), []byte(sp.Deployment)); err != nil {
			return nil, err
		}
	}
	if err := state.DesiredChanged(tx, instanceID); err != nil {
		return nil, err
	}
	return t, state.Put(tx, state.InstanceKey(cluster, instanceID), ci)
}

// MergeTags returns base with over applied on top (same key: over wins).
func MergeTags(base, over []ecstypes.Tag) []ecstypes.Tag {
	out := slices.Clone(base)
	for _, t := range over {
		if i := slices.IndexFunc(out, func(x ecstypes.Tag) bool { return x.Key == t.Key }); i >= 0 {
			out[i] = t
		} else {
			out = append(out, t)
		}
	}
	return out
}

// Stop asks for a task to stop: desired STOPPED, with code and reason unless
// the agent already reported why it is stopping. It writes the task and
// wakes its agent, and reports whether anything changed.
func (l *Launcher) Stop(tx store.Tx, cluster string, t *state.Task, code ecstypes.TaskStopCode, reason string) (bool, error) {
	if t.DesiredStatus == StatusStopped {
		return false, nil
	}
	t.DesiredStatus = StatusStopped
	t.DesiredVersion++
	t.Task.Version++
	// A reason the agent already reported (a failed start, an exit) stays.
	if t.StopCode == "" {
		t.StopCode = code
		t.StoppedReason = reason
	}
	t.StoppingAt = awsmodel.NewTime(l.Now())
	if err := state.Put(tx, state.TaskKey(cluster, t.ID), t); err != nil {
		return false, err
	}
	return true, state.DesiredChanged(tx, t.InstanceID)
}

// MarkStopped records a task as stopped without its agent (its instance is
// gone). The caller updates the instance's counters.
func MarkStopped(t *state.Task, code, reason string, now time.Time) {
	t.LastStatus, t.DesiredStatus = StatusStopped, StatusStopped
	if code != "" && t.StopCode == "" {
		t.StopCode = ecstypes.TaskStopCode(code)
	}
	if reason != "" && t.StoppedReason == "" {
		t.StoppedReason = reason
	}
	at := awsmodel.NewTime(now)
	if t.StoppingAt == nil {
		t.StoppingAt = at
	}
	t.ExecutionStoppedAt, t.StoppedAt = at, at
	for i := range t.Containers {
		if t.Containers[i].LastStatus != StatusStopped {
			t.Containers[i].LastStatus = StatusStopped
		}
	}
	t.Reserved = nil
	t.DesiredVersion++
	t.Task.Version++
}

func attrValue(ci *state.ContainerInstance, name string) string {
	for _, a := range ci.Attributes {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

func orEmpty[T any](s *[]T) {
	if *s == nil {
		*s = []T{}
	}
}

// NewTaskID is a random 32-hex-digit id, the form of ECS task and container
// instance ids.
func NewTaskID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewUUID is a random UUID (version 4), the form of ECS container ids.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// NewSeed is a random seed for the scheduler's random choices.
func NewSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// NewDigits is n random decimal digits, the form of ECS deployment ids
// ("ecs-svc/" and 19 digits).
func NewDigits(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	if b[0] == '0' {
		b[0] = '1'
	}
	return string(b)
}

// NewAlnum is n random letters and digits, the form of service deployment ids.
func NewAlnum(n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

// ServiceTask is what one task of a service needs: the revision's
// requirements, the service's task group, its constraints with the
// revision's own, and its strategy (ECS's service default when it has none).
func ServiceTask(def *ecstypes.TaskDefinition, service string, cs []ecstypes.PlacementConstraint, ss []ecstypes.PlacementStrategy) (scheduler.Task, error) {
	need, err := Requirements(def, nil)
	if err != nil {
		return need, err
	}
	constraints, strategy, err := PlacementRules(cs, ss)
	if err != nil {
		return need, err
	}
	need.Group = "service:" + service
	need.Constraints = append(constraints, TaskDefConstraints(def)...)
	need.Strategy = strategy
	if len(strategy) == 0 {
		need.Strategy = scheduler.ServiceDefaultStrategy()
	}
	return need, nil
}

// DaemonInstance is one instance of a cluster as a DAEMON service sees it.
type DaemonInstance struct {
	ID, Status string
	// Eligible: ACTIVE and meeting the service's constraints and the
	// revision's required attributes, so one task of the service belongs here.
	Eligible bool
}

// DaemonInstances lists every instance of the cluster and whether a DAEMON
// service's task (need) belongs on it.
func (l *Launcher) DaemonInstances(tx store.ReadTx, cluster string, need scheduler.Task) ([]DaemonInstance, error) {
	kvs, err := tx.List(state.InstancesClusterPrefix(cluster), "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]DaemonInstance, 0, len(kvs))
	for _, kv := range kvs {
		ci, err := state.Decode[state.ContainerInstance](kv)
		if err != nil {
			return nil, err
		}
		di := DaemonInstance{ID: ci.ID, Status: ci.Status}
		if ci.Status == state.InstanceActive {
			si := l.Instance(ci)
			di.Eligible = scheduler.Eligible(&si, need)
		}
		out = append(out, di)
	}
	return out, nil
}
