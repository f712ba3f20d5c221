// Command runtask measures how long a task takes from the RunTask call to
// DescribeTasks reporting it RUNNING, with the image already on the host,
// against starting the same container straight on the Docker Engine in the
// same run: `docker run -d` timed from exec to exit, and the engine API's
// create and start through internal/runtime/docker.
//
//	go run ./bench/runtask                          # 50 tasks one at a time, then in bursts of 10, then 20 self-healing kills
//	go run ./bench/runtask -count 20 -burst 0       # shorter, one at a time only
//	go run ./bench/runtask -log /tmp/runtask.log    # also write the agent's debug log
//
// It builds and loads the test image (internal/testimage), starts a control
// plane and one agent over the real Docker Engine in this process, and
// drives them with the AWS SDK for Go v2 as a user would. The three ways of
// starting a container take turns: each round starts one burst of
// -concurrency containers (1: one at a time) with each way, in a rotating
// order, so that whatever else the engine does meanwhile falls on all three
// alike. RUNNING is observed by one goroutine that calls DescribeTasks for
// every task in flight every -poll (2 ms; back to back when a call takes
// longer) and timestamps the answer, so a Berth figure is late by at most
// one interval plus one DescribeTasks call; the header line prints that
// call's own p50 and maximum.
//
// Every container it makes is labelled (dev.berth.bench, or the agent's
// dev.berth.agent-id) and removed before it exits, also on an error or
// Ctrl-C. It prints Markdown tables for docs/benchmarks.md: the latencies
// with the ratio of each p50 to the docker run p50 of the same concurrency,
// and where Berth's time goes, from the agent's own log records.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/controlplane"
	"github.com/berthdev/berth/internal/runtime"
	"github.com/berthdev/berth/internal/runtime/docker"
	"github.com/berthdev/berth/internal/sdkhttp"
	"github.com/berthdev/berth/internal/testimage"
)

const (
	clusterName   = "bench-runtask"
	family        = "bench-runtask"
	containerPort = 8080
	memoryMiB     = 32
	// benchLabel marks the peer containers; its value is unique per run.
	benchLabel = "dev.berth.bench"
	// agentIDLabel marks the agent's containers (internal/agent's labelAgentID).
	agentIDLabel = "dev.berth.agent-id"
)

type options struct {
	count, concurrency, burst int
	heal                      int
	image                     string
	poll                      time.Duration
	dir, logPath, cpuProfile  string
	tracePath                 string
}

