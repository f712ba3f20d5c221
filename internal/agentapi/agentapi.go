// Package agentapi is the protocol between `berth agent` and the control
// plane: JSON over HTTP on the control plane's endpoint under PathPrefix,
// authenticated with the cluster's join token (Authorization: Bearer).
//
// Registration takes the cluster's join token; it answers an instance
// secret that every later call of that instance carries, so one host cannot
// read or report as another.
//
// The control plane owns desired state, the agent owns observed state:
//
//	agent                                   control plane
//	  POST /register {resources, attrs} --->  creates or re-activates the container instance
//	  GET  /instances/<id>/desired?after=R -> answers at once if anything changed after store
//	                                          revision R, else holds the request (long poll)
//	  POST /instances/<id>/report {seq, tasks} -> applies task transitions; doubles as heartbeat
//	  POST /instances/<id>/registry-credentials -> {registries: [{host, username, password, expiresAt}]}:
//	                                          pull credentials for the control plane's own registry
//	                                          (empty without one)
//
// Calls under /instances/<id>/ carry the instance secret (SecretHeader).
//
// # Pulling from Berth's registry
//
// The register response names the hosts of the control plane's registry
// (RegisterResponse.Registries). When a task's image lives on one of them,
// or on the host of the endpoint the agent talks to, the agent fetches
// credentials from /registry-credentials (a `docker login` as user AWS with
// a token, like ECR's GetAuthorizationToken) and caches them until shortly
// before they expire; the user configures nothing.
//
// Reports are idempotent: every task report carries the agent's per-task
// sequence number and the control plane ignores any it has already applied,
// so the agent can resend a batch after a timeout or a restart. After either
// side restarts, the agent re-registers with its stored instance id, fetches
// the whole desired state and reports the state of every task it knows.
package agentapi

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
)

// PathPrefix is where the control plane serves the agent protocol.
const PathPrefix = "/_berth/agent/v1"

// MaxPollWait caps how long the control plane holds a desired-state poll.
const MaxPollWait = 30

