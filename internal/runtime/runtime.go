// Package runtime is the seam between the agent and the container engine:
// the operations the agent's task runner needs, in engine-neutral types.
// Package docker implements it over the Docker Engine API; package fake is a
// scriptable implementation with fault injection for unit tests.
//
// Error contract: a missing container, image or volume is reported wrapped
// around errdefs.ErrNotFound; a name already taken around
// errdefs.ErrAlreadyExists. Every method honours ctx.
package runtime

import (
	"context"
	"encoding/json"
	"io"
	"time"
)

// Runtime runs containers.
type Runtime interface {
	// Pull fetches an image unless it is already present. auth may be nil.
	Pull(ctx context.Context, image string, auth *RegistryAuth) error
	// ImagePresent reports whether the image is available locally.
	ImagePresent(ctx context.Context, image string) (bool, error)
	// Create makes a container (not started) and returns its id.
	Create(ctx context.Context, spec ContainerSpec) (string, error)
	// Start starts a created container.
	Start(ctx context.Context, id string) error
	// Stop sends the stop signal, waits up to timeout, then kills.
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Remove deletes a container (forcefully if running) and its anonymous volumes.
	Remove(ctx context.Context, id string) error
	// Inspect returns a container's current state.
	Inspect(ctx context.Context, id string) (ContainerState, error)
	// List returns the containers (running or not) carrying all the given labels.
	List(ctx context.Context, labels map[string]string) ([]ContainerState, error)
	// Stats returns one sample of the engine's stats for a container, in the
	// Docker stats JSON format (which task metadata v4 /stats returns as is).
	Stats(ctx context.Context, id string) (json.RawMessage, error)
	// Logs streams a container's stdout and stderr, demultiplexed.
	Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error)
	// Events streams container lifecycle events (start, die, oom,
	// health_status) for containers carrying all the given labels until ctx
	// ends. The error channel yields at most one error, then both close.
	Events(ctx context.Context, labels map[string]string) (<-chan Event, <-chan error)
	// CreateVolume makes a named local volume (idempotent).
	CreateVolume(ctx context.Context, name string, driver string, opts, labels map[string]string) error
	// RemoveVolume deletes a named volume; a missing one is not an error.
	RemoveVolume(ctx context.Context, name string) error
	// Info describes the host: CPUs, memory, engine version.
	Info(ctx context.Context) (HostInfo, error)
}

// RegistryAuth are credentials for pulling from a private registry.
type RegistryAuth struct {
	Username, Password, ServerAddress string
}

// ContainerSpec is everything needed to create one container.
type ContainerSpec struct {
	// Name is the engine's container name (unique on the host).
	Name       string
	Image      string
	Entrypoint []string
	Cmd        []string
	// Env holds KEY=VALUE pairs.
	Env        []string
	WorkingDir string
	User       string
	Labels     map[string]string
	Hostname   string

	// CPUShares is the relative CPU weight (ECS container cpu units); 0 leaves the default.
	CPUShares int64
	// MemoryLimit is the hard limit in bytes; 0 means none.
	MemoryLimit int64
	// MemoryReservation is the soft limit in bytes; 0 means none.
	MemoryReservation int64
	Ulimits           []Ulimit
	ReadonlyRootfs    bool
	// Init runs an init process (tini) as PID 1.
	Init       bool
	Privileged bool
	CapAdd     []string
	CapDrop    []string
	Sysctls    map[string]string
	// ExtraHosts are "hostname:ip" entries for /etc/hosts.
	ExtraHosts []string
	DNSServers []string
	DNSSearch  []string

	// NetworkMode is "bridge", "host", "none" or "container:<id>" (join
	// another container's network namespace, as awsvpc tasks join their pause
	// container).
	NetworkMode string
	// PortBindings publish container ports; HostPort 0 lets the engine pick.
	PortBindings []PortBinding

	Mounts []Mount
	// VolumesFrom lists container ids whose volumes this one mounts, each
	// optionally suffixed ":ro".
	VolumesFrom []string

	LogDriver  string
	LogOptions map[string]string

	Healthcheck *Healthcheck
	// StopSignal defaults to SIGTERM.
	StopSignal string
}

// PortBinding publishes one container port on the host.
type PortBinding struct {
	ContainerPort uint16
	// Protocol is "tcp" or "udp".
	Protocol string
	HostIP   string
	// HostPort 0 asks the engine for a free port.
	HostPort uint16
}

// Mount is a bind mount or a named volume.
type Mount struct {
	// Type is "bind" or "volume".
	Type     string
	Source   string
	Target   string
	ReadOnly bool
}

// Ulimit is one resource limit.
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// Healthcheck is the engine's container health check.
type Healthcheck struct {
	// Test is ["CMD", args...] or ["CMD-SHELL", command] or ["NONE"].
	Test        []string
	Interval    time.Duration
	Timeout     time.Duration
	StartPeriod time.Duration
	Retries     int
}

// Health statuses reported in ContainerState.Health.
const (
	HealthNone      = ""
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// ContainerState is a container as the engine sees it.
type ContainerState struct {
	ID     string
	Name   string
	Image  string
	Labels map[string]string
	// Status is the engine's word: created, running, paused, restarting,
	// removing, exited or dead.
	Status     string
	Running    bool
	ExitCode   int
	OOMKilled  bool
	Error      string
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	// Health is one of the Health* constants.
	Health string
	// Ports are the published ports with the host ports actually bound.
	Ports []PortBinding
	// IPAddress is the container's address on its network ("" for host/none).
	IPAddress string
	Pid       int
}

// Event is one container lifecycle event.
type Event struct {
	ContainerID string
	// Action is start, die, oom, stop, kill, destroy or health_status.
	Action string
	// Health is set for health_status events.
	Health   string
	ExitCode int
	Labels   map[string]string
	Time     time.Time
}

// HostInfo describes the machine the runtime runs on.
type HostInfo struct {
	CPUs          int
	MemoryBytes   int64
	EngineVersion string
	OS, Arch      string
	Hostname      string
}
