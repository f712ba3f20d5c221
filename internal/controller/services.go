package controller

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/launch"
	"github.com/berthdev/berth/internal/scheduler"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// Services is the service scheduler: it keeps each service's desiredCount
// of tasks running, replaces tasks that stop or fail their health checks,
// rolls deployments out within the deployment configuration, trips the
// circuit breaker, and follows instances for DAEMON services.
//
// Each service is reconciled in one store transaction: read the service,
// its tasks and their instances, plan with deploy.Reconcile, and write the
// tasks it starts and stops together with the service. A crash between two
// passes loses nothing and a restart cannot duplicate a task. A pass runs
// when the service, one of its tasks or an instance of its cluster changes,
// when the plan asks to look again (health waits, backoff, capacity), and
// on a periodic resync.
type Services struct {
	Store    store.Store
	Launcher *launch.Launcher
	Now      func() time.Time
	Logger   *slog.Logger
	// HealthWait is how long a task without a health check runs before it
	// counts as healthy; default deploy.DefaultHealthWait.
	HealthWait time.Duration
	// Resync is how often every service is looked at regardless; default 30 s.
	Resync time.Duration
	// Metrics, if set (NewServiceMetrics), counts what the scheduler does.
	Metrics *ServiceMetrics

	log   *slog.Logger
	queue workQueue
	// instances remembers each instance's status, so only status changes
	// (not the counters every placement bumps) wake a cluster's services.
	mu        sync.Mutex
	instances map[string]string
	healthCk  map[string]bool // task definition ARN -> has a health check
	// targets maps the key of each target a service registered to the
	// service ("cluster/name"), so a health change or a drained target
	// wakes it.
	targets map[string]string
}

func (c *Services) defaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Resync <= 0 {
		c.Resync = 30 * time.Second
	}
	if c.HealthWait <= 0 {
		c.HealthWait = deploy.DefaultHealthWait
	}
	c.log = slog.New(slog.DiscardHandler)
	if c.Logger != nil {
		c.log = c.Logger
	}
	c.log = c.log.With("component", "service_scheduler")
	c.instances = map[string]string{}
	c.healthCk = map[string]bool{}
	c.targets = map[string]string{}
	c.queue.init()
}

// Run schedules until ctx ends.
func (c *Services) Run(ctx context.Context) error {
	c.defaults()
	go c.watchLoop(ctx)
	go c.watchTargets(ctx)
	go func() {
		t := time.NewTicker(c.Resync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.enqueueAll(ctx)
			}
		}
	}()
	for {
		key, ok := c.queue.next(ctx)
		if !ok {
			return nil
		}
		cluster, name, _ := strings.Cut(key, "/")
		again, err := c.Reconcile(ctx, cluster, name)
		switch {
		case err != nil && ctx.Err() == nil:
			c.log.Warn("service reconcile failed", "cluster", cluster, "service", name, "err", err)
			c.queue.add(key, time.Now().Add(time.Second))
		case again > 0:
			c.queue.add(key, time.Now().Add(again))
		}
	}
}

// enqueueAll queues every service that is not INACTIVE.
func (c *Services) enqueueAll(ctx context.Context) {
	_ = c.Store.View(ctx, func(tx store.ReadTx) error {
		kvs, err := tx.List(state.ServicesPrefix, "", 0)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			var s struct {
				Status string `json:"status"`
			}
			if json.Unmarshal(kv.Value, &s) == nil && s.Status != state.ServiceInactive {
				c.queue.add(strings.TrimPrefix(kv.Key, state.ServicesPrefix), time.Time{})
			}
		}
		return nil
	})
}

// enqueueCluster queues every service of a cluster.
func (c *Services) enqueueCluster(ctx context.Context, cluster string) {
	_ = c.Store.View(ctx, func(tx store.ReadTx) error {
		kvs, err := tx.List(state.ServicesClusterPrefix(cluster), "", 0)
		for _, kv := range kvs {
			c.queue.add(strings.TrimPrefix(kv.Key, state.ServicesPrefix), time.Time{})
		}
		return err
	})
}

