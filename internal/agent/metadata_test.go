package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/runtime"
)

func getJSON(t *testing.T, url string) (int, map[string]any, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(body, &m)
	return resp.StatusCode, m, body
}

func hasKeys(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: field %q missing in %v", what, k, m)
		}
	}
}

func TestMetadataEndpoint(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	startAgent(t, cp, rt, t.TempDir(), func(c *Config) { c.AvailabilityZone = "local-1a" })
	dt := desiredTask(
		container("app", withHealthCheck, func(c *ecstypes.ContainerDefinition) {
			c.Cpu = 256
			c.PortMappings = []ecstypes.PortMapping{{ContainerPort: new(int32(8080))}}
			c.DockerLabels = map[string]string{"team": "web"}
		}),
		container("db", nonEssential),
	)
	dt.Definition.Cpu, dt.Definition.Memory = "512", "1024"
	dt.Group = "service:web"
	cp.addTask(dt)
	cp.waitStatus(dt.TaskArn, statusRunning)
	appID := containerID(t, rt, dt, "app")
	dbID := containerID(t, rt, dt, "db")
	rt.SetHealth(appID, runtime.HealthHealthy)
	rt.SetStats(appID, json.RawMessage(`{"read":"2026-01-01T00:00:00Z","memory_stats":{"usage":42}}`))
	cp.waitTask(dt.TaskArn, "healthy", func(tr agentapi.TaskReport) bool { return tr.HealthStatus == "HEALTHY" })

	spec, _ := rt.Spec(appID)
	uri := envMap(spec.Env)["ECS_CONTAINER_METADATA_URI_V4"]
	if !strings.HasPrefix(uri, "http://127.0.0.1:") {
		t.Fatalf("metadata URI = %q", uri)
	}

	// ${ECS_CONTAINER_METADATA_URI_V4}: this container.
	code, c, _ := getJSON(t, uri)
	if code != 200 {
		t.Fatalf("GET / = %d", code)
	}
	hasKeys(t, "container", c, "DockerId", "Name", "DockerName", "Image", "ImageID", "Ports", "Labels", "DesiredStatus", "KnownStatus", "Limits", "CreatedAt", "StartedAt", "Type", "Health", "Networks")
	if c["DockerId"] != appID || c["Name"] != "app" || c["KnownStatus"] != "RUNNING" || c["DesiredStatus"] != "RUNNING" || c["Type"] != "NORMAL" || c["Image"] != "app:1" {
		t.Errorf("container = %v", c)
	}
	if l := c["Limits"].(map[string]any); l["CPU"] != 256.0 || l["Memory"] != 128.0 {
		t.Errorf("limits = %v", l)
	}
	if h := c["Health"].(map[string]any); h["status"] != "HEALTHY" {
		t.Errorf("health = %v", h)
	}
	if labels := c["Labels"].(map[string]any); labels["team"] != "web" || labels["com.amazonaws.ecs.task-arn"] != dt.TaskArn {
		t.Errorf("labels = %v", labels)
	}
	ports := c["Ports"].([]any)[0].(map[string]any)
	if ports["ContainerPort"] != 8080.0 || ports["HostPort"] != 32768.0 || ports["Protocol"] != "tcp" || ports["HostIp"] != "0.0.0.0" {
		t.Errorf("ports = %v", ports)
	}
	nw := c["Networks"].([]any)[0].(map[string]any)
	if nw["NetworkMode"] != "bridge" || len(nw["IPv4Addresses"].([]any)) != 1 {
		t.Errorf("networks = %v", nw)
	}

	// /task: the task and both containers.
	code, task, _ := getJSON(t, uri+"/task")
	if code != 200 {
		t.Fatalf("GET /task = %d", code)
	}
	hasKeys(t, "task", task, "Cluster", "TaskARN", "Family", "Revision", "DesiredStatus", "KnownStatus", "Containers", "Limits", "PullStartedAt", "PullStoppedAt", "AvailabilityZone", "LaunchType", "ServiceName")
	if task["TaskARN"] != dt.TaskArn || task["Family"] != "web" || task["Revision"] != "3" || task["KnownStatus"] != "RUNNING" ||
		task["LaunchType"] != "EC2" || task["Cluster"] != "default" || task["AvailabilityZone"] != "local-1a" || task["ServiceName"] != "web" {
		t.Errorf("task = %v", task)
	}
	if l := task["Limits"].(map[string]any); l["CPU"] != 0.5 || l["Memory"] != 1024.0 {
		t.Errorf("task limits = %v", l)
	}
	var names []string
	for _, c := range task["Containers"].([]any) {
		names = append(names, c.(map[string]any)["Name"].(string))
	}
	if !slices.Equal(names, []string{"app", "db"}) {
		t.Errorf("containers = %v", names)
	}

	// /stats: the engine's document as is; /task/stats: by Docker id.
	code, _, body := getJSON(t, uri+"/stats")
	if code != 200 || !strings.Contains(string(body), `"usage":42`) {
		t.Errorf("GET /stats = %d %s", code, body)
	}
	code, stats, _ := getJSON(t, uri+"/task/stats")
	if code != 200 || stats[appID] == nil || stats[dbID] == nil || len(stats) != 2 {
		t.Errorf("GET /task/stats = %d %v", code, stats)
	}

	// The v3 URI answers the same.
	code, v3, _ := getJSON(t, envMap(spec.Env)["ECS_CONTAINER_METADATA_URI"])
	if code != 200 || v3["DockerId"] != appID {
		t.Errorf("v3 = %d %v", code, v3)
	}

	// Unknown tokens and paths are 404.
	base := uri[:strings.LastIndexByte(uri, '/')]
	for _, u := range []string{base + "/nosuchtoken", base + "/nosuchtoken/task", base + "/nosuchtoken/stats", base + "/nosuchtoken/task/stats", base[:strings.LastIndexByte(base, '/')] + "/v9/x"} {
		if code, _, _ := getJSON(t, u); code != 404 {
			t.Errorf("GET %s = %d, want 404", u, code)
		}
	}

	// After the task stops, exit codes show; after cleanup the token is gone.
	cp.stopTask(dt.TaskArn, "UserInitiated", "")
	cp.waitStatus(dt.TaskArn, statusStopped)
	_, c, _ = getJSON(t, uri)
	if c["KnownStatus"] != "STOPPED" || c["ExitCode"] != 0.0 || c["DesiredStatus"] != "STOPPED" {
		t.Errorf("stopped container = %v", c)
	}
}

