package agent

import (
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
)

// The task lifecycle, as the ECS API reports it in lastStatus. The task
// runner (step.go) moves a task one arrow per step and reports every arrow.
//
//	(new) ─────► PROVISIONING ─────► PENDING ─────► ACTIVATING ─────► RUNNING
//	  │          task volumes,       pull images,   read network      │
//	  │          pause container     create and     bindings          │
//	  │                │             start in             │           │
//	  │                │             dependency order     │           │
//	  │                │ stop or           │ stop or      │ stop      │ stop, or an
//	  │                │ failure           │ failure      ▼           ▼ essential exit
//	  │                └──────────► STOPPING ◄────────── DEACTIVATING
//	  │                             stop containers in
//	  │                             reverse dependency order
//	  │                                  │
//	  │                                  ▼
//	  │                             DEPROVISIONING  stop the pause container
//	  │ desired STOPPED                  │
//	  │ before it ever started           ▼
//	  └────────────────────────────► STOPPED ──(CleanupDelay)──► containers and
//	                                                             task volumes removed
//
// A failure (an image that cannot be pulled, a container that cannot be
// created or started, a dependency that can never be met, an essential
// container that exits) records stopCode and stoppedReason once; the first
// reason wins, and the task then follows the stop arrows.
const (
	statusNone           = ""
	statusProvisioning   = "PROVISIONING"
	statusPending        = "PENDING"
	statusActivating     = "ACTIVATING"
	statusRunning        = "RUNNING"
	statusDeactivating   = "DEACTIVATING"
	statusStopping       = "STOPPING"
	statusDeprovisioning = "DEPROVISIONING"
	statusStopped        = "STOPPED"
)

// Container lastStatus values.
const (
	containerPending = "PENDING"
	containerRunning = "RUNNING"
	containerStopped = "STOPPED"
)

// ECS's stopped reasons, word for word where ECS has one.
const (
	reasonEssentialExited = "Essential container in task exited"
	reasonUserStop        = "Task stopped by user"
	reasonNotDesired      = "Task is no longer in the control plane's desired state"
	reasonOOM             = "OutOfMemoryError: Container killed due to memory usage"
)

// taskRecord is everything the agent knows about one task. The task's
// manager goroutine owns it; it is persisted (as JSON) after every change so
// that a restarted agent continues where it left off.
type taskRecord struct {
	TaskArn string `json:"taskArn"`
	// Desired is the newest desired state received for the task.
	Desired agentapi.DesiredTask `json:"desired"`
	// Status is the task's lastStatus; empty before the first step.
	Status string `json:"status"`
	// Seq numbers the task's reports; it only grows, across restarts too.
	Seq uint64 `json:"seq"`

	ConnectivityAt     *time.Time `json:"connectivityAt,omitempty"`
	PullStartedAt      *time.Time `json:"pullStartedAt,omitempty"`
	PullStoppedAt      *time.Time `json:"pullStoppedAt,omitempty"`
	StartedAt          *time.Time `json:"startedAt,omitempty"`
	StoppingAt         *time.Time `json:"stoppingAt,omitempty"`
	ExecutionStoppedAt *time.Time `json:"executionStoppedAt,omitempty"`
	StoppedAt          *time.Time `json:"stoppedAt,omitempty"`

	// StopCode and StoppedReason are set once, by the first failure or stop request.
	StopCode      string `json:"stopCode,omitempty"`
	StoppedReason string `json:"stoppedReason,omitempty"`

	// Volumes are the named volumes the agent created for this task.
	Volumes []volumeRecord `json:"volumes,omitempty"`
	// Pause is the awsvpc pause container, if any.
	Pause *containerRecord `json:"pause,omitempty"`

	Containers []*containerRecord `json:"containers"`

	// CleanedUp is set once the containers and volumes are removed.
	CleanedUp bool `json:"cleanedUp,omitempty"`
	// NotDesired is set when the control plane no longer lists the task.
	NotDesired bool `json:"notDesired,omitempty"`
}

// volumeRecord is a named volume the agent created for a task.
type volumeRecord struct {
	Name string `json:"name"`
	// Remove is set for task-scoped volumes, removed at cleanup.
	Remove bool `json:"remove,omitempty"`
}

// containerRecord is the agent's knowledge of one container of a task.
type containerRecord struct {
	// Name is the container's name in the task definition.
	Name string `json:"name"`
	// DockerName is the engine's name, deterministic per task and container
	// so that a repeated create finds the container made before a crash.
	DockerName string `json:"dockerName"`
	RuntimeID  string `json:"runtimeId,omitempty"`
	// ImageID is the engine's id of the image, when the runtime tells it.
	ImageID string `json:"imageId,omitempty"`
	// ImageDigest is the manifest digest the image was pulled by (ECS's
	// container imageDigest), when the runtime tells it.
	ImageDigest string `json:"imageDigest,omitempty"`
	// Token is the secret path element of the container's metadata URIs.
	Token     string `json:"token"`
	Essential bool   `json:"essential"`

	Pulled  bool `json:"pulled,omitempty"`
	Created bool `json:"created,omitempty"`
	Started bool `json:"started,omitempty"`
	// Exited is set once a started container has stopped.
	Exited bool `json:"exited,omitempty"`
	// NeverStarted is set when the container will never start (the task
	// stopped first, or a dependency can never be met).
	NeverStarted bool `json:"neverStarted,omitempty"`
	// Removed is set once cleanup removed the container.
	Removed bool `json:"removed,omitempty"`

	ExitCode *int32 `json:"exitCode,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Health is the engine's health word (runtime.Health*).
	Health      string    `json:"health,omitempty"`
	HealthSince time.Time `json:"healthSince,omitzero"`
	IPAddress   string    `json:"ipAddress,omitempty"`

	Bindings []ecstypes.NetworkBinding `json:"bindings,omitempty"`

	CreatedAt  *time.Time `json:"createdAt,omitempty"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// WaitingSince is when the container first waited on its dependencies
	// (for startTimeout).
	WaitingSince *time.Time `json:"waitingSince,omitempty"`
}

// stopRequested reports whether the task is on its way to STOPPED.
func (r *taskRecord) stopRequested() bool {
	return r.StopCode != "" || r.Desired.DesiredStatus == statusStopped
}

// fail records why the task stops, unless a reason is already recorded.
func (r *taskRecord) fail(code ecstypes.TaskStopCode, reason string) {
	if r.StopCode != "" {
		return
	}
	r.StopCode, r.StoppedReason = string(code), reason
}

// container returns the record of the named container.
func (r *taskRecord) container(name string) *containerRecord {
	for _, c := range r.Containers {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// byRuntimeID returns the record of the container with that engine id,
// the pause container included.
func (r *taskRecord) byRuntimeID(id string) *containerRecord {
	if r.Pause != nil && r.Pause.RuntimeID == id {
		return r.Pause
	}
	for _, c := range r.Containers {
		if c.RuntimeID == id {
			return c
		}
	}
	return nil
}

// running reports whether the container was started and has not exited.
func (c *containerRecord) running() bool { return c.Started && !c.Exited }

// settled reports whether the container needs nothing more to reach its
// steady state: it is running, it ran and exited, or it will never start.
func (c *containerRecord) settled() bool { return c.Started || c.NeverStarted }

// lastStatus is the container's ECS lastStatus.
func (c *containerRecord) lastStatus() string {
	switch {
	case c.Exited || c.NeverStarted:
		return containerStopped
	case c.Started:
		return containerRunning
	}
	return containerPending
}

func timePtr(t time.Time) *time.Time { return &t }