func main() {
	var o options
	flag.IntVar(&o.count, "count", 50, "containers started per way and concurrency")
	flag.IntVar(&o.concurrency, "concurrency", 1, "containers started at once (1: one after another)")
	flag.IntVar(&o.burst, "burst", 10, "a second run with this many at once (0: none)")
	flag.IntVar(&o.heal, "heal", 20, "times to kill a service's container and time its replacement (0: none)")
	flag.StringVar(&o.image, "image", testimage.DefaultRef, "reference to build and load the test image under, and run")
	flag.DurationVar(&o.poll, "poll", 2*time.Millisecond, "DescribeTasks polling interval")
	flag.StringVar(&o.dir, "dir", os.TempDir(), "directory for the control plane's and the agent's state (a temporary folder is made inside)")
	flag.StringVar(&o.logPath, "log", "", "write the control plane's and the agent's debug log to this file")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.StringVar(&o.tracePath, "trace", "", "write every Berth task's milestones (ms since the RunTask call) to this CSV file")
	flag.Parse()
	if o.count < 1 || o.concurrency < 1 || o.burst < 0 {
		log.Fatal("count and concurrency must be positive, burst not negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case interrupted:
		log.Fatal("interrupted; the benchmark's containers are removed")
	case err != nil:
		log.Fatal(err)
	}
}

// run sets everything up, measures, and tears everything down again.
func run(ctx context.Context, o options) error {
	work, err := os.MkdirTemp(o.dir, "berth-bench-runtask-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	rt, err := docker.New(docker.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer rt.Close()
	lctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	_, err = testimage.Load(lctx, rt, o.image)
	cancel()
	if err != nil {
		return fmt.Errorf("test image: %w", err)
	}
	info, err := rt.Info(ctx)
	if err != nil {
		return err
	}

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	rec := newRecorder()
	var logw io.Writer = io.Discard
	if o.logPath != "" {
		f, err := os.Create(o.logPath)
		if err != nil {
			return err
		}
		defer f.Close()
		logw = f
	}
	logger := slog.New(teeHandler{rec, slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug})})

	c, err := startCluster(ctx, work, rt, logger)
	if err != nil {
		return err
	}
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	b := &bench{o: o, rt: rt, ecs: c.ecs, rec: rec, peerLabels: map[string]string{benchLabel: "runtask-" + runID}}
	b.agentLabels = map[string]string{agentIDLabel: c.agent.AgentID()}
	b.watch = newWatcher(c.ecs, o.poll)
	wctx, stopWatch := context.WithCancel(context.Background())
	go b.watch.run(wctx)
	defer func() {
		// Clean up with a context of its own: ctx may be what ended the run.
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		b.stopTasks(cctx)
		stopWatch()
		c.stop()
		b.removeAll(cctx, b.agentLabels)
		b.removeAll(cctx, b.peerLabels)
	}()

	if _, err := c.ecs.RegisterTaskDefinition(ctx, taskDefinition(o.image)); err != nil {
		return err
	}
	// One of each first, not counted: the first container of a process
	// pays for connections and caches.
	if _, err := b.round(ctx, 1, 0); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}

	fmt.Printf("Machine: %d cores, %s/%s, %s, Docker %s (%s storage); image %s, %d per row, warm-up of one each not counted.\n",
		goruntime.NumCPU(), goruntime.GOOS, goruntime.GOARCH, goruntime.Version(), info.EngineVersion, storageDriver(ctx), o.image, o.count)
	levels := []int{o.concurrency}
	if o.burst > 0 && o.burst != o.concurrency {
		levels = append(levels, o.burst)
	}
	var results [][]result
	var rows []row
	for _, conc := range levels {
		res, err := b.measure(ctx, conc)
		if err != nil {
			return err
		}
		results = append(results, res)
		for _, r := range res {
			rows = append(rows, r.row())
		}
		// Start the next level from an engine as empty as this one began.
		b.stopTasks(ctx)
		b.removeAll(ctx, b.agentLabels)
		b.removeAll(ctx, b.peerLabels)
	}
	if o.tracePath != "" {
		if err := writeTrace(o.tracePath, levels, results); err != nil {
			return err
		}
	}
	callP50, callMax := b.watch.callStats()
	fmt.Printf("DescribeTasks polled every %s (call p50 %s, max %s).\n\n", o.poll, round(callP50), round(callMax))
	printTable(rows)
	for i, res := range results {
		fmt.Printf("\nWhere Berth's time goes, concurrency %d: each step from the milestone above (p50), and the time since the RunTask call (p50, p99):\n\n", levels[i])
		printBreakdown(res[len(res)-1].marks)
	}
	if o.heal > 0 {
		if err := b.healing(ctx); err != nil {
			return fmt.Errorf("self-healing: %w", err)
		}
	}
	return nil
}

// healing times a service's self-healing: a service of one task has its
// container killed (SIGKILL through the engine) -heal times, and each time
// the clock runs from the kill until a replacement task is RUNNING. The
// peer, in turns with it, is `docker run -d` of the same image.
func (b *bench) healing(ctx context.Context) error {
	const svc = "heal"
	if _, err := b.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(clusterName), ServiceName: aws.String(svc),
		TaskDefinition: aws.String(family), DesiredCount: aws.Int32(1)}); err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = b.ecs.DeleteService(cctx, &ecs.DeleteServiceInput{Cluster: aws.String(clusterName), Service: aws.String(svc), Force: aws.Bool(true)})
	}()
	running := func(not string) (types.Task, error) {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			l, err := b.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(clusterName), ServiceName: aws.String(svc)})
			if err != nil {
				return types.Task{}, err
			}
			if len(l.TaskArns) > 0 {
				d, err := b.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(clusterName), Tasks: l.TaskArns})
				if err != nil {
					return types.Task{}, err
				}
				for _, t := range d.Tasks {
					if aws.ToString(t.TaskArn) != not && aws.ToString(t.LastStatus) == "RUNNING" {
						return t, nil
					}
				}
			}
			time.Sleep(b.o.poll)
		}
		return types.Task{}, errors.New("no RUNNING task of the service within 30 s")
	}
	cur, err := running("")
	if err != nil {
		return err
	}
	heal := result{what: "Berth service: container killed → replacement RUNNING", conc: 1}
	peer := result{what: "`docker run -d` (CLI, the peer)", conc: 1}
	heal.base, peer.base = &peer, &peer
	for range b.o.heal {
		d, _, err := b.dockerRun(ctx)
		if err != nil {
			return err
		}
		peer.lats = append(peer.lats, d)
		t0 := time.Now()
		if err := b.rt.Stop(ctx, aws.ToString(cur.Containers[0].RuntimeId), 0); err != nil {
			return err
		}
		next, err := running(aws.ToString(cur.TaskArn))
		if err != nil {
			return err
		}
		heal.lats = append(heal.lats, time.Since(t0))
		cur = next
		// Let the replacement count as healthy before the next kill.
		time.Sleep(time.Second)
	}
	fmt.Printf("\nSelf-healing, %d kills (the replacement is placed when the agent reports the task STOPPED):\n\n", b.o.heal)
	printTable([]row{peer.row(), heal.row()})
	return nil
}

