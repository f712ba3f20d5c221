// Package simagent is a simulated container agent: it speaks the agent
// protocol exactly as `berth agent` does but runs nothing. It reports every
// task it is given RUNNING, and STOPPED once the task is desired stopped.
// Tests use it to drive the control plane without Docker, and benchmarks
// use thousands of them to stand for a fleet of hosts.
package simagent

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel"
)

// Agent is one simulated container instance.
type Agent struct {
	Client *agentapi.Client
	ID     string
	Secret string

	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	seq    map[string]uint64
	seen   map[string]agentapi.DesiredTask
	hold   map[string]bool
	holdIf func(agentapi.DesiredTask) bool
	fail   func(agentapi.DesiredTask) bool
	// OnReport, when set, is called with every report the agent sends.
	onReport func([]agentapi.TaskReport)
}

// Options describe the simulated host.
type Options struct {
	Endpoint, JoinToken, Cluster string
	CPU, MemoryMiB               int
	Attributes                   map[string]string
}

// Start registers an instance and runs its loop until Stop.
func Start(ctx context.Context, o Options) (*Agent, error) {
	c := &agentapi.Client{Endpoint: o.Endpoint, Token: o.JoinToken}
	reg, err := c.Register(ctx, agentapi.RegisterRequest{
		Cluster: o.Cluster, Hostname: "sim", AgentVersion: "sim", DockerVersion: "none",
		CPU: o.CPU, MemoryMiB: o.MemoryMiB, ReservedPorts: []int{22}, Attributes: o.Attributes,
	})
	if err != nil {
		return nil, fmt.Errorf("registering a simulated agent: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	a := &Agent{Client: c, ID: reg.InstanceID, Secret: reg.InstanceSecret, cancel: cancel, done: make(chan struct{}),
		seq: map[string]uint64{}, seen: map[string]agentapi.DesiredTask{}, hold: map[string]bool{}}
	go a.loop(runCtx)
	return a, nil
}

// Stop ends the agent's loop (its instance stays registered).
func (a *Agent) Stop() {
	a.cancel()
	<-a.done
}

// Hold keeps a task PENDING instead of RUNNING.
func (a *Agent) Hold(taskArn string) {
	a.mu.Lock()
	a.hold[taskArn] = true
	a.mu.Unlock()
}

// HoldIf keeps the tasks the rule picks PENDING (nil: none), as tasks
// whose images take forever to pull would be.
func (a *Agent) HoldIf(rule func(agentapi.DesiredTask) bool) {
	a.mu.Lock()
	a.holdIf = rule
	a.mu.Unlock()
}

// SetFail sets the rule for tasks that stop at once, as a container that
// exits on start would (nil: none).
func (a *Agent) SetFail(fail func(agentapi.DesiredTask) bool) {
	a.mu.Lock()
	a.fail = fail
	a.mu.Unlock()
}

// OnReport sets a function called with every batch of reports sent.
func (a *Agent) OnReport(fn func([]agentapi.TaskReport)) {
	a.mu.Lock()
	a.onReport = fn
	a.mu.Unlock()
}

// Report sends one hand-made task report.
func (a *Agent) Report(ctx context.Context, tr agentapi.TaskReport) (agentapi.ReportResponse, error) {
	return a.Client.Report(ctx, a.ID, agentapi.Report{Tasks: []agentapi.TaskReport{tr}})
}

// Crash reports a task STOPPED because its essential container exited, as
// a container killed from outside would be.
func (a *Agent) Crash(ctx context.Context, taskArn string) error {
	a.mu.Lock()
	a.seq[taskArn]++
	tr := stopped(a.seen[taskArn], a.seq[taskArn], 137)
	a.mu.Unlock()
	_, err := a.Report(ctx, tr)
	return err
}

func stopped(dt agentapi.DesiredTask, seq uint64, exit int32) agentapi.TaskReport {
	now := awsmodel.NewTime(time.Now())
	tr := agentapi.TaskReport{TaskArn: dt.TaskArn, Seq: seq, LastStatus: "STOPPED", StoppedAt: now, ExecutionStoppedAt: now}
	if exit != 0 {
		tr.StopCode, tr.StoppedReason = "EssentialContainerExited", "Essential container in task exited"
	}
	for _, c := range dt.Definition.ContainerDefinitions {
		code := exit
		tr.Containers = append(tr.Containers, agentapi.ContainerReport{Name: c.Name, LastStatus: "STOPPED", ExitCode: &code})
	}
	return tr
}

func (a *Agent) loop(ctx context.Context) {
	defer close(a.done)
	var after int64
	for ctx.Err() == nil {
		ds, err := a.Client.Desired(ctx, a.ID, after, 2*time.Second)
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
			seq := a.seq[dt.TaskArn]
			var tr agentapi.TaskReport
			switch {
			case dt.DesiredStatus == "STOPPED":
				tr = stopped(dt, seq, 0)
			case a.hold[dt.TaskArn], a.holdIf != nil && a.holdIf(dt):
				tr = agentapi.TaskReport{TaskArn: dt.TaskArn, Seq: seq, LastStatus: "PENDING"}
			case a.fail != nil && a.fail(dt):
				tr = stopped(dt, seq, 1)
			default:
				tr = agentapi.TaskReport{TaskArn: dt.TaskArn, Seq: seq, LastStatus: "RUNNING", StartedAt: awsmodel.NewTime(time.Now())}
				for _, c := range dt.Definition.ContainerDefinitions {
					tr.Containers = append(tr.Containers, agentapi.ContainerReport{Name: c.Name, LastStatus: "RUNNING", RuntimeID: "sim-" + c.Name})
				}
			}
			reports = append(reports, tr)
		}
		onReport := a.onReport
		a.mu.Unlock()
		if len(reports) > 0 {
			_, _ = a.Client.Report(ctx, a.ID, agentapi.Report{Tasks: reports})
			if onReport != nil {
				onReport(reports)
			}
		}
	}
}
