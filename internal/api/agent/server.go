// Package agent serves the control plane's side of the agent protocol
// (package agentapi): agents register their instance, long-poll the desired
// state of their tasks, report what they observe, and fetch the credentials
// to pull from the control plane's registry (credentials.go). It also
// tracks which agents are connected, which DescribeContainerInstances
// reports.
package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// DefaultHeartbeat is how often an idle agent reports.
const DefaultHeartbeat = 10 * time.Second

// Config configures the agent protocol server.
type Config struct {
	Store   store.Store
	Region  string
	Account string
	// Token is the join token agents must present.
	Token string
	// Heartbeat is the agents' idle report interval.
	Heartbeat time.Duration
	// DisconnectGrace is how long after its last poll or report an agent
	// still counts as connected. A connected agent holds a desired-state poll
	// open almost all the time, so this only bridges the gap between two
	// polls and a slow report; default 15 s.
	DisconnectGrace time.Duration
	// Registry is the control plane's container registry, whose pull
	// credentials agents get from the registry-credentials call; nil (not
	// a nil *registry.Registry) when there is none, and agents then get an
	// empty list.
	Registry Registry
	Now      func() time.Time
	Logger   *slog.Logger
}

// Server implements the agent protocol as an http.Handler.
type Server struct {
	cfg     Config
	arns    state.ARNs
	log     *slog.Logger
	waiters waiters
	// started is the store revision when Run began watching: changes before
	// it are unknown, so polls from before it are answered at once.
	started int64

	mu      sync.Mutex
	seen    map[string]time.Time // instance id -> last poll or report
	poll    map[string]int       // instance id -> polls in progress
	pruneAt time.Time            // next sweep of idle entries
}

// idleForget is how long an instance unheard from stays in the liveness
// and wake-up maps (deregistered or vanished instances leave them).
const idleForget = time.Hour

// New returns an agent protocol server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Token == "" {
		return nil, fmt.Errorf("agent server: store and join token are required: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.DisconnectGrace <= 0 {
		cfg.DisconnectGrace = 15 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg:     cfg,
		arns:    state.ARNs{Region: cfg.Region, Account: cfg.Account},
		log:     cfg.Logger.With("component", "agent_server"),
		waiters: waiters{last: map[string]int64{}, ch: map[string]chan struct{}{}},
		seen:    map[string]time.Time{},
		poll:    map[string]int{},
		started: -1,
	}, nil
}

// Connected reports whether the agent of an instance is connected: it is
// holding a poll open or was heard from within the disconnect grace.
func (s *Server) Connected(instanceID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.poll[instanceID] > 0 {
		return true
	}
	t, ok := s.seen[instanceID]
	return ok && s.cfg.Now().Sub(t) < s.cfg.DisconnectGrace
}

func (s *Server) touch(id string, delta int) {
	now := s.cfg.Now()
	s.mu.Lock()
	s.seen[id] = now
	s.poll[id] += delta
	if s.poll[id] <= 0 {
		delete(s.poll, id)
	}
	var idle []string
	if now.After(s.pruneAt) {
		s.pruneAt = now.Add(idleForget / 6)
		for other, at := range s.seen {
			if s.poll[other] == 0 && now.Sub(at) > idleForget {
				delete(s.seen, other)
				idle = append(idle, other)
			}
		}
	}
	s.mu.Unlock()
	s.waiters.forget(idle)
}

// Run watches the store and wakes the polls of instances whose desired
// state changed, until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := s.watch(ctx); err != nil && ctx.Err() == nil {
			// Fell behind or the watch broke: every poll re-reads the whole
			// state, then watching resumes from the current revision.
			s.log.Warn("desired-state watch restarted", "err", err)
			s.waiters.resync(s.cfg.Store.Revision())
		}
	}
	return nil
}

func (s *Server) watch(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rev := s.cfg.Store.Revision()
	ch, err := s.cfg.Store.Watch(ctx, state.InstanceDesiredPrefix, rev+1)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.started < 0 {
		s.started = rev
	}
	s.mu.Unlock()
	for resp := range ch {
		if resp.Err != nil {
			return resp.Err
		}
		for _, ev := range resp.Events {
			s.waiters.notify(strings.TrimPrefix(ev.KV.Key, state.InstanceDesiredPrefix), resp.Revision)
		}
	}
	return ctx.Err()
}