// storageDriver asks the docker CLI for the engine's storage driver.
func storageDriver(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.Driver}}").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// cluster is the control plane and its one agent, in this process.
type cluster struct {
	cp      *controlplane.ControlPlane
	agent   *agent.Agent
	ecs     *ecs.Client
	stopCP  context.CancelFunc
	stopAg  context.CancelFunc
	cpDone  chan error
	agDone  chan error
	stopped bool
}

func startCluster(ctx context.Context, work string, rt runtime.Runtime, logger *slog.Logger) (*cluster, error) {
	// A service task without a health check counts as healthy after 500 ms
	// (ECS: 40 s), so the self-healing phase can kill one every second
	// without the kills counting as failed launches.
	cp, err := controlplane.Open(controlplane.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(work, "controlplane"), Logger: logger,
		ServiceHealthWait: 500 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	c := &cluster{cp: cp, cpDone: make(chan error, 1), agDone: make(chan error, 1)}
	cpCtx, stopCP := context.WithCancel(context.Background())
	c.stopCP = stopCP
	go func() { c.cpDone <- cp.Serve(cpCtx) }()
	key := cp.Key()
	c.ecs = ecs.NewFromConfig(aws.Config{
		Region:       cp.Region(),
		Credentials:  credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, ""),
		BaseEndpoint: aws.String(cp.Endpoint()),
		HTTPClient:   sdkhttp.Client(),
	})
	if _, err := c.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(clusterName)}); err != nil {
		c.stop()
		return nil, err
	}
	c.agent, err = agent.New(agent.Config{
		Cluster: clusterName, Endpoint: cp.Endpoint(), Token: cp.JoinToken(), Runtime: rt,
		StateDir: filepath.Join(work, "agent"), MetadataListen: "0.0.0.0:0",
		CleanupDelay: time.Hour, // the benchmark removes the containers itself
		Logger:       logger,
	})
	if err != nil {
		c.stop()
		return nil, err
	}
	agCtx, stopAg := context.WithCancel(context.Background())
	c.stopAg = stopAg
	go func() { c.agDone <- c.agent.Run(agCtx) }()
	deadline := time.Now().Add(15 * time.Second)
	for c.agent.InstanceID() == "" {
		select {
		case err := <-c.agDone:
			c.agDone <- err
			c.stop()
			return nil, fmt.Errorf("agent stopped before registering: %v", err)
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, errors.New("agent did not register within 15 s")
		}
	}
	return c, nil
}

// stop stops the agent (its containers keep running) and the control plane.
func (c *cluster) stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	if c.stopAg != nil {
		c.stopAg()
		if err := <-c.agDone; err != nil {
			log.Printf("agent stopped with: %v", err)
		}
	}
	c.stopCP()
	if err := <-c.cpDone; err != nil {
		log.Printf("control plane stopped with: %v", err)
	}
}

func taskDefinition(image string) *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family:      aws.String(family),
		NetworkMode: types.NetworkModeBridge,
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:         aws.String("app"),
			Image:        aws.String(image),
			Memory:       aws.Int32(memoryMiB),
			Command:      []string{"serve", "-port", strconv.Itoa(containerPort)},
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(containerPort)}}, // dynamic host port
		}},
	}
}

// bench holds what the three ways of starting a container share.
type bench struct {
	o                       options
	rt                      *docker.Runtime
	ecs                     *ecs.Client
	watch                   *watcher
	rec                     *recorder
	peerLabels, agentLabels map[string]string
	mu                      sync.Mutex
	arns                    []string // every task started, for stopTasks
}

