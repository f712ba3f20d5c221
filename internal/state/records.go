package state

import "github.com/berthdev/berth/internal/awsmodel/ecstypes"

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

// ContainerInstance is one stored container instance with its tags.
type ContainerInstance = ecstypes.ContainerInstance

// Setting is one account setting of one principal.
type Setting = ecstypes.Setting