// waiters wakes the polls of one instance when its state changes.
type waiters struct {
	mu   sync.Mutex
	last map[string]int64
	ch   map[string]chan struct{}
	// floor is the revision of the last resync: a poll from before it is
	// answered at once, whatever the instance.
	floor int64
}

func (w *waiters) notify(id string, rev int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last[id] = max(w.last[id], rev)
	if c, ok := w.ch[id]; ok {
		close(c)
		delete(w.ch, id)
	}
}

// forget drops the wake-up state of instances no longer heard from.
func (w *waiters) forget(ids []string) {
	if len(ids) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		delete(w.last, id)
		if c, ok := w.ch[id]; ok {
			close(c)
			delete(w.ch, id)
		}
	}
}

// resync wakes every poll and answers at once every poll from before rev.
func (w *waiters) resync(rev int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.floor = max(w.floor, rev)
	for _, c := range w.ch {
		close(c)
	}
	clear(w.ch)
}

// changedAfter returns nil if the instance changed after rev, else a channel
// closed at its next change.
func (w *waiters) changedAfter(id string, rev int64) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last[id] > rev || rev < w.floor {
		return nil
	}
	c, ok := w.ch[id]
	if !ok {
		c = make(chan struct{})
		w.ch[id] = c
	}
	return c
}

// ServeHTTP routes the agent protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		writeErr(w, http.StatusUnauthorized, "Unauthorized", "the join token is missing or wrong: start the agent with the token `berth server` printed")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, agentapi.PathPrefix)
	switch {
	case path == "/register" && r.Method == http.MethodPost:
		s.register(w, r)
	case strings.HasPrefix(path, "/instances/"):
		id, verb, _ := strings.Cut(strings.TrimPrefix(path, "/instances/"), "/")
		switch {
		case verb == "desired" && r.Method == http.MethodGet:
			s.desired(w, r, id)
		case verb == "report" && r.Method == http.MethodPost:
			s.report(w, r, id)
		case verb == "registry-credentials" && r.Method == http.MethodPost:
			s.registryCredentials(w, r, id)
		default:
			writeErr(w, http.StatusNotFound, "NotFound", "no such agent endpoint")
		}
	default:
		writeErr(w, http.StatusNotFound, "NotFound", "no such agent endpoint")
	}
}

func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.Token)) == 1
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, agentapi.Error{Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	buf, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf)
}