// way is one way of starting a container: it returns the latency, and for
// Berth the milestones of the task.
type way struct {
	name  string
	start func(context.Context) (time.Duration, marks, error)
}

func (b *bench) ways() []way {
	return []way{
		{"`docker run -d` (CLI, the peer)", b.dockerRun},
		{"engine API create + start", b.engineStart},
		{"Berth RunTask → RUNNING", b.runTask},
	}
}

// result is one row: a way at one concurrency.
type result struct {
	what  string
	conc  int
	lats  []time.Duration
	marks []marks
	base  *result
}

// measure starts o.count containers each way, conc at a time, the ways
// taking turns round by round.
func (b *bench) measure(ctx context.Context, conc int) ([]result, error) {
	ways := b.ways()
	res := make([]result, len(ways))
	for i, w := range ways {
		res[i] = result{what: w.name, conc: conc, base: &res[0]}
	}
	for done, r := 0, 0; done < b.o.count; r++ {
		n := min(conc, b.o.count-done)
		got, err := b.round(ctx, n, r)
		if err != nil {
			return nil, err
		}
		for i := range got {
			res[i].lats = append(res[i].lats, got[i].lats...)
			res[i].marks = append(res[i].marks, got[i].marks...)
		}
		done += n
	}
	return res, nil
}

// round starts n containers at once with each way in turn, beginning with
// way r modulo the number of ways.
func (b *bench) round(ctx context.Context, n, r int) ([]result, error) {
	ways := b.ways()
	out := make([]result, len(ways))
	for k := range ways {
		i := (r + k) % len(ways)
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, m, err := ways[i].start(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				out[i].lats = append(out[i].lats, d)
				if m != nil {
					out[i].marks = append(out[i].marks, m)
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("%s: %w", ways[i].name, err)
		}
	}
	return out, nil
}

// dockerRun times `docker run -d` from exec to exit, which is when the CLI
// has seen the engine start the container.
func (b *bench) dockerRun(ctx context.Context) (time.Duration, marks, error) {
	args := []string{"run", "-d"}
	for k, v := range b.peerLabels {
		args = append(args, "--label", k+"="+v)
	}
	args = append(args, "--memory", fmt.Sprintf("%dm", memoryMiB), "-p", strconv.Itoa(containerPort), b.o.image, "serve", "-port", strconv.Itoa(containerPort))
	cmd := exec.CommandContext(ctx, "docker", args...)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		return 0, nil, fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return d, nil, nil
}

// engineStart creates and starts the container through the engine API, as
// the agent's runtime does.
func (b *bench) engineStart(ctx context.Context) (time.Duration, marks, error) {
	spec := runtime.ContainerSpec{
		Image: b.o.image, Cmd: []string{"serve", "-port", strconv.Itoa(containerPort)},
		Labels: b.peerLabels, MemoryLimit: memoryMiB << 20, NetworkMode: "bridge",
		PortBindings: []runtime.PortBinding{{ContainerPort: containerPort, Protocol: "tcp"}},
	}
	t0 := time.Now()
	id, err := b.rt.Create(ctx, spec)
	if err != nil {
		return 0, nil, err
	}
	if err := b.rt.Start(ctx, id); err != nil {
		return 0, nil, err
	}
	return time.Since(t0), nil, nil
}

// runTask runs one task and waits until DescribeTasks says RUNNING.
func (b *bench) runTask(ctx context.Context) (time.Duration, marks, error) {
	t0 := time.Now()
	out, err := b.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(clusterName), TaskDefinition: aws.String(family)})
	if err != nil {
		return 0, nil, err
	}
	t1 := time.Now()
	if len(out.Tasks) != 1 {
		return 0, nil, fmt.Errorf("RunTask placed no task: %+v", out.Failures)
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	b.mu.Lock()
	b.arns = append(b.arns, arn)
	b.mu.Unlock()
	seen, err := b.watch.await(ctx, arn, "RUNNING")
	if err != nil {
		return 0, nil, err
	}
	m := b.rec.take(arn)
	m[markCall], m[markAnswer], m[markDescribed] = t0, t1, seen
	return seen.Sub(t0), m, nil
}

