package scheduler

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/errdefs"
)

// Container instance statuses that placement distinguishes. Only ACTIVE
// instances receive tasks; DRAINING ones keep theirs but get no new ones.
// Place treats every other status (REGISTERING, DEREGISTERING, INACTIVE,
// ...) like DRAINING; PlaceOn refuses them with ReasonInactive.
const (
	StatusActive   = "ACTIVE"
	StatusDraining = "DRAINING"
)

// Instance is one container instance as placement sees it: a read-only
// snapshot taken by the caller. All fields are inputs; placement never
// modifies an Instance.
type Instance struct {
	// ID is the container instance ID (the last part of its ARN). Required
	// and unique within a snapshot; it names the instance in placements,
	// failures and ECS-style messages, and breaks ties between instances.
	ID string
	// ARN is the container instance ARN, copied into placements and
	// failures (RunTask's failures[].arn).
	ARN string
	// EC2InstanceID is the subject ec2InstanceId of the query language;
	// empty means the instance has none.
	EC2InstanceID string
	// Status is the container instance status; see StatusActive.
	Status string
	// AgentConnected is whether the instance's agent is connected. A
	// disconnected ACTIVE instance refuses tasks with reason AGENT.
	AgentConnected bool
	// AgentVersion is the agent's version (agentVersion), such as "1.14.5".
	AgentVersion string
	// RegisteredAt is when the instance registered (registeredAt); zero if unknown.
	RegisteredAt time.Time
	// RunningTasksCount is the instance's runningTasksCount as ECS reports
	// it (tasks in RUNNING). Tasks placed by a Snapshot start PENDING, so
	// they do not change it.
	RunningTasksCount int
	// RemainingCPU is the CPU units not reserved by tasks.
	RemainingCPU int
	// RemainingMemory is the memory in MiB not reserved by tasks.
	RemainingMemory int
	// UsedPorts are the static host ports in use: those held by tasks and
	// those the agent reserves. ECS allows at most MaxReservedPorts of them.
	UsedPorts []Port
	// Attributes are the instance's attributes, built-in (ecs.os-type,
	// ecs.cpu-architecture, ecs.availability-zone, ecs.instance-type,
	// ecs.ami-id, ecs.capability.*, ...) and custom. An attribute without a
	// value maps to "".
	Attributes map[string]string
	// Tasks are the tasks that hold resources on the instance (desired
	// status RUNNING and not yet stopped), for distinctInstance, spread and
	// task:group.
	Tasks []PlacedTask
}

// PlacedTask is what placement needs to know about a task already on an
// instance.
type PlacedTask struct {
	// Group is the task's group: "service:<name>" for service tasks,
	// "family:<family>" by default for tasks run with RunTask or StartTask,
	// or the group the caller gave.
	Group string
}

// MaxReservedPorts is how many static host ports ECS lets one container
// instance reserve ("the maximum allowed reserved port limit of 100 host
// ports per container instance").
const MaxReservedPorts = 100

// Port is a static host port.
type Port struct {
	// Number is the port number, 1 to 65535.
	Number int
	// Protocol is "tcp" or "udp"; empty means "tcp". TCP and UDP ports of
	// the same number do not conflict (ECS tracks PORTS and PORTS_UDP
	// apart).
	Protocol string
}

// String returns the port as "tcp/80", the form the store keeps.
func (p Port) String() string {
	proto := strings.ToLower(p.Protocol)
	if proto == "" {
		proto = "tcp"
	}
	return proto + "/" + strconv.Itoa(p.Number)
}

// ParsePort reads a port written as "tcp/80", "udp/53" or "80" (tcp).
func ParsePort(s string) (Port, error) {
	proto, num, ok := strings.Cut(s, "/")
	if !ok {
		proto, num = "tcp", s
	}
	n, err := strconv.Atoi(num)
	p := Port{Number: n, Protocol: strings.ToLower(proto)}
	if err != nil || p.code() == 0 {
		return Port{}, invalid("Port %q is not tcp/<n> or udp/<n> with n from 1 to 65535.", s)
	}
	return p, nil
}

// key encodes the port as one comparable number, or says why it cannot.
func (p Port) key() (uint32, error) {
	if p.Number < 1 || p.Number > 65535 {
		return 0, invalid("Host port %d is out of the range 1-65535.", p.Number)
	}
	if k := p.code(); k != 0 {
		return k, nil
	}
	return 0, invalid("Host port %d has protocol %q; want tcp or udp.", p.Number, p.Protocol)
}