func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// register creates or re-registers a container instance.
func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var req agentapi.RegisterRequest
	if err := decode(r, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "BadRequest", "malformed registration: "+err.Error())
		return
	}
	if req.Cluster == "" {
		req.Cluster = "default"
	}
	if req.CPU <= 0 || req.MemoryMiB <= 0 {
		writeErr(w, http.StatusBadRequest, "BadRequest", "registration needs positive cpu and memoryMiB")
		return
	}
	attrs := make([]ecstypes.Attribute, 0, len(req.Attributes))
	for name, val := range req.Attributes {
		attrs = append(attrs, ecstypes.Attribute{Name: name, Value: val})
	}
	sortAttrs(attrs)
	res := state.Resources{CPU: req.CPU, MemoryMiB: req.MemoryMiB, ReservedTCP: req.ReservedPorts, ReservedUDP: req.ReservedUDPPorts}
	version := ecstypes.VersionInfo{AgentVersion: req.AgentVersion, AgentHash: "berth", DockerVersion: "DockerVersion: " + req.DockerVersion}
	now := s.cfg.Now()
	var out agentapi.RegisterResponse
	_, err := s.cfg.Store.Update(r.Context(), func(tx store.Tx) error {
		cl, ok, err := state.Get[state.Cluster](tx, state.ClusterKey(req.Cluster))
		if err != nil {
			return err
		}
		if !ok || cl.Status != "ACTIVE" {
			if req.Cluster != "default" {
				return fmt.Errorf("cluster %q: %w", req.Cluster, errdefs.ErrNotFound)
			}
			// Like the ECS agent, an agent of the default cluster creates it.
			cl = &state.Cluster{ClusterArn: s.arns.Cluster("default"), ClusterName: "default", Status: "ACTIVE",
				Settings: []ecstypes.ClusterSetting{{Name: ecstypes.ClusterSettingNameContainerInsights, Value: "disabled"}}}
			if err := state.Put(tx, state.ClusterKey("default"), cl); err != nil {
				return err
			}
		}
		id := req.InstanceID
		ci := &state.ContainerInstance{}
		secret := ""
		if id != "" {
			prev, ok, err := state.Get[state.ContainerInstance](tx, state.InstanceKey(req.Cluster, id))
			if err != nil {
				return err
			}
			if ok && prev.Status == state.InstanceInactive {
				return errDeregistered
			}
			if ok && prev.SecretHash != "" {
				if !secretMatches(prev.SecretHash, req.InstanceSecret) {
					return errWrongSecret
				}
				secret = req.InstanceSecret
			}
			if ok {
				ci = prev
			} else {
				id = "" // unknown (its store was reset): a new instance
			}
		}
		if id == "" {
			id = newID()
		}
		if secret == "" {
			secret = newID() + newID()
			ci.SecretHash = hashSecret(secret)
		}
		state.RegisterInstance(ci, s.arns, req.Cluster, id, res, attrs, version, ci.Held, now)
		if err := state.Put(tx, state.InstanceKey(req.Cluster, id), ci); err != nil {
			return err
		}
		out = agentapi.RegisterResponse{InstanceID: id, ContainerInstanceArn: ci.ContainerInstanceArn, Cluster: req.Cluster,
			HeartbeatSeconds: int(s.cfg.Heartbeat / time.Second), InstanceSecret: secret, Registries: s.registryHosts()}
		return tx.Put(state.InstanceIDKey(id), []byte(req.Cluster))
	})
	if errors.Is(err, errdefs.ErrNotFound) {
		writeErr(w, http.StatusNotFound, "ClusterNotFound", fmt.Sprintf("cluster %q does not exist: create it with aws ecs create-cluster", req.Cluster))
		return
	}
	if errors.Is(err, errWrongSecret) {
		writeErr(w, http.StatusForbidden, "InstanceSecretMismatch", "container instance "+req.InstanceID+" is registered to another agent: the instance secret does not match")
		return
	}
	if errors.Is(err, errDeregistered) {
		writeErr(w, http.StatusGone, "Deregistered", "container instance "+req.InstanceID+" was deregistered; deregistration is final: remove the agent's state directory to register this host as a new instance")
		return
	}
	if err != nil {
		s.log.Error("registration failed", "err", err)
		writeErr(w, http.StatusInternalServerError, "Internal", "registration failed")
		return
	}
	s.touch(out.InstanceID, 0)
	s.log.Info("instance registered", "cluster", out.Cluster, "instance_id", out.InstanceID, "hostname", req.Hostname)
	writeJSON(w, http.StatusOK, out)
}

// errDeregistered refuses to re-register an INACTIVE instance.
var errDeregistered = errors.New("instance deregistered")

// errWrongSecret refuses a call that does not carry the instance's secret.
var errWrongSecret = errors.New("instance secret mismatch")

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// secretMatches compares a presented secret with the stored hash in
// constant time.
func secretMatches(hash, secret string) bool {
	return secret != "" && subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(hash)) == 1
}

