package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/runtime"
)

// ErrDeregistered is returned by Run when the control plane deregistered
// the instance: the agent stopped its tasks and forgot its instance id.
var ErrDeregistered = errors.New("agent: container instance deregistered")

// Agent is a running `berth agent`. Make one with New and call Run once.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	rt       runtime.Runtime
	clock    Clock
	client   *agentapi.Client
	store    *stateStore
	reporter *reporter
	meta     *metadataServer
	pause    PauseImager
	// registry holds the pull credentials of the control plane's registry.
	registry *berthRegistry

	// Set in Run before any manager starts.
	info           runtime.HostInfo
	metadataBridge string
	metadataHost   string
	metadataAlias  string
	metadataPort   int

	mu sync.Mutex
	// id is the persisted identity; registered is closed after the first
	// successful registration.
	id         identity
	registered chan struct{}
	heartbeat  time.Duration
	tasks      map[string]*manager
	// owners maps engine container ids to task ARNs, for events that carry
	// no labels.
	owners map[string]string
	// changed is signalled whenever a task publishes a new report.
	changed chan struct{}

	// closing is set when Run shuts down; no goroutine starts after it.
	closing bool

	regMu    sync.Mutex
	managers sync.WaitGroup
	runCtx   context.Context
}

// New checks cfg and opens the state directory; it contacts nothing.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	store, err := openStateStore(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	id, err := store.loadIdentity()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "agent")
	client := &agentapi.Client{Endpoint: cfg.Endpoint, Token: cfg.Token, HTTP: cfg.HTTPClient}
	a := &Agent{
		cfg:        cfg,
		log:        log,
		rt:         cfg.Runtime,
		clock:      cfg.Clock,
		client:     client,
		registry:   newBerthRegistry(client, cfg.Endpoint, cfg.Clock, log.With("subcomponent", "registry_credentials")),
		store:      store,
		reporter:   newReporter(cfg.MaxPendingReports),
		meta:       newMetadataServer(cfg.Runtime, log.With("subcomponent", "metadata")),
		pause:      cfg.Pause,
		id:         id,
		registered: make(chan struct{}),
		tasks:      map[string]*manager{},
		owners:     map[string]string{},
		changed:    make(chan struct{}, 1),
	}
	return a, nil
}

// AgentID returns the id that marks this agent's containers (the
// dev.berth.agent-id label); it survives restarts and re-registrations.
func (a *Agent) AgentID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id.AgentID
}

// InstanceID returns the control plane's id of this instance, empty before
// the first registration.
func (a *Agent) InstanceID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id.InstanceID
}

