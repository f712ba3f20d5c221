package state

import (
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
)

// Cluster is a stored cluster: the ECS Cluster shape as DescribeClusters
// returns it with every include. Counts and statistics are filled in when it
// is described.
type Cluster = ecstypes.Cluster

// Family is the bookkeeping of one task definition family.
type Family struct {
	Name string `json:"name"`
	// LastRevision is the highest revision ever registered; revisions are
	// never reused, even after deletion.
	LastRevision int32 `json:"lastRevision"`
	// Revisions counts revisions that still exist (not deleted).
	Revisions int `json:"revisions"`
	// ActiveRevisions counts revisions whose status is ACTIVE.
	ActiveRevisions int `json:"activeRevisions"`
	// LatestActive is the highest ACTIVE revision, 0 if none.
	LatestActive int32 `json:"latestActive"`
}

// TaskDefinition is one stored task definition revision with its tags
// (which the TaskDefinition shape does not carry).
type TaskDefinition struct {
	TaskDefinition ecstypes.TaskDefinition `json:"taskDefinition"`
	Tags           []ecstypes.Tag          `json:"tags,omitempty"`
}

// ContainerInstance is one stored container instance: the ECS shape (with
// its tags) plus what placement needs in plain form. The counters change in
// the same transactions as the tasks they count, so placement and Describe
// never decode an instance's tasks.
type ContainerInstance struct {
	ecstypes.ContainerInstance
	// ID is the instance id (the last part of its ARN).
	ID string `json:"berthId"`
	// Cluster is the cluster name.
	Cluster string `json:"berthCluster"`
	// Registered is what the agent offers.
	Registered Resources `json:"berthRegistered"`
	// Held is what the instance's live tasks hold.
	Held Reservation `json:"berthHeld"`
	// AgentAttributes names the attributes the agent registered (replaced
	// wholesale at each registration); the rest were set with PutAttributes.
	AgentAttributes []string `json:"berthAgentAttributes,omitempty"`
	// LiveTasks counts tasks placed here that are not STOPPED.
	LiveTasks int `json:"berthLiveTasks"`
	// RunningTasks counts tasks whose lastStatus is RUNNING.
	RunningTasks int `json:"berthRunningTasks"`
	// Groups counts live tasks by task group.
	Groups map[string]int `json:"berthGroups,omitempty"`
	// SecretHash is the SHA-256 (hex) of the instance secret its agent
	// presents; empty for instances registered through the ECS API.
	SecretHash string `json:"berthSecretHash,omitempty"`
}

// Task is one stored task: the ECS shape, where it runs, and bookkeeping
// for the agent protocol.
type Task struct {
	ecstypes.Task
	// ID is the task id (the last part of its ARN).
	ID string `json:"berthId"`
	// InstanceID is the container instance the task is placed on.
	InstanceID string `json:"berthInstanceId,omitempty"`
	// DesiredVersion increases with every change of desired state
	// (desiredStatus), so an agent can tell new instructions from old.
	DesiredVersion int64 `json:"berthDesiredVersion"`
	// ReportSeq is the sequence number of the last agent report applied:
	// older or repeated reports are ignored.
	ReportSeq uint64 `json:"berthReportSeq,omitempty"`
	// Reserved is what the task holds on its instance, released once it stops.
	Reserved *Reservation `json:"berthReserved,omitempty"`
	// Targets are the task's registrations in its service's target groups.
	Targets []TaskTarget `json:"berthTargets,omitempty"`
	// Activating is set on the tasks of a service with loadBalancers until
	// they are registered in every target group: lastStatus shows
	// ACTIVATING from the agent's RUNNING until then, as in ECS.
	Activating bool `json:"berthActivating,omitempty"`
	// Deactivating is set while the task drains from its target groups
	// before its service stops it; lastStatus shows DEACTIVATING meanwhile.
	Deactivating *Deactivation `json:"berthDeactivating,omitempty"`
}

// TaskTarget is one registration of a task in a target group.
type TaskTarget struct {
	TargetGroupArn string `json:"targetGroupArn"`
	// ID and Port are the registered target: the task's address (ip target
	// groups) or its instance's EC2-style id (instance target groups), and
	// the container port or the host port bound to it.
	ID   string `json:"id"`
	Port int32  `json:"port"`
}

// Deactivation is why and since when a task drains before it stops.
type Deactivation struct {
	Reason string        `json:"reason"`
	Since  awsmodel.Time `json:"since"`
}

// Reservation is the resources a placed task holds on its instance.
type Reservation struct {
	CPU    int      `json:"cpu"`
	Memory int      `json:"memory"`
	Ports  []string `json:"ports,omitempty"` // "tcp/80"
}

// TaskSpec is what an agent needs to run a task, fixed when the task is
// created: the task definition revision as it was, and the overrides.
type TaskSpec struct {
	TaskArn        string                  `json:"taskArn"`
	Cluster        string                  `json:"cluster"`
	TaskDefinition ecstypes.TaskDefinition `json:"taskDefinition"`
	Overrides      *ecstypes.TaskOverride  `json:"overrides,omitempty"`
}

// Setting is one account setting of one principal.
type Setting = ecstypes.Setting