// stopTasks stops every task started and waits (up to 30 s) until they are
// STOPPED, so that the agent has nothing left to do with their containers.
func (b *bench) stopTasks(ctx context.Context) {
	b.mu.Lock()
	arns := b.arns
	b.arns = nil
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, arn := range arns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := b.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(clusterName), Task: aws.String(arn)}); err != nil {
				return
			}
			_, _ = b.watch.await(ctx, arn, "STOPPED")
		}()
	}
	wg.Wait()
}

// removeAll removes, forcefully, every container that carries labels.
func (b *bench) removeAll(ctx context.Context, labels map[string]string) {
	list, err := b.rt.List(ctx, labels)
	if err != nil {
		log.Printf("cleanup: listing containers %v: %v", labels, err)
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, c := range list {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := b.rt.Remove(ctx, c.ID); err != nil {
				log.Printf("cleanup: removing container %s: %v", c.ID, err)
			}
		}()
	}
	wg.Wait()
}

// watcher polls DescribeTasks for every task someone awaits.
type watcher struct {
	ecs   *ecs.Client
	every time.Duration

	mu      sync.Mutex
	waiting map[string]*waiter
	calls   []time.Duration
}

type waiter struct {
	status string
	done   chan struct{}
	at     time.Time
	err    error
}

func newWatcher(c *ecs.Client, every time.Duration) *watcher {
	return &watcher{ecs: c, every: every, waiting: map[string]*waiter{}}
}

// await returns when DescribeTasks first answered the task's lastStatus as
// status (or STOPPED, an error unless awaited).
func (w *watcher) await(ctx context.Context, arn, status string) (time.Time, error) {
	wt := &waiter{status: status, done: make(chan struct{})}
	w.mu.Lock()
	w.waiting[arn] = wt
	w.mu.Unlock()
	select {
	case <-wt.done:
		return wt.at, wt.err
	case <-ctx.Done():
		w.mu.Lock()
		delete(w.waiting, arn)
		w.mu.Unlock()
		return time.Time{}, ctx.Err()
	}
}

func (w *watcher) run(ctx context.Context) {
	tick := time.NewTicker(w.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		w.mu.Lock()
		arns := make([]string, 0, len(w.waiting))
		for arn := range w.waiting {
			arns = append(arns, arn)
		}
		w.mu.Unlock()
		for chunk := range slices.Chunk(arns, 100) {
			t0 := time.Now()
			out, err := w.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(clusterName), Tasks: chunk})
			at := time.Now()
			if err != nil {
				if ctx.Err() == nil {
					log.Printf("DescribeTasks: %v", err)
				}
				continue
			}
			w.mu.Lock()
			w.calls = append(w.calls, at.Sub(t0))
			for _, t := range out.Tasks {
				arn, last := aws.ToString(t.TaskArn), aws.ToString(t.LastStatus)
				wt, ok := w.waiting[arn]
				if !ok || (last != wt.status && last != "STOPPED") {
					continue
				}
				if last != wt.status {
					wt.err = fmt.Errorf("task %s stopped: %s %s", arn, t.StopCode, aws.ToString(t.StoppedReason))
				}
				wt.at = at
				delete(w.waiting, arn)
				close(wt.done)
			}
			w.mu.Unlock()
		}
	}
}

// callStats are the median and the longest DescribeTasks round trip.
func (w *watcher) callStats() (p50, max time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := slices.Sorted(slices.Values(w.calls))
	if len(s) == 0 {
		return 0, 0
	}
	return percentile(s, 0.50), s[len(s)-1]
}

type row struct {
	what               string
	n, conc            int
	p50, p90, p99, max time.Duration
	ratio              float64
}

func (r result) row() row {
	s := slices.Sorted(slices.Values(r.lats))
	out := row{what: r.what, n: len(s), conc: r.conc, p50: percentile(s, 0.50), p90: percentile(s, 0.90), p99: percentile(s, 0.99), max: s[len(s)-1]}
	if base := percentile(slices.Sorted(slices.Values(r.base.lats)), 0.50); base > 0 {
		out.ratio = float64(out.p50) / float64(base)
	}
	return out
}

func printTable(rows []row) {
	fmt.Println("| what | count | concurrency | p50 | p90 | p99 | max | p50 vs docker run |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Printf("| %s | %d | %d | %s | %s | %s | %s | %.2fx |\n", r.what, r.n, r.conc, round(r.p50), round(r.p90), round(r.p99), round(r.max), r.ratio)
	}
}

// percentile is the nearest-rank percentile of sorted values: with 50
// values p99 is the largest.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
