package agent

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/runtime"
)

// The task metadata endpoint (v4, with v3 as an alias) that containers
// reach through ECS_CONTAINER_METADATA_URI_V4 and ECS_CONTAINER_METADATA_URI.
// Each container's URI ends in a random token that names the container;
// the field names of the answers are AWS's, exactly.
//
//	GET /v4/<token>             this container's metadata
//	GET /v4/<token>/task        the task's metadata, with every container
//	GET /v4/<token>/taskWithTags the same (Berth has no tags to add yet)
//	GET /v4/<token>/stats       this container's Docker stats
//	GET /v4/<token>/task/stats  Docker stats by Docker id, for every container
//
// An unknown token is answered 404.

// metadataServer serves the task metadata endpoint from snapshots that the
// task managers publish; it never reads a manager's state directly.
type metadataServer struct {
	rt  runtime.Runtime
	log *slog.Logger

	mu     sync.RWMutex
	tasks  map[string]*taskView
	tokens map[string]tokenRef
}

// tokenRef is what a metadata token names.
type tokenRef struct{ taskArn, container string }

// taskView is a task's published metadata.
type taskView struct {
	task taskMetadata
	// containers are by container name; runtimeIDs names the engine ids
	// (empty before create).
	containers map[string]containerMetadata
	runtimeIDs map[string]string
	tokens     map[string]string
}

func newMetadataServer(rt runtime.Runtime, log *slog.Logger) *metadataServer {
	return &metadataServer{rt: rt, log: log, tasks: map[string]*taskView{}, tokens: map[string]tokenRef{}}
}

// publish replaces a task's view.
func (s *metadataServer) publish(arn string, v *taskView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tasks[arn] = v
	for name, tok := range v.tokens {
		s.tokens[tok] = tokenRef{arn, name}
	}
}

// remove forgets a task and its tokens.
func (s *metadataServer) remove(arn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.tasks[arn]; ok {
		for _, tok := range v.tokens {
			delete(s.tokens, tok)
		}
	}
	delete(s.tasks, arn)
}

func (s *metadataServer) lookup(token string) (*taskView, string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ref, ok := s.tokens[token]
	if !ok {
		return nil, "", false
	}
	v, ok := s.tasks[ref.taskArn]
	return v, ref.container, ok
}

// Handler returns the endpoint's HTTP handler.
func (s *metadataServer) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, v := range []string{"v3", "v4"} {
		mux.HandleFunc("GET /"+v+"/{token}", s.container)
		mux.HandleFunc("GET /"+v+"/{token}/task", s.task)
		mux.HandleFunc("GET /"+v+"/{token}/taskWithTags", s.task)
		mux.HandleFunc("GET /"+v+"/{token}/stats", s.containerStats)
		mux.HandleFunc("GET /"+v+"/{token}/task/stats", s.taskStats)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, "Task metadata: no such endpoint: "+r.URL.Path)
	})
	return mux
}

func (s *metadataServer) view(w http.ResponseWriter, r *http.Request) (*taskView, string, bool) {
	v, name, ok := s.lookup(r.PathValue("token"))
	if !ok {
		writeJSON(w, http.StatusNotFound, "Task metadata: unknown container token")
	}
	return v, name, ok
}

func (s *metadataServer) container(w http.ResponseWriter, r *http.Request) {
	if v, name, ok := s.view(w, r); ok {
		writeJSON(w, http.StatusOK, v.containers[name])
	}
}

func (s *metadataServer) task(w http.ResponseWriter, r *http.Request) {
	if v, _, ok := s.view(w, r); ok {
		writeJSON(w, http.StatusOK, v.task)
	}
}