// Run runs the agent until ctx ends (it then returns nil, leaving the
// containers running for the next agent to adopt), the join token is
// refused, or the instance is deregistered (ErrDeregistered).
func (a *Agent) Run(ctx context.Context) error {
	info, err := a.rt.Info(ctx)
	if err != nil {
		return fmt.Errorf("agent: container engine: %w", err)
	}
	a.info = info
	if a.pause == nil {
		a.pause = runtimePause{rt: a.rt, image: a.cfg.PauseImage, arch: hostArch(info)}
	}
	ln, err := net.Listen("tcp", a.cfg.MetadataListen)
	if err != nil {
		return fmt.Errorf("agent: metadata endpoint: %w", err)
	}
	a.metadataBridge, a.metadataHost, a.metadataAlias = metadataAddrs(ln.Addr(), a.cfg.MetadataHost)
	a.metadataPort = ln.Addr().(*net.TCPAddr).Port
	a.log.Info("agent starting", "agent_id", a.AgentID(), "metadata", ln.Addr().String(), "metadata_uri_host", a.metadataBridge)

	recs, err := a.store.loadTasks()
	if err != nil {
		ln.Close()
		return fmt.Errorf("agent: state: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	a.runCtx = gctx
	// Subscribe before any manager acts, so that no event is missed.
	evs, errc := a.rt.Events(gctx, map[string]string{labelAgentID: a.AgentID()})

	srv := &http.Server{Handler: a.meta.Handler(), ReadHeaderTimeout: 10 * time.Second}
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("agent: metadata endpoint: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error { return a.watchEvents(gctx, evs, errc) })
	g.Go(func() error { return a.session(gctx) })
	g.Go(func() error { return a.reportLoop(gctx) })

	a.mu.Lock()
	for _, rec := range recs {
		a.startManagerLocked(gctx, rec)
	}
	a.mu.Unlock()
	g.Go(func() error {
		<-gctx.Done()
		a.mu.Lock()
		a.closing = true
		a.mu.Unlock()
		a.managers.Wait()
		return nil
	})

	err = g.Wait()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		a.log.Info("agent stopped")
		return nil
	}
	return err
}

// planEnvLocked is what task plans need to know about this agent; a.mu is held.
func (a *Agent) planEnvLocked(rec *taskRecord) planEnv {
	id := a.id
	env := planEnv{
		agentID:        id.AgentID,
		instanceID:     id.InstanceID,
		metadataBridge: a.metadataBridge,
		metadataHost:   a.metadataHost,
		metadataAlias:  a.metadataAlias,
		stopTimeout:    a.cfg.StopTimeout,
		pauseImage:     a.cfg.PauseImage,
		tokens:         map[string]string{},
	}
	for _, c := range rec.Containers {
		env.tokens[c.Name] = c.Token
	}
	return env
}

// startManagerLocked starts the manager of a task; a.mu is held.
func (a *Agent) startManagerLocked(ctx context.Context, rec *taskRecord) *manager {
	m := newManager(a, rec, a.planEnvLocked(rec))
	a.tasks[rec.TaskArn] = m
	all := rec.Containers
	if rec.Pause != nil {
		all = append(all, rec.Pause)
	}
	for _, c := range all {
		if c.RuntimeID != "" && !c.Removed {
			a.owners[c.RuntimeID] = rec.TaskArn
		}
	}
	a.spawnLocked(func() {
		m.run(ctx)
		if !m.finished() {
			return
		}
		a.mu.Lock()
		if a.tasks[rec.TaskArn] == m {
			delete(a.tasks, rec.TaskArn)
		}
		a.mu.Unlock()
		a.reporter.forget(rec.TaskArn)
		a.meta.remove(rec.TaskArn)
		if err := a.store.deleteTask(rec.TaskArn); err != nil {
			a.log.Error("forget task state", "task_arn", rec.TaskArn, "err", err)
		}
		m.log.Info("task forgotten")
	})
	return m
}

// spawnLocked runs f in a goroutine that Run waits for, unless Run is
// already shutting down; a.mu is held. (WaitGroup.Add must not race with
// the final Wait.)
func (a *Agent) spawnLocked(f func()) {
	if a.closing {
		return
	}
	a.managers.Add(1)
	go func() {
		defer a.managers.Done()
		f()
	}()
}

// own and disown keep the container-id-to-task map for routing events.
func (a *Agent) own(id, taskArn string) {
	a.mu.Lock()
	a.owners[id] = taskArn
	a.mu.Unlock()
}

func (a *Agent) disown(id string) {
	a.mu.Lock()
	delete(a.owners, id)
	a.mu.Unlock()
}

// notifyChange wakes whoever waits for task reports to change.
func (a *Agent) notifyChange() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// watchEvents routes engine events to the task managers, resubscribing
// after a failure; after a resubscription every task is re-inspected, since
// events may have been missed meanwhile.
func (a *Agent) watchEvents(ctx context.Context, evs <-chan runtime.Event, errc <-chan error) error {
	bo := newBackoff(a.cfg.RetryMin, a.cfg.RetryMax)
	for {
		for ev := range evs {
			bo.Reset()
			a.dispatch(ev)
		}
		err := <-errc
		if ctx.Err() != nil {
			return nil
		}
		a.log.Warn("engine events interrupted; resubscribing", "err", err)
		if !a.sleep(ctx, bo.Next()) {
			return nil
		}
		evs, errc = a.rt.Events(ctx, map[string]string{labelAgentID: a.AgentID()})
		a.mu.Lock()
		for _, m := range a.tasks {
			m.resync()
		}
		a.mu.Unlock()
	}
}

// dispatch hands an event to the manager of its task.
func (a *Agent) dispatch(ev runtime.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	arn := ev.Labels[labelTaskArn]
	if arn == "" {
		arn = a.owners[ev.ContainerID]
	}
	if m, ok := a.tasks[arn]; ok {
		m.deliver(ev)
	}
}

// sleep waits for d on the agent's clock; false means ctx ended.
func (a *Agent) sleep(ctx context.Context, d time.Duration) bool {
	t := a.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}
