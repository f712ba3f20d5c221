package agent

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/runtime"
	"github.com/berthdev/berth/internal/runtime/fake"
)

func TestRegistration(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := fake.New(fake.Options{Host: runtime.HostInfo{CPUs: 2, MemoryBytes: 4 << 30, EngineVersion: "27.0.1", OS: "linux", Arch: "arm64", Hostname: "box"}})
	ta := startAgent(t, cp, rt, t.TempDir(), func(c *Config) {
		c.ReservedMemoryMiB = 256
		c.ReservedPorts = []int{8443, 22}
		c.Attributes = map[string]string{"stack": "prod", "gpu": ""}
	})
	cp.waitFor("registration", func() bool { return len(cp.registers) == 1 })
	req := cp.registers[0]
	if req.Cluster != "default" || req.InstanceID != "" || req.Hostname != "box" || req.AgentVersion != Version || req.DockerVersion != "27.0.1" {
		t.Errorf("request = %+v", req)
	}
	if req.CPU != 2048 || req.MemoryMiB != 4096-256 {
		t.Errorf("resources = %d CPU, %d MiB", req.CPU, req.MemoryMiB)
	}
	want := []int{22, 2375, 2376, 8443, 51678, 51679, ta.metadataPort}
	slices.Sort(want)
	want = slices.Compact(want)
	if !slices.Equal(req.ReservedPorts, want) {
		t.Errorf("reserved ports = %v, want %v", req.ReservedPorts, want)
	}
	for k, v := range map[string]string{
		"ecs.os-type":                                           "linux",
		"ecs.cpu-architecture":                                  "arm64",
		"ecs.capability.container-health-check":                 "",
		"ecs.capability.container-ordering":                     "",
		"com.amazonaws.ecs.capability.docker-remote-api.1.17":   "",
		"com.amazonaws.ecs.capability.docker-remote-api.1.41":   "",
		"com.amazonaws.ecs.capability.logging-driver.json-file": "",
		"com.amazonaws.ecs.capability.logging-driver.none":      "",
		"stack": "prod",
		"gpu":   "",
		// The fake control plane is on loopback: the route to it leaves from 127.0.0.1.
		HostAddressAttribute: "127.0.0.1",
	} {
		if got, ok := req.Attributes[k]; !ok || got != v {
			t.Errorf("attribute %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	for _, k := range []string{"com.amazonaws.ecs.capability.task-iam-role", "com.amazonaws.ecs.capability.logging-driver.awslogs", "ecs.capability.task-eni"} {
		if _, ok := req.Attributes[k]; ok {
			t.Errorf("attribute %s advertised", k)
		}
	}
}

func TestTaskENICapabilityNeedsThePauseImage(t *testing.T) {
	cp := newFakeControlPlane(t)
	startAgent(t, cp, &loadingRuntime{Runtime: newFake()}, t.TempDir())
	cp.waitFor("registration", func() bool { return len(cp.registers) == 1 })
	if _, ok := cp.registers[0].Attributes["ecs.capability.task-eni"]; !ok {
		t.Errorf("task-eni not advertised by an agent that can load its pause image")
	}
}

func TestHeartbeatWhenIdle(t *testing.T) {
	cp := newFakeControlPlane(t)
	cp.heartbeat = 3600
	startAgent(t, cp, newFake(), t.TempDir(), func(c *Config) { c.HeartbeatInterval = 5 * time.Millisecond })
	cp.waitFor("three heartbeats", func() bool {
		n := 0
		for _, r := range cp.reports {
			if len(r.Tasks) == 0 {
				n++
			}
		}
		return n >= 3
	})
}

func TestConfigValidate(t *testing.T) {
	var c Config
	if err := c.Validate(); err == nil {
		t.Fatal("empty config accepted")
	}
	c = Config{Cluster: "c", Endpoint: "http://x", Runtime: newFake(), StateDir: t.TempDir(), Attributes: map[string]string{"ecs.os-type": "windows"}}
	if err := c.Validate(); err == nil {
		t.Error("custom attribute with a built-in name accepted")
	}
	c.Attributes = nil
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.MetadataListen != DefaultMetadataListen || c.CleanupDelay != DefaultCleanupDelay || c.StopTimeout != DefaultStopTimeout ||
		c.PauseImage != DefaultPauseImage || c.PollWait != agentapi.MaxPollWait*time.Second || c.Logger == nil || c.Clock == nil {
		t.Errorf("defaults = %+v", c)
	}
}

// TestDeregistered stops every task when the instance becomes INACTIVE.
func TestDeregistered(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	ta := startAgent(t, cp, rt, t.TempDir())
	dt := desiredTask(container("app"))
	cp.addTask(dt)
	cp.waitStatus(dt.TaskArn, statusRunning)
	cp.set(func(cp *fakeControlPlane) { cp.status = "INACTIVE"; cp.revision++ })
	select {
	case err := <-ta.done:
		close(ta.done)
		if !errors.Is(err, ErrDeregistered) {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(testDeadline):
		t.Fatal("agent did not stop")
	}
	if isRunning(rt, dt, "app") {
		t.Errorf("task still runs")
	}
	// The id is kept: deregistration is final, so a restarted agent is
	// refused instead of joining again as a new instance.
	if ta.InstanceID() == "" {
		t.Errorf("instance id forgotten")
	}
}

func TestReporterCoalescesAndBounds(t *testing.T) {
	r := newReporter(2)
	tr := func(arn string, seq uint64, status string) agentapi.TaskReport {
		return agentapi.TaskReport{TaskArn: arn, Seq: seq, LastStatus: status}
	}
	r.enqueue(tr("a", 1, statusPending))
	r.enqueue(tr("a", 2, statusRunning))
	if b := r.batch(10); len(b) != 1 || b[0].Seq != 2 {
		t.Fatalf("newest state does not win: %+v", b)
	}
	sent := r.batch(10)
	r.enqueue(tr("a", 3, statusStopping)) // while sent is in flight
	r.ack(sent)
	if b := r.batch(10); len(b) != 1 || b[0].Seq != 3 {
		t.Fatalf("a newer report was acknowledged by an older one: %+v", b)
	}
	r.enqueue(tr("b", 1, statusPending))
	r.enqueue(tr("c", 1, statusPending))
	if b := r.batch(10); len(b) != 2 || b[0].TaskArn != "b" || b[1].TaskArn != "c" || r.dropped != 1 {
		t.Fatalf("bound: %+v, dropped %d", b, r.dropped)
	}
	r.ack(r.batch(10))
	if r.size() != 0 {
		t.Fatalf("pending after ack: %d", r.size())
	}
	r.resendAll()
	if r.size() != 2 { // a's newest was evicted from pending but is resent; the bound holds
		t.Fatalf("resend: %d pending", r.size())
	}
}

// TestHostAddressOverride: --host-address replaces the address of the
// route to the control plane in the berth.host-address attribute.
func TestHostAddressOverride(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := fake.New(fake.Options{Host: runtime.HostInfo{CPUs: 1, MemoryBytes: 1 << 30, OS: "linux", Arch: "amd64"}})
	startAgent(t, cp, rt, t.TempDir(), func(c *Config) { c.HostAddress = "10.1.2.3" })
	cp.waitFor("registration", func() bool { return len(cp.registers) == 1 })
	if got := cp.registers[0].Attributes[HostAddressAttribute]; got != "10.1.2.3" {
		t.Fatalf("%s = %q, want the configured 10.1.2.3", HostAddressAttribute, got)
	}
}