func (s *metadataServer) containerStats(w http.ResponseWriter, r *http.Request) {
	v, name, ok := s.view(w, r)
	if !ok {
		return
	}
	id := v.runtimeIDs[name]
	if id == "" {
		writeJSON(w, http.StatusOK, nil)
		return
	}
	st, err := s.rt.Stats(r.Context(), id)
	if err != nil {
		s.log.Warn("container stats", "container_id", id, "err", err)
		writeJSON(w, http.StatusInternalServerError, "Task metadata: unable to get container stats: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *metadataServer) taskStats(w http.ResponseWriter, r *http.Request) {
	v, _, ok := s.view(w, r)
	if !ok {
		return
	}
	out := map[string]json.RawMessage{}
	for name, id := range v.runtimeIDs {
		if id == "" {
			continue
		}
		st, err := s.rt.Stats(r.Context(), id)
		if err != nil {
			s.log.Warn("container stats", "container", name, "container_id", id, "err", err)
			st = json.RawMessage("null")
		}
		out[id] = st
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`"Task metadata: encoding failed"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// taskMetadata is the answer of ${ECS_CONTAINER_METADATA_URI_V4}/task.
type taskMetadata struct {
	Cluster            string              `json:"Cluster"`
	TaskARN            string              `json:"TaskARN"`
	Family             string              `json:"Family"`
	Revision           string              `json:"Revision"`
	DesiredStatus      string              `json:"DesiredStatus,omitempty"`
	KnownStatus        string              `json:"KnownStatus"`
	Containers         []containerMetadata `json:"Containers,omitempty"`
	Limits             *limitsMetadata     `json:"Limits,omitempty"`
	PullStartedAt      *time.Time          `json:"PullStartedAt,omitempty"`
	PullStoppedAt      *time.Time          `json:"PullStoppedAt,omitempty"`
	ExecutionStoppedAt *time.Time          `json:"ExecutionStoppedAt,omitempty"`
	AvailabilityZone   string              `json:"AvailabilityZone,omitempty"`
	LaunchType         string              `json:"LaunchType,omitempty"`
	ServiceName        string              `json:"ServiceName,omitempty"`
}

// containerMetadata is the answer of ${ECS_CONTAINER_METADATA_URI_V4}.
type containerMetadata struct {
	DockerID      string            `json:"DockerId"`
	Name          string            `json:"Name"`
	DockerName    string            `json:"DockerName"`
	Image         string            `json:"Image"`
	ImageID       string            `json:"ImageID"`
	Ports         []portMetadata    `json:"Ports,omitempty"`
	Labels        map[string]string `json:"Labels,omitempty"`
	DesiredStatus string            `json:"DesiredStatus"`
	KnownStatus   string            `json:"KnownStatus"`
	ExitCode      *int              `json:"ExitCode,omitempty"`
	Limits        limitsMetadata    `json:"Limits"`
	CreatedAt     *time.Time        `json:"CreatedAt,omitempty"`
	StartedAt     *time.Time        `json:"StartedAt,omitempty"`
	FinishedAt    *time.Time        `json:"FinishedAt,omitempty"`
	Type          string            `json:"Type"`
	LogDriver     string            `json:"LogDriver,omitempty"`
	LogOptions    map[string]string `json:"LogOptions,omitempty"`
	Health        *healthMetadata   `json:"Health,omitempty"`
	Volumes       []volumeMetadata  `json:"Volumes,omitempty"`
	Networks      []networkMetadata `json:"Networks,omitempty"`
}

// limitsMetadata are CPU (units for a container, vCPUs for a task) and memory (MiB).
type limitsMetadata struct {
	CPU    *float64 `json:"CPU,omitempty"`
	Memory *int64   `json:"Memory,omitempty"`
}

type portMetadata struct {
	ContainerPort uint16 `json:"ContainerPort,omitempty"`
	Protocol      string `json:"Protocol,omitempty"`
	HostPort      uint16 `json:"HostPort,omitempty"`
	HostIP        string `json:"HostIp,omitempty"`
}

type healthMetadata struct {
	Status   string     `json:"status,omitempty"`
	Since    *time.Time `json:"statusSince,omitempty"`
	ExitCode int        `json:"exitCode,omitempty"`
	Output   string     `json:"output,omitempty"`
}

type volumeMetadata struct {
	DockerName  string `json:"DockerName,omitempty"`
	Source      string `json:"Source,omitempty"`
	Destination string `json:"Destination,omitempty"`
}

type networkMetadata struct {
	NetworkMode     string   `json:"NetworkMode,omitempty"`
	IPv4Addresses   []string `json:"IPv4Addresses,omitempty"`
	AttachmentIndex *int     `json:"AttachmentIndex,omitempty"`
	MACAddress      string   `json:"MACAddress,omitempty"`
	PrivateDNSName  string   `json:"PrivateDNSName,omitempty"`
}
