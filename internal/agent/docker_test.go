package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/runtime/docker"
	"github.com/berthdev/berth/internal/testimage"
)

// TestOnDocker runs tasks on the real Docker Engine with the test image:
// bridge with a dynamic port, the metadata endpoint reached from inside
// bridge and awsvpc containers through the host-gateway alias, and the
// agent's own pause image. It is skipped when no engine is reachable
// (and fails then if CI is set).
func TestOnDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the Docker test in -short mode")
	}
	image := testimage.Require(t)
	rt, err := docker.New(docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	cp := newFakeControlPlane(t)
	ta := startAgent(t, cp, rt, t.TempDir(), func(c *Config) {
		c.MetadataListen = "0.0.0.0:0" // reachable from the bridge
		c.MetadataHost = ""            // containers use the host-gateway alias
		c.ResyncInterval = 2 * time.Second
		c.StopTimeout = 2 * time.Second
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		list, _ := rt.List(ctx, map[string]string{labelAgentID: ta.AgentID()})
		for _, c := range list {
			rt.Remove(ctx, c.ID)
		}
	})
	logs := func(t *testing.T, dt agentapi.DesiredTask, name string) string {
		t.Helper()
		r, err := rt.Logs(context.Background(), dockerName(&dt, name), false)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		b, _ := io.ReadAll(r)
		return string(b)
	}
	app := func(name string, cmd ...string) ecstypes.ContainerDefinition {
		return ecstypes.ContainerDefinition{Name: name, Image: image, Command: cmd, Memory: new(int32(64))}
	}

	t.Run("bridge serve with a dynamic port", func(t *testing.T) {
		c := app("web", "serve", "-port", "8080", "-name", "docker-test")
		c.PortMappings = []ecstypes.PortMapping{{ContainerPort: new(int32(8080))}}
		c.HealthCheck = &ecstypes.HealthCheck{Command: []string{"CMD", "/app", "check", "http://127.0.0.1:8080/"}, Interval: new(int32(1)), Retries: new(int32(30))}
		dt := desiredTask(c)
		cp.addTask(dt)
		tr := cp.waitTask(dt.TaskArn, "healthy and running", func(tr agentapi.TaskReport) bool {
			return tr.LastStatus == statusRunning && tr.HealthStatus == "HEALTHY"
		})
		b := tr.Containers[0].NetworkBindings
		if len(b) == 0 || *b[0].ContainerPort != 8080 || *b[0].HostPort == 0 {
			t.Fatalf("bindings = %+v", b)
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", *b[0].HostPort))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte("docker-test")) {
			t.Errorf("GET = %d %s", resp.StatusCode, body)
		}
		cp.stopTask(dt.TaskArn, "UserInitiated", "")
		tr = cp.waitStatus(dt.TaskArn, statusStopped)
		if tr.Containers[0].ExitCode == nil {
			t.Errorf("no exit code after stop: %+v", tr.Containers[0])
		}
	})

	for _, mode := range []ecstypes.NetworkMode{ecstypes.NetworkModeBridge, ecstypes.NetworkModeAwsvpc, ecstypes.NetworkModeHost} {
		t.Run("metadata from a "+string(mode)+" container", func(t *testing.T) {
			dt := desiredTask(app("meta", "metadata"))
			dt.Definition.NetworkMode = mode
			cp.addTask(dt)
			tr := cp.waitStatus(dt.TaskArn, statusStopped)
			out := logs(t, dt, "meta")
			if tr.StopCode != "EssentialContainerExited" || tr.Containers[0].ExitCode == nil || *tr.Containers[0].ExitCode != 0 {
				t.Fatalf("task = %s %q exit %v; output:\n%s", tr.StopCode, tr.StoppedReason, tr.Containers[0].ExitCode, out)
			}
			lines := strings.SplitN(strings.TrimSpace(out), "\n", 2)
			var container, task map[string]any
			if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &container) != nil || json.Unmarshal([]byte(lines[1]), &task) != nil {
				t.Fatalf("output:\n%s", out)
			}
			if container["Name"] != "meta" || task["TaskARN"] != dt.TaskArn {
				t.Errorf("container %v task %v", container["Name"], task["TaskARN"])
			}
			if mode == ecstypes.NetworkModeAwsvpc {
				if len(tr.Attachments) != 1 || tr.Containers[0].NetworkInterfaces == nil {
					t.Errorf("awsvpc task without its interface: %+v", tr)
				}
			}
		})
	}
}
