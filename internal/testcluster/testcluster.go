// Package testcluster starts a control plane and agents in one process for
// end-to-end tests: the real HTTP front door, store and agent protocol, with
// agents over the real Docker Engine or the fake runtime. Agents can be
// stopped, killed (their context cut without cleanup, as SIGKILL would) and
// restarted on the same state directory.
package testcluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/controlplane"
	"github.com/berthdev/berth/internal/runtime"
	"github.com/berthdev/berth/internal/sdkhttp"
)

// Cluster is a control plane with its agents.
type Cluster struct {
	t       testing.TB
	dataDir string
	CP      *controlplane.ControlPlane
	cancel  context.CancelFunc
	done    chan error

	mu     sync.Mutex
	agents []*Agent
}

// Start starts a control plane on a free loopback port; it stops (with its
// agents) when the test ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c := &Cluster{t: t, dataDir: t.TempDir()}
	c.startControlPlane("127.0.0.1:0")
	t.Cleanup(c.stop)
	return c
}

func (c *Cluster) startControlPlane(listen string) {
	c.t.Helper()
	cp, err := controlplane.Open(controlplane.Config{Listen: listen, DataDir: c.dataDir, AgentDisconnectGrace: time.Second,
		// A service task without a health check counts as healthy after 1 s
		// instead of ECS's 40 s, so rollouts in tests take seconds.
		ServiceHealthWait: time.Second})
	if err != nil {
		c.t.Fatalf("starting the control plane: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.CP, c.cancel, c.done = cp, cancel, make(chan error, 1)
	go func() { c.done <- cp.Serve(ctx) }()
	WaitHealthy(c.t, cp.Endpoint())
}

// RestartControlPlane stops the control plane and starts it again on the
// same address and data, as an operator restart would. Agents keep running.
func (c *Cluster) RestartControlPlane() {
	c.t.Helper()
	addr := c.CP.Endpoint()[len("http://"):]
	c.cancel()
	if err := <-c.done; err != nil {
		c.t.Fatalf("control plane stopped with: %v", err)
	}
	c.startControlPlane(addr)
}

func (c *Cluster) stop() {
	c.mu.Lock()
	agents := c.agents
	c.mu.Unlock()
	for _, a := range agents {
		a.Stop()
	}
	c.cancel()
	if err := <-c.done; err != nil {
		c.t.Errorf("control plane stopped with: %v", err)
	}
}

// ECS is an ECS client signed with the admin key.
func (c *Cluster) ECS() *ecs.Client {
	k := c.CP.Key()
	return ecs.NewFromConfig(aws.Config{
		Region:           c.CP.Region(),
		Credentials:      credentials.NewStaticCredentialsProvider(k.AccessKeyID, k.SecretAccessKey, ""),
		BaseEndpoint:     aws.String(c.CP.Endpoint()),
		RetryMaxAttempts: 1,
		// Loopback: see sdkhttp for the SDK's closed-connection race.
		HTTPClient: sdkhttp.Client(),
	})
}

// Agents returns the agents added so far.
func (c *Cluster) Agents() []*Agent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Agent(nil), c.agents...)
}

// Agent is one agent of the cluster.
type Agent struct {
	c       *Cluster
	cfg     agent.Config
	agent   *agent.Agent
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

// AddAgent starts an agent of cluster over rt with a fresh state directory;
// mutate adjusts its configuration.
func (c *Cluster) AddAgent(cluster string, rt runtime.Runtime, mutate ...func(*agent.Config)) *Agent {
	c.t.Helper()
	dir, err := os.MkdirTemp(c.dataDir, "agent-")
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := agent.Config{
		Cluster: cluster, Endpoint: c.CP.Endpoint(), Token: c.CP.JoinToken(), Runtime: rt,
		StateDir: dir, MetadataListen: "0.0.0.0:0", CleanupDelay: time.Hour,
		RetryMin: 20 * time.Millisecond, RetryMax: 500 * time.Millisecond,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	a := &Agent{c: c, cfg: cfg}
	a.Start()
	c.mu.Lock()
	c.agents = append(c.agents, a)
	c.mu.Unlock()
	return a
}

// Start (re)starts the agent on its state directory and waits until it has
// registered.
func (a *Agent) Start() {
	a.c.t.Helper()
	ag, err := agent.New(a.cfg)
	if err != nil {
		a.c.t.Fatalf("agent: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.agent, a.cancel, a.done, a.stopped = ag, cancel, make(chan error, 1), false
	go func() { a.done <- ag.Run(ctx) }()
	deadline := time.Now().Add(15 * time.Second)
	for ag.InstanceID() == "" {
		select {
		case err := <-a.done:
			a.c.t.Fatalf("agent stopped before registering: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			a.c.t.Fatal("agent did not register within 15 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stop stops the agent (its containers keep running, as with a real agent).
func (a *Agent) Stop() {
	if a.stopped {
		return
	}
	a.stopped = true
	a.cancel()
	if err := <-a.done; err != nil {
		a.c.t.Errorf("agent stopped with: %v", err)
	}
}

// InstanceID is the agent's container instance id.
func (a *Agent) InstanceID() string { return a.agent.InstanceID() }

// InstanceARN is the agent's container instance ARN.
func (a *Agent) InstanceARN() string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:container-instance/%s/%s", a.c.CP.Region(), a.c.CP.Account(), a.cfg.Cluster, a.InstanceID())
}

// StateDir is the agent's state directory.
func (a *Agent) StateDir() string { return filepath.Clean(a.cfg.StateDir) }

// WaitHealthy polls a control plane's health endpoint until it answers 200.
func WaitHealthy(t testing.TB, endpoint string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(endpoint + "/_berth/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("control plane at %s did not become healthy: %v", endpoint, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
