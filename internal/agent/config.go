package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

// Version is the agent version reported at registration.
const Version = "0.1.0"

// Defaults of Config, named so that documentation and tests can refer to them.
const (
	// DefaultMetadataListen is where the task metadata server listens: every
	// interface, on the port of the ECS agent's own metadata server, so that
	// containers on the Docker bridge reach it through the bridge gateway.
	DefaultMetadataListen = "0.0.0.0:51679"
	// DefaultMetadataAlias is the host name that bridge and awsvpc containers
	// use for the metadata server when Config.MetadataHost is empty; it is
	// mapped in their /etc/hosts to Docker's "host-gateway".
	DefaultMetadataAlias = "berth-agent.internal"
	// DefaultPauseImage is the image of the container that holds an awsvpc
	// task's network namespace; the agent builds and loads it itself.
	DefaultPauseImage = "berth-pause:1"
	// DefaultCleanupDelay is how long a stopped task's containers are kept,
	// like ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION.
	DefaultCleanupDelay = 3 * time.Hour
	// DefaultStopTimeout is how long a container gets between SIGTERM and
	// SIGKILL when its definition sets no stopTimeout, like
	// ECS_CONTAINER_STOP_TIMEOUT.
	DefaultStopTimeout = 30 * time.Second
	// DefaultHeartbeat is the idle report interval when the control plane
	// names none.
	DefaultHeartbeat = 30 * time.Second
)

// ecsReservedPorts are the host ports an ECS container instance always
// reserves: ssh, the Docker daemon, and the ECS agent's own ports.
var ecsReservedPorts = []int{22, 2375, 2376, 51678, 51679}

// Config configures an Agent. The zero value of every optional field means
// its default; Validate fills them in.
type Config struct {
	// Cluster is the cluster to join (required).
	Cluster string
	// Endpoint is the control plane's base URL, e.g. http://127.0.0.1:4566 (required).
	Endpoint string
	// Token is the cluster join token.
	Token string
	// Runtime is the container engine (required).
	Runtime runtime.Runtime
	// StateDir holds the agent's identity and per-task state so that a
	// restarted agent re-registers as the same instance and re-adopts its
	// containers (required; created if missing).
	StateDir string

	// Hostname is reported at registration; default the engine's host name.
	Hostname string
	// ReservedMemoryMiB is kept back from the memory offered to tasks; default 0 like ECS_RESERVED_MEMORY.
	ReservedMemoryMiB int
	// ReservedPorts are host TCP ports reserved on top of 22, 2375, 2376,
	// 51678, 51679 and the metadata server's port.
	ReservedPorts []int
	// ReservedUDPPorts are host UDP ports tasks may not use.
	ReservedUDPPorts []int
	// RegistryAuth returns the credentials to pull an image with, or nil
	// for none (see LoadDockerConfig). Where it returns nil, images on the
	// control plane's own registry are pulled with credentials the agent
	// gets from the control plane, and others anonymously.
	RegistryAuth func(image string) *runtime.RegistryAuth
	// Attributes are custom instance attributes; names may not start with "ecs.".
	Attributes map[string]string
	// HostAddress is the address other hosts reach this one at, reported as
	// the berth.host-address attribute (load balancers send instance
	// targets' traffic there); empty means the local address of the route
	// to the control plane.
	HostAddress string
	// AvailabilityZone is reported by the task metadata endpoint, if set.
	AvailabilityZone string

	// MetadataListen is the task metadata server's listen address; default
	// DefaultMetadataListen. It must be reachable from the Docker bridge for
	// bridge and awsvpc containers (a loopback address is not). Port 0 picks
	// a free port (tests).
	MetadataListen string
	// MetadataHost is the address bridge and awsvpc containers use to reach
	// the metadata server. Empty means DefaultMetadataAlias, added to each
	// task's /etc/hosts as Docker's "host-gateway" (the default bridge
	// gateway). Host-mode containers always use the loopback address.
	MetadataHost string

	// PauseImage names the awsvpc pause image; default DefaultPauseImage.
	PauseImage string
	// Pause makes the pause image present; default loads the agent's own
	// image through the runtime when it can load images (see ImageLoader).
	Pause PauseImager

	// HeartbeatInterval caps the idle report interval; the control plane's
	// HeartbeatSeconds applies when it is shorter or this is zero.
	HeartbeatInterval time.Duration
	// PollWait is how long the control plane may hold a desired-state poll;
	// default agentapi.MaxPollWait seconds.
	PollWait time.Duration
	// RetryMin and RetryMax bound the jittered exponential backoff after a
	// failed call to the control plane or the engine; default 500ms and 30s.
	RetryMin, RetryMax time.Duration
	// ResyncInterval is how often every container is inspected in case an
	// engine event was missed; default 30s.
	ResyncInterval time.Duration
	// CleanupDelay is how long a stopped task's containers and task-scoped
	// volumes are kept; default DefaultCleanupDelay.
	CleanupDelay time.Duration
	// StopTimeout applies to containers without stopTimeout; default DefaultStopTimeout.
	StopTimeout time.Duration
	// PullTimeout bounds one image pull; default 2h like ECS_IMAGE_PULL_TIMEOUT.
	PullTimeout time.Duration
	// MaxPendingReports bounds the task reports queued while the control
	// plane is unreachable (the newest state of a task replaces its older
	// one); default 4096.
	MaxPendingReports int
	// MaxReportBatch bounds the task reports sent in one request; default 100.
	MaxReportBatch int

	// HTTPClient talks to the control plane; nil means agentapi's default.
	HTTPClient *http.Client
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
	// Clock tells the time; nil means the system clock.
	Clock Clock
}

// Validate checks the required fields and fills defaults.
func (c *Config) Validate() error {
	var errs []error
	if c.Cluster == "" {
		errs = append(errs, errors.New("cluster is required"))
	}
	if c.Endpoint == "" {
		errs = append(errs, errors.New("control plane endpoint is required"))
	}
	if c.Runtime == nil {
		errs = append(errs, errors.New("runtime is required"))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("state directory is required"))
	}
	for name := range c.Attributes {
		if name == "" || strings.HasPrefix(name, "ecs.") || strings.HasPrefix(name, "com.amazonaws.ecs.") {
			errs = append(errs, fmt.Errorf("custom attribute %q: built-in names are reserved", name))
		}
	}
	if c.ReservedMemoryMiB < 0 {
		errs = append(errs, errors.New("reserved memory must not be negative"))
	}
	if c.MetadataListen == "" {
		c.MetadataListen = DefaultMetadataListen
	}
	if _, _, err := net.SplitHostPort(c.MetadataListen); err != nil {
		errs = append(errs, fmt.Errorf("metadata listen address %q: %v", c.MetadataListen, err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("agent config: %w: %w", errdefs.ErrInvalidArgument, errors.Join(errs...))
	}
	if c.PauseImage == "" {
		c.PauseImage = DefaultPauseImage
	}
	if c.PollWait <= 0 {
		c.PollWait = agentapi.MaxPollWait * time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 500 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 30 * time.Second
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.ResyncInterval <= 0 {
		c.ResyncInterval = 30 * time.Second
	}
	if c.CleanupDelay <= 0 {
		c.CleanupDelay = DefaultCleanupDelay
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	if c.PullTimeout <= 0 {
		c.PullTimeout = 2 * time.Hour
	}
	if c.MaxPendingReports <= 0 {
		c.MaxPendingReports = 4096
	}
	if c.MaxReportBatch <= 0 {
		c.MaxReportBatch = 100
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	return nil
}