// RegisterRequest registers (or re-registers) a container instance.
type RegisterRequest struct {
	Cluster string `json:"cluster"`
	// InstanceID is the id the agent was given before, to re-register after
	// a restart; empty on first registration.
	InstanceID string `json:"instanceId,omitempty"`
	// InstanceSecret is the secret issued with InstanceID: re-registering
	// an instance takes it, so a host with the join token cannot take over
	// another host's instance.
	InstanceSecret string `json:"instanceSecret,omitempty"`
	Hostname       string `json:"hostname"`
	AgentVersion   string `json:"agentVersion"`
	// DockerVersion is the container engine's version.
	DockerVersion string `json:"dockerVersion"`
	// CPU is the instance's CPU units (cores x 1024).
	CPU int `json:"cpu"`
	// MemoryMiB is the memory offered to tasks.
	MemoryMiB int `json:"memoryMiB"`
	// ReservedPorts are host TCP ports tasks may not use (the agent's own, sshd, ...).
	ReservedPorts    []int `json:"reservedPorts,omitempty"`
	ReservedUDPPorts []int `json:"reservedUdpPorts,omitempty"`
	// Attributes are built-in (ecs.os-type, ecs.cpu-architecture,
	// ecs.capability.*) and custom attributes; empty values are name-only.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// RegisterResponse names the registered instance.
type RegisterResponse struct {
	InstanceID           string `json:"instanceId"`
	ContainerInstanceArn string `json:"containerInstanceArn"`
	Cluster              string `json:"cluster"`
	// HeartbeatSeconds is how often the agent must report when idle.
	HeartbeatSeconds int `json:"heartbeatSeconds"`
	// InstanceSecret authenticates this instance's polls and reports
	// (header SecretHeader) and its re-registration; the agent keeps it
	// with its identity. The control plane stores only its hash.
	InstanceSecret string `json:"instanceSecret"`
	// Registries are the hosts (host[:port], as image references name them)
	// of the control plane's own registry, whose pull credentials the agent
	// gets from the registry-credentials call; empty when it has none.
	Registries []string `json:"registries,omitempty"`
}

// SecretHeader carries the instance secret on polls and reports.
const SecretHeader = "X-Berth-Instance-Secret"

// DesiredState is every task the control plane wants on one instance that
// the agent has not yet reported STOPPED.
type DesiredState struct {
	// Revision is the store revision this state reflects; poll with after=Revision.
	Revision int64         `json:"revision"`
	Tasks    []DesiredTask `json:"tasks"`
	// InstanceStatus is ACTIVE, DRAINING or INACTIVE (deregistered: the agent
	// stops everything and exits).
	InstanceStatus string `json:"instanceStatus"`
}

// DesiredTask is one task and what should become of it.
type DesiredTask struct {
	TaskArn string `json:"taskArn"`
	// Version increases with every change of desired state.
	Version int64 `json:"version"`
	// DesiredStatus is RUNNING or STOPPED.
	DesiredStatus string `json:"desiredStatus"`
	// StopCode and StoppedReason say why a task is to stop.
	StopCode      string `json:"stopCode,omitempty"`
	StoppedReason string `json:"stoppedReason,omitempty"`
	Cluster       string `json:"cluster"`
	// Definition and Overrides are fixed when the task is created.
	Definition ecstypes.TaskDefinition `json:"definition"`
	Overrides  *ecstypes.TaskOverride  `json:"overrides,omitempty"`
	StartedBy  string                  `json:"startedBy,omitempty"`
	Group      string                  `json:"group,omitempty"`
}

// Report carries task transitions; an empty one is a heartbeat.
type Report struct {
	// Seq increases with every report the agent sends (for logs and metrics).
	Seq   uint64       `json:"seq"`
	Tasks []TaskReport `json:"tasks,omitempty"`
}

// TaskReport is the observed state of one task.
type TaskReport struct {
	TaskArn string `json:"taskArn"`
	// Seq increases with every report of this task; the control plane
	// ignores a report whose Seq is not above the last it applied. Values
	// need not be small or dense: an agent that lost its state starts a
	// task's sequence at the current time in microseconds.
	Seq uint64 `json:"seq"`
	// LastStatus is one of the ECS task lifecycle statuses.
	LastStatus         string            `json:"lastStatus"`
	HealthStatus       string            `json:"healthStatus,omitempty"`
	Connectivity       string            `json:"connectivity,omitempty"`
	ConnectivityAt     *awsmodel.Time    `json:"connectivityAt,omitempty"`
	PullStartedAt      *awsmodel.Time    `json:"pullStartedAt,omitempty"`
	PullStoppedAt      *awsmodel.Time    `json:"pullStoppedAt,omitempty"`
	StartedAt          *awsmodel.Time    `json:"startedAt,omitempty"`
	StoppingAt         *awsmodel.Time    `json:"stoppingAt,omitempty"`
	ExecutionStoppedAt *awsmodel.Time    `json:"executionStoppedAt,omitempty"`
	StoppedAt          *awsmodel.Time    `json:"stoppedAt,omitempty"`
	StopCode           string            `json:"stopCode,omitempty"`
	StoppedReason      string            `json:"stoppedReason,omitempty"`
	Containers         []ContainerReport `json:"containers,omitempty"`
	// Attachments carry the task ENI of awsvpc tasks (its private address).
	Attachments []ecstypes.Attachment `json:"attachments,omitempty"`
}

// ContainerReport is the observed state of one container of a task.
type ContainerReport struct {
	Name              string                      `json:"name"`
	RuntimeID         string                      `json:"runtimeId,omitempty"`
	ImageDigest       string                      `json:"imageDigest,omitempty"`
	LastStatus        string                      `json:"lastStatus"`
	ExitCode          *int32                      `json:"exitCode,omitempty"`
	Reason            string                      `json:"reason,omitempty"`
	HealthStatus      string                      `json:"healthStatus,omitempty"`
	NetworkBindings   []ecstypes.NetworkBinding   `json:"networkBindings,omitempty"`
	NetworkInterfaces []ecstypes.NetworkInterface `json:"networkInterfaces,omitempty"`
}

// ReportResponse acknowledges a report.
type ReportResponse struct {
	// Applied counts the task reports that changed state (the rest were stale
	// or repeated).
	Applied int `json:"applied"`
}

// RegistryCredentials answers the registry-credentials call: a login for
// each of the control plane's registries, none when it has no registry.
type RegistryCredentials struct {
	Registries []RegistryLogin `json:"registries"`
}

// RegistryLogin is a `docker login` for one registry, valid until
// ExpiresAt. Its String and LogValue hide the password, so that a login
// printed or logged by mistake does not leak it.
type RegistryLogin struct {
	// Host is the registry's host[:port] as image references name it.
	Host     string `json:"host"`
	Username string `json:"username"`
	Password string `json:"password"`
	// ExpiresAt is when the password stops working.
	ExpiresAt awsmodel.Time `json:"expiresAt"`
}

// String describes the login without its password.
func (l RegistryLogin) String() string {
	return fmt.Sprintf("{%s %s <redacted> until %s}", l.Host, l.Username, l.ExpiresAt.UTC().Format(time.RFC3339))
}

// LogValue logs the login without its password.
func (l RegistryLogin) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", l.Host), slog.String("username", l.Username), slog.Time("expires_at", l.ExpiresAt.Time))
}

// Error is the body of every non-2xx answer.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