// TestMetadataAwsvpc checks the awsvpc network block.
func TestMetadataAwsvpc(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := &loadingRuntime{Runtime: newFake()}
	startAgent(t, cp, rt, t.TempDir())
	dt := desiredTask(container("app", func(c *ecstypes.ContainerDefinition) {
		c.PortMappings = []ecstypes.PortMapping{{ContainerPort: new(int32(8080))}}
	}))
	dt.Definition.NetworkMode = ecstypes.NetworkModeAwsvpc
	cp.addTask(dt)
	tr := cp.waitStatus(dt.TaskArn, statusRunning)
	ip := tr.Containers[0].NetworkInterfaces[0].PrivateIpv4Address
	spec, _ := rt.Spec(containerID(t, rt.Runtime, dt, "app"))
	_, c, _ := getJSON(t, envMap(spec.Env)["ECS_CONTAINER_METADATA_URI_V4"])
	nw := c["Networks"].([]any)[0].(map[string]any)
	if nw["NetworkMode"] != "awsvpc" || nw["IPv4Addresses"].([]any)[0] != ip || nw["AttachmentIndex"] != 0.0 || nw["PrivateDNSName"] == nil {
		t.Errorf("networks = %v", nw)
	}
	ports := c["Ports"].([]any)[0].(map[string]any)
	if ports["ContainerPort"] != 8080.0 || ports["HostPort"] != 8080.0 {
		t.Errorf("ports = %v", ports)
	}
}