// code encodes the port as number<<1 | udp, or 0 if it is not valid.
func (p Port) code() uint32 {
	if p.Number < 1 || p.Number > 65535 {
		return 0
	}
	switch p.Protocol {
	case "", "tcp", "TCP":
		return uint32(p.Number) << 1
	case "udp", "UDP":
		return uint32(p.Number)<<1 | 1
	}
	return 0
}

func portString(key uint32) string {
	if key&1 == 1 {
		return "udp/" + strconv.Itoa(int(key>>1))
	}
	return "tcp/" + strconv.Itoa(int(key>>1))
}

// Task is what placement needs to know about the task (or tasks, all alike)
// to place. The caller computes it from the task definition, the overrides
// and the request.
type Task struct {
	// Group is the task group, required when the task uses distinctInstance
	// or spread: "service:<name>", "family:<family>" or the caller's group.
	Group string
	// CPU is the CPU units the task reserves (0 for none).
	CPU int
	// Memory is the memory in MiB the task reserves (0 for none).
	Memory int
	// Ports are the static host ports the task needs (host ports that are
	// not 0; dynamic ports need no placement).
	Ports []Port
	// RequiredAttributes are the task definition's requiresAttributes: each
	// must be present on the instance, with the given value if it has one.
	RequiredAttributes []Attribute
	// Constraints are the placement constraints, from the task definition
	// and the request together; at most MaxConstraints.
	Constraints []Constraint
	// Strategy is the placement strategy, applied in order, at most
	// MaxStrategies; empty means RunTaskDefaultStrategy.
	Strategy []Strategy
}

// Attribute is an attribute a task requires of its instance.
type Attribute struct {
	// Name is the attribute name.
	Name string
	// Value, when not empty, is the value the attribute must have.
	Value string
}

// Placement says where one task goes.
type Placement struct {
	// InstanceID is the chosen container instance's ID.
	InstanceID string
	// InstanceARN is its ARN.
	InstanceARN string
	// Index is its position in the snapshot's instances.
	Index int
}

// Failure reasons, as ECS writes them in RunTask's and StartTask's
// failures[].reason.
const (
	// ReasonAgent means the instance's agent is disconnected.
	ReasonAgent = "AGENT"
	// ReasonAttribute means the instance lacks an attribute the task definition requires.
	ReasonAttribute = "ATTRIBUTE"
	// ReasonMemberOf means the instance does not satisfy a memberOf constraint.
	ReasonMemberOf = "MemberOf placement constraint unsatisfied."
	// ReasonDistinctInstance means the instance already runs a task of the group.
	ReasonDistinctInstance = "DistinctInstance placement constraint unsatisfied."
	// ReasonCPU means the instance has too few CPU units left.
	ReasonCPU = "RESOURCE:CPU"
	// ReasonMemory means the instance has too little memory left.
	ReasonMemory = "RESOURCE:MEMORY"
	// ReasonPorts means a static host port the task needs is taken, or the
	// instance would exceed MaxReservedPorts.
	ReasonPorts = "RESOURCE:PORTS"
	// ReasonMissing means StartTask named an instance the snapshot does not have.
	ReasonMissing = "MISSING"
	// ReasonInactive means StartTask named an instance that is not ACTIVE or
	// DRAINING (deregistered, or not yet registered).
	ReasonInactive = "INACTIVE"
	// ReasonDraining means StartTask named a DRAINING instance. ECS documents no
	// reason for this case; this one is Berth's.
	ReasonDraining = "DRAINING"
)

// Failure is one container instance's refusal of a task.
type Failure struct {
	// InstanceID is the refusing container instance.
	InstanceID string
	// InstanceARN is its ARN (RunTask's failures[].arn); empty for MISSING.
	InstanceARN string
	// Reason is one of the Reason constants.
	Reason string
	// Detail explains the refusal in one sentence, naming the instance and
	// the numbers or the rule involved.
	Detail string
}

// ErrNoInstances means the cluster has no ACTIVE container instance at all.
// ECS answers RunTask so with InvalidParameterException and exactly this
// message, and a service event then reads "service <name> was unable to
// place a task because no container instance met all of its requirements.
// Reason: No Container Instances were found in your cluster."
var ErrNoInstances = classed(errdefs.ErrInvalidArgument, "No Container Instances were found in your cluster.")

// classedError is an error whose message is the whole wire message and
// whose class is an errdefs error.
type classedError struct {
	msg   string
	class error
}

func (e *classedError) Error() string { return e.msg }
func (e *classedError) Unwrap() error { return e.class }

func classed(class error, msg string) error { return &classedError{msg: msg, class: class} }

func invalid(format string, args ...any) error {
	return classed(errdefs.ErrInvalidArgument, fmt.Sprintf(format, args...))
}
