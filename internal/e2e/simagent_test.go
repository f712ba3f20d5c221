package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel"
)

// simAgent speaks the agent protocol like `berth agent` but runs nothing:
// it reports every desired task RUNNING, and STOPPED once it is desired
// stopped. Tests use it to drive the control plane without Docker.
type simAgent struct {
	t      testing.TB
	client *agentapi.Client
	id     string
	secret string
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	seq  map[string]uint64
	seen map[string]agentapi.DesiredTask
	// hold, when set for a task, keeps it PENDING instead of RUNNING.
	hold map[string]bool
}

// startSimAgent registers an instance with cpu units and memory MiB and
// runs its loop until the test ends or stop is called.
func startSimAgent(t testing.TB, b *berth, cluster string, cpu, mem int, attrs map[string]string) *simAgent {
	t.Helper()
	c := &agentapi.Client{Endpoint: b.endpoint, Token: b.cp.JoinToken()}
	reg, err := c.Register(ctx(t), agentapi.RegisterRequest{
		Cluster: cluster, Hostname: "sim", AgentVersion: "sim", DockerVersion: "none",
		CPU: cpu, MemoryMiB: mem, ReservedPorts: []int{22}, Attributes: attrs,
	})
	if err != nil {
		t.Fatalf("registering a simulated agent: %v", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	a := &simAgent{t: t, client: c, id: reg.InstanceID, secret: reg.InstanceSecret, cancel: cancel, done: make(chan struct{}),
		seq: map[string]uint64{}, seen: map[string]agentapi.DesiredTask{}, hold: map[string]bool{}}
	go a.loop(runCtx)
	t.Cleanup(a.stop)
	return a
}

func (a *simAgent) stop() {
	a.cancel()
	<-a.done
}

func (a *simAgent) loop(ctx context.Context) {
	defer close(a.done)
	var after int64
	for ctx.Err() == nil {
		ds, err := a.client.Desired(ctx, a.id, after, 2*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				time.Sleep(20 * time.Millisecond) // back off before retrying
			}
			continue
		}
		after = ds.Revision
		var reports []agentapi.TaskReport
		a.mu.Lock()
		for _, dt := range ds.Tasks {
			a.seen[dt.TaskArn] = dt
			a.seq[dt.TaskArn]++
			tr := agentapi.TaskReport{TaskArn: dt.TaskArn, Seq: a.seq[dt.TaskArn]}
			now := awsmodel.NewTime(time.Now())
			switch {
			case dt.DesiredStatus == "STOPPED":
				tr.LastStatus, tr.StoppedAt, tr.ExecutionStoppedAt = "STOPPED", now, now
				for _, c := range dt.Definition.ContainerDefinitions {
					code := int32(0)
					tr.Containers = append(tr.Containers, agentapi.ContainerReport{Name: c.Name, LastStatus: "STOPPED", ExitCode: &code})
				}
			case a.hold[dt.TaskArn]:
				tr.LastStatus = "PENDING"
			default:
				tr.LastStatus, tr.StartedAt = "RUNNING", now
				for _, c := range dt.Definition.ContainerDefinitions {
					tr.Containers = append(tr.Containers, agentapi.ContainerReport{Name: c.Name, LastStatus: "RUNNING", RuntimeID: "sim-" + c.Name})
				}
			}
			reports = append(reports, tr)
		}
		a.mu.Unlock()
		if len(reports) > 0 {
			_, _ = a.client.Report(ctx, a.id, agentapi.Report{Tasks: reports})
		}
	}
}

// report sends one hand-made task report (for stale/duplicate tests).
func (a *simAgent) report(tr agentapi.TaskReport) agentapi.ReportResponse {
	a.t.Helper()
	out, err := a.client.Report(ctx(a.t), a.id, agentapi.Report{Tasks: []agentapi.TaskReport{tr}})
	if err != nil {
		a.t.Fatal(err)
	}
	return out
}

func (a *simAgent) arn(b *berth, cluster string) string {
	return "arn:aws:ecs:us-east-1:000000000000:container-instance/" + cluster + "/" + a.id
}