// watchLoop turns store changes into work: a service's own record, its
// tasks, and status changes of its cluster's instances.
func (c *Services) watchLoop(ctx context.Context) {
	for ctx.Err() == nil {
		rev := c.Store.Revision()
		ch, err := c.Store.Watch(ctx, "/ecs/", rev+1)
		if err == nil {
			c.enqueueAll(ctx) // anything that changed before the watch began
			err = c.consume(ctx, ch)
		}
		if ctx.Err() == nil {
			c.log.Warn("service scheduler watch restarted", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

func (c *Services) consume(ctx context.Context, ch <-chan store.WatchResponse) error {
	for resp := range ch {
		if resp.Err != nil {
			return resp.Err
		}
		for _, ev := range resp.Events {
			key := ev.KV.Key
			switch {
			case strings.HasPrefix(key, state.ServicesPrefix):
				c.queue.add(strings.TrimPrefix(key, state.ServicesPrefix), time.Time{})
			case strings.HasPrefix(key, state.TasksPrefix) && ev.Type == store.EventPut:
				var t struct {
					Group string `json:"group"`
				}
				if !bytes.Contains(ev.KV.Value, []byte(`"group":"service:`)) || json.Unmarshal(ev.KV.Value, &t) != nil {
					continue
				}
				cluster, _, _ := strings.Cut(strings.TrimPrefix(key, state.TasksPrefix), "/")
				if name, ok := state.ServiceOf(t.Group); ok {
					c.queue.add(cluster+"/"+name, time.Time{})
				}
			case strings.HasPrefix(key, state.InstancesPrefix):
				cluster, id, _ := strings.Cut(strings.TrimPrefix(key, state.InstancesPrefix), "/")
				status := ""
				if ev.Type == store.EventPut {
					var ci struct {
						Status string `json:"status"`
					}
					_ = json.Unmarshal(ev.KV.Value, &ci)
					status = ci.Status
				}
				c.mu.Lock()
				prev, known := c.instances[id]
				c.instances[id] = status
				if status == "" {
					delete(c.instances, id)
				}
				c.mu.Unlock()
				if !known || prev != status {
					c.enqueueCluster(ctx, cluster)
				}
			}
		}
	}
	return ctx.Err()
}

// watchTarget remembers that target key belongs to service.
func (c *Services) watchTarget(key, service string) {
	c.mu.Lock()
	c.targets[key] = service
	c.mu.Unlock()
}

// watchTargets wakes a service when the health of one of its targets
// changes or a target of its drains away.
func (c *Services) watchTargets(ctx context.Context) {
	for ctx.Err() == nil {
		ch, err := c.Store.Watch(ctx, state.TargetsPrefix, c.Store.Revision()+1)
		if err == nil {
			for resp := range ch {
				if resp.Err != nil {
					err = resp.Err
					break
				}
				for _, ev := range resp.Events {
					c.mu.Lock()
					svc, ok := c.targets[ev.KV.Key]
					if ok && ev.Type == store.EventDelete {
						delete(c.targets, ev.KV.Key)
					}
					c.mu.Unlock()
					if ok {
						c.queue.add(svc, time.Time{})
					}
				}
			}
		}
		if ctx.Err() == nil {
			c.log.Warn("service scheduler target watch restarted", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// Reconcile runs one pass over one service and returns when to look again
// (0: only when something changes).
func (c *Services) Reconcile(ctx context.Context, cluster, name string) (time.Duration, error) {
	var again time.Duration
	var logs []func()
	began := time.Now()
	_, err := c.Store.Update(ctx, func(tx store.Tx) error {
		again, logs = 0, nil
		svc, ok, err := state.Get[state.Service](tx, state.ServiceKey(cluster, name))
		if err != nil || !ok || svc.Status == state.ServiceInactive {
			return err
		}
		before, err := json.Marshal(svc)
		if err != nil {
			return err
		}
		now := c.Now()
		p := &pass{c: c, tx: tx, svc: svc, cluster: cluster, now: now, tasks: map[string]*state.Task{}}
		in, err := p.input()
		if err != nil {
			return err
		}
		plan := deploy.Reconcile(in)
		if err := p.apply(&plan); err != nil {
			return err
		}
		again = plan.Requeue
		logs = p.logs
		after, err := json.Marshal(svc)
		if err != nil {
			return err
		}
		if bytes.Equal(before, after) {
			return nil
		}
		return state.Put(tx, state.ServiceKey(cluster, name), svc)
	})
	if err == nil {
		c.Metrics.pass(time.Since(began))
		for _, l := range logs {
			l()
		}
	}
	return again, err
}

// pass is one reconcile of one service inside one transaction.
type pass struct {
	c       *Services
	tx      store.Tx
	svc     *state.Service
	cluster string
	now     time.Time
	tasks   map[string]*state.Task
	snap    *scheduler.Snapshot
	logs    []func()
}

func (p *pass) input() (deploy.Input, error) {
	in := deploy.Input{
		Service: p.svc, Instances: map[string]deploy.Instance{}, HealthCheck: map[string]bool{},
		Now: p.now, HealthWait: p.c.HealthWait,
	}
	err := state.EachServiceTask(p.tx, p.cluster, p.svc.ServiceName, func(t *state.Task, dep string) error {
		p.tasks[t.ID] = t
		dt := deploy.Task{
			ID: t.ID, Deployment: dep, InstanceID: t.InstanceID, LastStatus: t.LastStatus,
			DesiredStatus: t.DesiredStatus, Health: t.HealthStatus, StopCode: t.StopCode,
		}
		if t.CreatedAt != nil {
			dt.CreatedAt = t.CreatedAt.Time
		}
		if t.StartedAt != nil {
			dt.StartedAt = t.StartedAt.Time
		}
		if t.StoppedAt != nil {
			dt.StoppedAt = t.StoppedAt.Time
		}
		if t.Deactivating != nil {
			dt.Deactivating, dt.DeactivateReason = true, t.Deactivating.Reason
		}
		if t.Activating && len(p.svc.LoadBalancers) == 0 {
			// Its service no longer has load balancers (UpdateService).
			if err := p.activated(t); err != nil {
				return err
			}
			if err := state.Put(p.tx, state.TaskKey(p.cluster, t.ID), t); err != nil {
				return err
			}
			dt.LastStatus = t.LastStatus
		}
		if t.Activating && t.LastStatus == launch.StatusActivating && t.StartedAt != nil {
			// Running, waiting for its registrations: the planner's
			// running task without targets.
			dt.LastStatus = launch.StatusRunning
		}
		if len(t.Targets) > 0 {
			targets, err := p.targetsOf(t)
			if err != nil {
				return err
			}
			dt.Targets = targets
		}
		in.Tasks = append(in.Tasks, dt)
		if _, seen := in.Instances[t.InstanceID]; !seen && t.InstanceID != "" {
			ci, ok, err := state.Get[state.ContainerInstance](p.tx, state.InstanceKey(p.cluster, t.InstanceID))
			if err != nil {
				return err
			}
			inst := deploy.Instance{ID: t.InstanceID}
			if ok {
				inst.Status = ci.Status
			}
			in.Instances[t.InstanceID] = inst
		}
		return nil
	})
	if err != nil {
		return in, err
	}
	for _, d := range p.svc.Deployments {
		hc, err := p.hasHealthCheck(d.TaskDefinition)
		if err != nil {
			return in, err
		}
		in.HealthCheck[d.Id] = hc
	}
	if p.svc.SchedulingStrategy == ecstypes.SchedulingStrategyDaemon {
		if err := p.daemonInstances(&in); err != nil {
			return in, err
		}
	}
	return in, nil
}

// daemonInstances lists every instance of the cluster and whether a daemon
// task belongs on it.
func (p *pass) daemonInstances(in *deploy.Input) error {
	need, err := p.requirement(p.primaryTaskDef())
	if err != nil || need == nil {
		return err
	}
	list, err := p.c.Launcher.DaemonInstances(p.tx, p.cluster, *need)
	if err != nil {
		return err
	}
	for _, di := range list {
		in.Instances[di.ID] = deploy.Instance{ID: di.ID, Status: di.Status, Eligible: di.Eligible}
	}
	return nil
}

func (p *pass) primaryTaskDef() string {
	if d := deploy.Primary(p.svc); d != nil {
		return d.TaskDefinition
	}
	return p.svc.TaskDefinition
}

// taskDef reads a task definition revision by ARN.
func (p *pass) taskDef(arn string) (*state.TaskDefinition, error) {
	family, rev, ok := p.c.Launcher.ARNs.TaskDefinitionRef(arn)
	if !ok || rev == 0 {
		return nil, nil
	}
	td, ok, err := state.Get[state.TaskDefinition](p.tx, state.TaskDefKey(family, rev))
	if err != nil || !ok {
		return nil, err
	}
	return td, nil
}

func (p *pass) hasHealthCheck(arn string) (bool, error) {
	p.c.mu.Lock()
	hc, ok := p.c.healthCk[arn]
	p.c.mu.Unlock()
	if ok {
		return hc, nil
	}
	td, err := p.taskDef(arn)
	if err != nil || td == nil {
		return false, err
	}
	for _, cd := range td.TaskDefinition.ContainerDefinitions {
		if (cd.Essential == nil || *cd.Essential) && cd.HealthCheck != nil && len(cd.HealthCheck.Command) > 0 {
			hc = true
		}
	}
	p.c.mu.Lock()
	p.c.healthCk[arn] = hc // revisions are immutable
	p.c.mu.Unlock()
	return hc, nil
}

// requirement is what one task of the revision needs, with the service's
// placement rules; nil if the revision is gone.
func (p *pass) requirement(arn string) (*scheduler.Task, error) {
	td, err := p.taskDef(arn)
	if err != nil || td == nil {
		return nil, err
	}
	need, err := launch.ServiceTask(&td.TaskDefinition, p.svc.ServiceName, p.svc.PlacementConstraints, p.svc.PlacementStrategy)
	if err != nil {
		return nil, err
	}
	return &need, nil
}

func (p *pass) event(msg string) {
	at := awsmodel.NewTime(p.now)
	// The same message within five minutes is not repeated.
	for _, ev := range p.svc.Events {
		if ev.CreatedAt == nil || p.now.Sub(ev.CreatedAt.Time) > 5*time.Minute {
			break
		}
		if ev.Message == msg {
			return
		}
	}
	state.AddServiceEvent(p.svc, launch.NewUUID(), msg, *at)
}

func (p *pass) apply(plan *deploy.Plan) error {
	svc := p.svc
	name := svc.ServiceName
	for _, id := range plan.Forget {
		if t := p.tasks[id]; t != nil && len(t.Targets) > 0 {
			if err := p.forgetTargets(t); err != nil {
				return err
			}
		}
		if err := p.tx.Delete(state.ServiceTaskKey(p.cluster, name, id)); err != nil {
			return err
		}
	}
	if err := p.register(plan.Register); err != nil {
		return err
	}
	draining := 0
	var scaled []string
	for _, st := range plan.Stop {
		t := p.tasks[st.TaskID]
		if t == nil {
			continue
		}
		if st.Drain {
			if err := p.drain(t, st.Reason); err != nil {
				return err
			}
			draining++
			continue
		}
		changed, err := p.c.Launcher.Stop(p.tx, p.cluster, t, deploy.StopCode, st.Reason)
		if err != nil {
			return err
		}
		if !changed {
			continue
		}
		why := "scaling"
		if st.Reason == deploy.ReasonUnhealthy {
			why = "unhealthy"
		} else {
			scaled = append(scaled, t.ID)
		}
		p.logs = append(p.logs, func() { p.c.Metrics.taskStopped(why) })
	}
	for _, msg := range plan.Events {
		p.event(msg)
	}
	if draining > 0 {
		p.event(fmt.Sprintf("(service %s) has begun draining connections on %d tasks.", name, draining))
	}
	for chunk := range chunks(scaled, 10) {
		p.event(fmt.Sprintf("(service %s) has stopped %d running tasks: %s.", name, len(chunk), taskList(chunk)))
	}
	if len(scaled) > 0 {
		n := len(scaled)
		p.logs = append(p.logs, func() { p.c.log.Info("service stopped tasks", "service", name, "cluster", p.cluster, "count", n) })
	}
	for _, st := range plan.Start {
		if err := p.start(st, plan); err != nil {
			return err
		}
	}
	for _, f := range plan.Finish {
		if err := deploy.Finish(p.tx, svc, f.Deployment, f.Status, f.Reason, p.now); err != nil {
			return err
		}
		status := string(f.Status)
		p.logs = append(p.logs, func() {
			p.c.Metrics.deploymentFinished(status)
			p.c.log.Info("service deployment finished", "service", name, "cluster", p.cluster, "status", status)
		})
	}
	if plan.RollBack != "" {
		d, err := deploy.RollBack(p.tx, p.c.Launcher.ARNs, svc, plan.RollBack, deploy.BreakerReason, p.now)
		if err != nil {
			return err
		}
		if d != nil {
			svc.StartFailures, svc.NextLaunchAt = 0, nil
			id := d.Id
			p.logs = append(p.logs, func() {
				p.c.log.Warn("service deployment rolled back", "service", name, "failed", plan.RollBack, "rollback", id)
			})
		}
	}
	return nil
}

func (p *pass) start(st deploy.StartTasks, plan *deploy.Plan) error {
	svc := p.svc
	name := svc.ServiceName
	d := deploy.Find(svc, st.Deployment)
	if d == nil {
		return nil
	}
	td, err := p.taskDef(d.TaskDefinition)
	if err != nil {
		return err
	}
	if td == nil {
		p.event(fmt.Sprintf("(service %s) was unable to place a task because its task definition %s no longer exists.", name, d.TaskDefinition))
		return nil
	}
	need, err := p.requirement(d.TaskDefinition)
	if err != nil || need == nil {
		return err
	}
	if p.snap == nil {
		instances, err := p.c.Launcher.Instances(p.tx, p.cluster)
		if err != nil {
			return err
		}
		p.snap = scheduler.NewSnapshot(instances)
	}
	var res scheduler.Result
	if st.Instance != "" {
		res, err = p.snap.PlaceOn([]string{st.Instance}, *need)
	} else {
		res, err = p.snap.Place(*need, st.Count, launch.NewSeed())
	}
	if errors.Is(err, scheduler.ErrNoInstances) {
		plan.LookAgainWithin(deploy.PlacementRetry)
		p.event(fmt.Sprintf("(service %s) was unable to place a task because no container instance met all of its requirements. Reason: No Container Instances were found in your cluster. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.", name))
		return nil
	}
	if err != nil {
		p.event(fmt.Sprintf("(service %s) was unable to place a task: %s", name, err.Error()))
		return nil
	}
	var ids []string
	for _, pl := range res.Placements {
		id := launch.NewTaskID()
		_, err := p.c.Launcher.Create(p.tx, p.cluster, id, pl.InstanceID, launch.Spec{
			TaskDef: td, Need: *need, StartedBy: d.Id, Propagate: svc.PropagateTags, ServiceTags: svc.Tags,
			Service: name, Deployment: d.Id, Balanced: len(svc.LoadBalancers) > 0,
		})
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	if len(ids) > 0 {
		svc.Steady = false
		if d.Status == state.DeploymentPrimary {
			d.PendingCount += int32(len(ids))
			svc.PendingCount += int32(len(ids))
		}
		for chunk := range chunks(ids, 10) {
			p.event(fmt.Sprintf("(service %s) has started %d tasks: %s.", name, len(chunk), taskList(chunk)))
		}
		n := len(ids)
		p.logs = append(p.logs, func() {
			p.c.Metrics.tasksStarted(n)
			p.c.log.Info("service started tasks", "service", name, "cluster", p.cluster, "count", n)
		})
	}
	if len(res.Placements) < st.Count {
		plan.LookAgainWithin(deploy.PlacementRetry)
		if why := res.Explain(); why != "" {
			p.event(fmt.Sprintf("(service %s) was unable to place a task because %s For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.", name, why))
		}
	}
	return nil
}

func taskList(ids []string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = "(task " + id + ")"
	}
	return strings.Join(parts, " ")
}

func chunks(s []string, n int) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// workQueue holds service keys ("cluster/name") due at a time; a key
// queued twice runs once, at the earlier time. Due times sit in a min-heap
// whose entries go stale when a key is moved earlier or taken; stale
// entries are dropped as they surface.
type workQueue struct {
	mu   sync.Mutex
	due  map[string]time.Time
	heap dueHeap
	wake chan struct{}
}

type dueItem struct {
	key string
	at  time.Time
}

type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func (q *workQueue) init() {
	q.mu.Lock()
	q.due = map[string]time.Time{}
	q.heap = nil
	q.mu.Unlock()
	q.wake = make(chan struct{}, 1)
}

func (q *workQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.due)
}

func (q *workQueue) add(key string, at time.Time) {
	q.mu.Lock()
	if cur, ok := q.due[key]; !ok || at.Before(cur) {
		q.due[key] = at
		heap.Push(&q.heap, dueItem{key, at})
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next waits for the earliest due key and removes it.
func (q *workQueue) next(ctx context.Context) (string, bool) {
	for {
		q.mu.Lock()
		var wait time.Duration = -1
		for q.heap.Len() > 0 {
			top := q.heap[0]
			if at, ok := q.due[top.key]; !ok || !at.Equal(top.at) {
				heap.Pop(&q.heap) // stale
				continue
			}
			if d := time.Until(top.at); d > 0 {
				wait = d
				break
			}
			heap.Pop(&q.heap)
			delete(q.due, top.key)
			q.mu.Unlock()
			return top.key, true
		}
		q.mu.Unlock()
		var timer <-chan time.Time
		var tm *time.Timer
		if wait >= 0 {
			tm = time.NewTimer(wait)
			timer = tm.C
		}
		select {
		case <-ctx.Done():
			return "", false
		case <-q.wake:
		case <-timer:
		}
		if tm != nil {
			tm.Stop()
		}
	}
}