func sortAttrs(a []ecstypes.Attribute) {
	slices.SortFunc(a, func(x, y ecstypes.Attribute) int { return strings.Compare(x.Name, y.Name) })
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// lookupInstance finds an instance by id through the id index.
func lookupInstance(tx store.ReadTx, id string) (*state.ContainerInstance, bool, error) {
	kv, ok, err := tx.Get(state.InstanceIDKey(id))
	if err != nil || !ok {
		return nil, false, err
	}
	return state.Get[state.ContainerInstance](tx, state.InstanceKey(string(kv.Value), id))
}

// desired answers the instance's desired state, after waiting for a change
// past ?after= for up to ?wait= seconds.
func (s *Server) desired(w http.ResponseWriter, r *http.Request, id string) {
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	wait, _ := strconv.Atoi(r.URL.Query().Get("wait"))
	wait = min(max(wait, 0), agentapi.MaxPollWait)
	var known, authorized bool
	if err := s.cfg.Store.View(r.Context(), func(tx store.ReadTx) error {
		ci, ok, err := lookupInstance(tx, id)
		known = ok
		authorized = ok && secretMatches(ci.SecretHash, r.Header.Get(agentapi.SecretHeader))
		return err
	}); err != nil || !known {
		writeErr(w, http.StatusNotFound, "UnknownInstance", "container instance "+id+" is not registered")
		return
	}
	if !authorized {
		writeErr(w, http.StatusUnauthorized, "InstanceSecret", "this call must carry the instance secret issued at registration")
		return
	}
	s.touch(id, 1)
	defer s.touch(id, -1)
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if wait > 0 && started >= 0 && after >= started {
		if ch := s.waiters.changedAfter(id, after); ch != nil {
			timer := time.NewTimer(time.Duration(wait) * time.Second)
			select {
			case <-ch:
			case <-timer.C:
			case <-r.Context().Done():
				timer.Stop()
				return
			}
			timer.Stop()
		}
	}
	var out agentapi.DesiredState
	err := s.cfg.Store.View(r.Context(), func(tx store.ReadTx) error {
		out.Revision = tx.Revision()
		ci, ok, err := lookupInstance(tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return errdefs.ErrNotFound
		}
		out.InstanceStatus = ci.Status
		out.Tasks = []agentapi.DesiredTask{}
		if ci.Status == state.InstanceInactive {
			return nil // deregistered: the agent stops everything and exits
		}
		return state.EachInstanceTask(tx, id, func(t *state.Task) error {
			if t.LastStatus == "STOPPED" {
				return nil
			}
			spec, ok, err := state.Get[state.TaskSpec](tx, state.TaskSpecKey(t.ID))
			if err != nil || !ok {
				return err
			}
			out.Tasks = append(out.Tasks, agentapi.DesiredTask{
				TaskArn: t.TaskArn, Version: t.DesiredVersion, DesiredStatus: t.DesiredStatus,
				StopCode: string(t.StopCode), StoppedReason: t.StoppedReason,
				Cluster: spec.Cluster, Definition: spec.TaskDefinition, Overrides: spec.Overrides,
				StartedBy: t.StartedBy, Group: t.Group,
			})
			return nil
		})
	})
	if errors.Is(err, errdefs.ErrNotFound) {
		writeErr(w, http.StatusNotFound, "UnknownInstance", "container instance "+id+" is not registered")
		return
	}
	if err != nil {
		s.log.Error("desired state read failed", "instance_id", id, "err", err)
		writeErr(w, http.StatusInternalServerError, "Internal", "reading the desired state failed")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// report applies an agent's task reports; stale and repeated ones are
// ignored by their sequence numbers.
func (s *Server) report(w http.ResponseWriter, r *http.Request, id string) {
	var rep agentapi.Report
	if err := decode(r, &rep); err != nil {
		writeErr(w, http.StatusBadRequest, "BadRequest", "malformed report: "+err.Error())
		return
	}
	secret := r.Header.Get(agentapi.SecretHeader)
	applied := 0
	_, err := s.cfg.Store.Update(r.Context(), func(tx store.Tx) error {
		applied = 0
		ci, ok, err := lookupInstance(tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return errdefs.ErrNotFound
		}
		if !secretMatches(ci.SecretHash, secret) {
			return errWrongSecret
		}
		for _, tr := range rep.Tasks {
			changed, err := s.applyTask(tx, ci, tr)
			if err != nil {
				return err
			}
			if changed {
				applied++
			}
		}
		if applied > 0 {
			return state.Put(tx, state.InstanceKey(ci.Cluster, ci.ID), ci)
		}
		return nil
	})
	if errors.Is(err, errdefs.ErrNotFound) {
		writeErr(w, http.StatusNotFound, "UnknownInstance", "container instance "+id+" is not registered")
		return
	}
	if errors.Is(err, errWrongSecret) {
		writeErr(w, http.StatusUnauthorized, "InstanceSecret", "this call must carry the instance secret issued at registration")
		return
	}
	if err != nil {
		s.log.Error("report failed", "instance_id", id, "err", err)
		writeErr(w, http.StatusInternalServerError, "Internal", "applying the report failed")
		return
	}
	s.touch(id, 0)
	writeJSON(w, http.StatusOK, agentapi.ReportResponse{Applied: applied})
}

// applyTask applies one task report to the task and to its instance's
// counters. It returns whether the task changed.
func (s *Server) applyTask(tx store.Tx, ci *state.ContainerInstance, tr agentapi.TaskReport) (bool, error) {
	typ, rest, ok := s.arns.Resource(tr.TaskArn)
	cluster, taskID, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || typ != "task" {
		return false, nil
	}
	key := state.TaskKey(cluster, taskID)
	t, ok, err := state.Get[state.Task](tx, key)
	if err != nil || !ok || t.InstanceID != ci.ID || tr.Seq <= t.ReportSeq || t.LastStatus == "STOPPED" {
		return false, err
	}
	prev := t.LastStatus
	t.ReportSeq = tr.Seq
	t.LastStatus = tr.LastStatus
	switch {
	case t.Deactivating != nil && tr.LastStatus == "RUNNING":
		// Its service drains it from its target groups: it stays
		// DEACTIVATING until it is told to stop.
		t.LastStatus = "DEACTIVATING"
	case t.Activating && tr.LastStatus == "RUNNING":
		// Its service has yet to register it in its target groups: it
		// stays ACTIVATING until then (controller.Services).
		t.LastStatus = "ACTIVATING"
	}
	if tr.HealthStatus != "" {
		t.HealthStatus = ecstypes.HealthStatus(tr.HealthStatus)
	}
	if tr.Connectivity != "" {
		t.Connectivity = ecstypes.Connectivity(tr.Connectivity)
		t.ConnectivityAt = tr.ConnectivityAt
	}
	setTime(&t.PullStartedAt, tr.PullStartedAt)
	setTime(&t.PullStoppedAt, tr.PullStoppedAt)
	setTime(&t.StartedAt, tr.StartedAt)
	setTime(&t.StoppingAt, tr.StoppingAt)
	setTime(&t.ExecutionStoppedAt, tr.ExecutionStoppedAt)
	setTime(&t.StoppedAt, tr.StoppedAt)
	if tr.StopCode != "" && t.StopCode == "" {
		t.StopCode = ecstypes.TaskStopCode(tr.StopCode)
	}
	if tr.StoppedReason != "" && t.StoppedReason == "" {
		t.StoppedReason = tr.StoppedReason
	}
	if len(tr.Attachments) > 0 {
		t.Attachments = tr.Attachments
	}
	for _, cr := range tr.Containers {
		for i := range t.Containers {
			c := &t.Containers[i]
			if c.Name != cr.Name {
				continue
			}
			c.RuntimeId = cr.RuntimeID
			c.LastStatus = cr.LastStatus
			c.ExitCode = cr.ExitCode
			c.Reason = cr.Reason
			c.ImageDigest = cr.ImageDigest
			if cr.HealthStatus != "" {
				c.HealthStatus = ecstypes.HealthStatus(cr.HealthStatus)
			}
			if cr.NetworkBindings != nil {
				c.NetworkBindings = cr.NetworkBindings
			}
			if cr.NetworkInterfaces != nil {
				c.NetworkInterfaces = cr.NetworkInterfaces
			}
		}
	}
	// A task the agent is stopping on its own (essential exit, failed start)
	// is desired STOPPED from then on, as in ECS: it leaves the RUNNING
	// listings at once, and a later StopTask keeps the agent's reason.
	if t.DesiredStatus != "STOPPED" && (tr.StopCode != "" || pastRunning[t.LastStatus]) {
		t.DesiredStatus = "STOPPED"
		t.DesiredVersion++
	}
	if t.LastStatus == "STOPPED" && t.StoppedAt == nil {
		t.StoppedAt = awsmodel.NewTime(s.cfg.Now())
	}
	var released *state.Reservation
	if t.LastStatus == "STOPPED" {
		released, t.Reserved = t.Reserved, nil
	}
	ci.TaskMoved(t.Group, prev, t.LastStatus, released)
	t.Task.Version++ // ECS counts every observable change
	return true, state.PutTask(tx, cluster, t, prev, s.cfg.Now())
}

// pastRunning are the statuses of a task on its way to STOPPED.
var pastRunning = map[string]bool{"DEACTIVATING": true, "STOPPING": true, "DEPROVISIONING": true, "STOPPED": true}

func setTime(dst **awsmodel.Time, src *awsmodel.Time) {
	if src != nil {
		*dst = src
	}
}
