// Command services measures how fast a service grows from 0 to -tasks
// running tasks on -instances simulated agents (internal/simagent: the real
// agent protocol, nothing run), against the same number of tasks launched
// with RunTask (10 per call, -clients concurrent callers) on an identical
// cluster in the same run. Both are timed from the first API call until
// every task is RUNNING as the control plane sees it; the service's time
// is what `aws ecs wait services-stable` waits for (runningCount reaching
// desiredCount).
//
//	go run ./bench/services                       # 500 tasks on 100 instances, 3 rounds
//	go run ./bench/services -tasks 2000 -instances 1000
//
// It prints a Markdown table for docs/benchmarks.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/controlplane"
	"github.com/berthdev/berth/internal/sdkhttp"
	"github.com/berthdev/berth/internal/simagent"
)

type options struct {
	tasks, instances, clients, rounds int
	dir                               string
}

func main() {
	var o options
	flag.IntVar(&o.tasks, "tasks", 500, "tasks to reach")
	flag.IntVar(&o.instances, "instances", 100, "simulated container instances per cluster")
	flag.IntVar(&o.clients, "clients", 8, "concurrent RunTask callers for the peer")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of each (alternating)")
	flag.StringVar(&o.dir, "dir", "", "directory for the control plane's data (default: a temporary directory)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

// counter counts RUNNING reports across every simulated agent of a
// cluster, so the end of a ramp is seen without polling.
type counter struct {
	running atomic.Int64
	target  int64
	done    chan struct{}
	once    sync.Once
}

func (c *counter) add(reports []agentapi.TaskReport) {
	n := 0
	for _, r := range reports {
		if r.LastStatus == "RUNNING" {
			n++
		}
	}
	if c.running.Add(int64(n)) >= c.target && c.target > 0 {
		c.once.Do(func() { close(c.done) })
	}
}

func run(ctx context.Context, o options) error {
	work, err := os.MkdirTemp(o.dir, "berth-bench-services-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cp, err := controlplane.Open(controlplane.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(work, "cp")})
	if err != nil {
		return err
	}
	cpCtx, stopCP := context.WithCancel(context.Background())
	cpDone := make(chan error, 1)
	go func() { cpDone <- cp.Serve(cpCtx) }()
	defer func() { stopCP(); <-cpDone }()
	key := cp.Key()
	c := ecs.NewFromConfig(aws.Config{
		Region: cp.Region(), Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, ""),
		BaseEndpoint: aws.String(cp.Endpoint()), HTTPClient: sdkhttp.Client(),
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := c.ListClusters(ctx, &ecs.ListClustersInput{}); err == nil {
			break
		} else if time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("bench"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("berth-testapp:latest"), Memory: aws.Int32(16), Cpu: 2,
		}},
	}); err != nil {
		return err
	}
	// Each instance holds far more than its share, so placement never fails.
	per := max(1, (o.tasks+o.instances-1)/o.instances)
	cpu, mem := 4*2*per, 4*16*per
	type result struct {
		what string
		d    time.Duration
	}
	var results []result
	for round := range o.rounds {
		for _, kind := range []string{"service", "runtask"} {
			name := fmt.Sprintf("%s-%d", kind, round)
			if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(name)}); err != nil {
				return err
			}
			cnt := &counter{target: int64(o.tasks), done: make(chan struct{})}
			var agents []*simagent.Agent
			for range o.instances {
				a, err := simagent.Start(ctx, simagent.Options{Endpoint: cp.Endpoint(), JoinToken: cp.JoinToken(), Cluster: name, CPU: cpu, MemoryMiB: mem})
				if err != nil {
					return err
				}
				a.OnReport(cnt.add)
				agents = append(agents, a)
			}
			start := time.Now()
			if kind == "service" {
				_, err = c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(name), ServiceName: aws.String("ramp"),
					TaskDefinition: aws.String("bench"), DesiredCount: aws.Int32(int32(o.tasks))})
			} else {
				err = runTasks(ctx, c, name, o.tasks, o.clients)
			}
			if err != nil {
				return err
			}
			select {
			case <-cnt.done:
			case <-time.After(5 * time.Minute):
				return fmt.Errorf("%s: %d of %d tasks RUNNING after 5 minutes", name, cnt.running.Load(), o.tasks)
			case <-ctx.Done():
				return ctx.Err()
			}
			d := time.Since(start)
			if kind == "service" {
				// The service itself must agree: runningCount == desiredCount.
				for {
					out, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(name), Services: []string{"ramp"}})
					if err != nil {
						return err
					}
					if s := out.Services[0]; int(s.RunningCount) == o.tasks {
						d = time.Since(start)
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			results = append(results, result{kind, d})
			fmt.Fprintf(os.Stderr, "round %d %s: %d tasks RUNNING in %v\n", round, kind, o.tasks, d.Round(time.Millisecond))
			for _, a := range agents {
				a.Stop()
			}
		}
	}
	median := func(kind string) time.Duration {
		var ds []time.Duration
		for _, r := range results {
			if r.what == kind {
				ds = append(ds, r.d)
			}
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	svc, peer := median("service"), median("runtask")
	fmt.Printf("Machine: %d cores, %s/%s, %s; %d tasks on %d simulated instances, median of %d rounds.\n\n",
		goruntime.NumCPU(), goruntime.GOOS, goruntime.GOARCH, goruntime.Version(), o.tasks, o.instances, o.rounds)
	fmt.Println("| how | tasks | instances | time to all RUNNING | tasks/s | vs RunTask |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	fmt.Printf("| RunTask, 10 per call, %d clients (peer) | %d | %d | %v | %.0f | 1.00x |\n", o.clients, o.tasks, o.instances, peer.Round(time.Millisecond), float64(o.tasks)/peer.Seconds())
	fmt.Printf("| CreateService desiredCount=%d | %d | %d | %v | %.0f | %.2fx |\n", o.tasks, o.tasks, o.instances, svc.Round(time.Millisecond), float64(o.tasks)/svc.Seconds(), peer.Seconds()/svc.Seconds())
	return nil
}

// runTasks launches n tasks with RunTask, 10 per call, from clients
// concurrent callers.
func runTasks(ctx context.Context, c *ecs.Client, cluster string, n, clients int) error {
	calls := make(chan int32)
	go func() {
		defer close(calls)
		for left := n; left > 0; left -= 10 {
			calls <- int32(min(10, left))
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			for count := range calls {
				out, err := c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String("bench"), Count: aws.Int32(count)})
				if err == nil && len(out.Failures) > 0 {
					err = fmt.Errorf("RunTask failures: %+v", out.Failures)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
