package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/runtime"
	"github.com/berthdev/berth/internal/runtime/fake"
)

// testDeadline bounds every wait in these tests; waits end as soon as
// their condition holds, so it only matters when a test fails.
const testDeadline = 20 * time.Second

// testAgent is an Agent running in a test.
type testAgent struct {
	*Agent
	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	history map[string][]agentapi.TaskReport // every enqueued report, by task
}

// startAgent runs an agent against cp and rt with a state directory, test
// timings, and cfg edits from tweak; the test's cleanup stops it.
func startAgent(t *testing.T, cp *fakeControlPlane, rt runtime.Runtime, stateDir string, tweak ...func(*Config)) *testAgent {
	t.Helper()
	cfg := Config{
		Cluster:        "default",
		Endpoint:       cp.srv.URL,
		Token:          "join-token",
		Runtime:        rt,
		StateDir:       stateDir,
		MetadataListen: "127.0.0.1:0",
		MetadataHost:   "127.0.0.1",
		PollWait:       time.Second,
		RetryMin:       2 * time.Millisecond,
		RetryMax:       20 * time.Millisecond,
		ResyncInterval: time.Hour,
		Logger:         slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range tweak {
		f(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ta := &testAgent{Agent: a, done: make(chan error, 1), history: map[string][]agentapi.TaskReport{}}
	a.reporter.observe = func(tr agentapi.TaskReport) {
		ta.mu.Lock()
		ta.history[tr.TaskArn] = append(ta.history[tr.TaskArn], tr)
		ta.mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta.cancel = cancel
	go func() { ta.done <- a.Run(ctx) }()
	t.Cleanup(func() { ta.stop(t) })
	return ta
}

// stop cancels the agent and waits for Run to return (once).
func (ta *testAgent) stop(t *testing.T) {
	t.Helper()
	ta.cancel()
	select {
	case err, ok := <-ta.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(ta.done)
		}
	case <-time.After(testDeadline):
		t.Fatalf("agent did not stop")
	}
}

// transitions returns the lastStatus sequence the agent reported for a
// task, one entry per transition.
func (ta *testAgent) transitions(arn string) []string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	var out []string
	for _, tr := range ta.history[arn] {
		if len(out) == 0 || out[len(out)-1] != tr.LastStatus {
			out = append(out, tr.LastStatus)
		}
	}
	return out
}

// reports returns every report the agent enqueued for a task.
func (ta *testAgent) reports(arn string) []agentapi.TaskReport {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return slices.Clone(ta.history[arn])
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

var _ io.Writer = testWriter{}

// waitUntil polls cond until it holds, failing the test at the deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

var taskCounter int

// taskArn returns a fresh task ARN.
func taskArn() string {
	taskCounter++
	return fmt.Sprintf("arn:aws:ecs:us-east-1:000000000000:task/default/%032x", taskCounter)
}

// desiredTask is a task of family "web" revision 3 with the given containers.
func desiredTask(containers ...ecstypes.ContainerDefinition) agentapi.DesiredTask {
	return agentapi.DesiredTask{
		TaskArn:       taskArn(),
		Version:       1,
		DesiredStatus: statusRunning,
		Cluster:       "default",
		Definition: ecstypes.TaskDefinition{
			Family:               "web",
			Revision:             3,
			NetworkMode:          ecstypes.NetworkModeBridge,
			ContainerDefinitions: containers,
		},
	}
}

// container is a container definition running image app:1.
func container(name string, edits ...func(*ecstypes.ContainerDefinition)) ecstypes.ContainerDefinition {
	c := ecstypes.ContainerDefinition{Name: name, Image: "app:1", Memory: new(int32(128))}
	for _, e := range edits {
		e(&c)
	}
	return c
}

func nonEssential(c *ecstypes.ContainerDefinition) { c.Essential = new(false) }

func dependsOn(name string, cond ecstypes.ContainerCondition) func(*ecstypes.ContainerDefinition) {
	return func(c *ecstypes.ContainerDefinition) {
		c.DependsOn = append(c.DependsOn, ecstypes.ContainerDependency{ContainerName: name, Condition: cond})
	}
}

func withHealthCheck(c *ecstypes.ContainerDefinition) {
	c.HealthCheck = &ecstypes.HealthCheck{Command: []string{"CMD", "/app", "check", "http://localhost/"}, Interval: new(int32(5))}
}

// newFake returns a fake runtime holding image app:1.
func newFake() *fake.Runtime { return fake.New(fake.Options{Images: []string{"app:1"}}) }

// callIndex returns the index of the first call of method m on a target
// matching target (a container name or id; "" matches any), or -1.
func callIndex(calls []fake.Call, m fake.Method, target string) int {
	return slices.IndexFunc(calls, func(c fake.Call) bool {
		return c.Method == m && (target == "" || c.Target == target)
	})
}

// containerID returns the engine id of a task's container, waiting for it
// to be created.
func containerID(t *testing.T, rt *fake.Runtime, dt agentapi.DesiredTask, name string) string {
	t.Helper()
	var id string
	waitUntil(t, "container "+name+" created", func() bool {
		st, err := rt.Inspect(context.Background(), dockerName(&dt, name))
		id = st.ID
		return err == nil
	})
	return id
}

// isRunning reports whether a task's container runs on the fake.
func isRunning(rt *fake.Runtime, dt agentapi.DesiredTask, name string) bool {
	st, err := rt.Inspect(context.Background(), dockerName(&dt, name))
	return err == nil && st.Running
}
