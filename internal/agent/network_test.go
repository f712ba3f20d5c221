package agent

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/runtime/fake"
)

func bindingsOf(c agentapi.ContainerReport) []string {
	var out []string
	for _, b := range c.NetworkBindings {
		out = append(out, b.BindIP+":"+itoa(*b.HostPort)+"->"+itoa(*b.ContainerPort)+"/"+string(b.Protocol))
	}
	return out
}

func itoa(v int32) string { return strconv.Itoa(int(v)) }

func TestNetworkBindings(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode ecstypes.NetworkMode
		want []string
	}{
		// The fake engine hands out dynamic host ports from 32768 on.
		{"bridge", ecstypes.NetworkModeBridge, []string{"0.0.0.0:32768->8080/tcp", "0.0.0.0:32769->9090/udp", "0.0.0.0:8000->80/tcp"}},
		{"host", ecstypes.NetworkModeHost, []string{"0.0.0.0:8080->8080/tcp", "0.0.0.0:9090->9090/udp", "0.0.0.0:80->80/tcp"}},
		{"none", ecstypes.NetworkModeNone, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := newFakeControlPlane(t)
			rt := newFake()
			startAgent(t, cp, rt, t.TempDir())
			ports := []ecstypes.PortMapping{
				{ContainerPort: new(int32(8080))},
				{ContainerPort: new(int32(9090)), HostPort: new(int32(0)), Protocol: ecstypes.TransportProtocolUdp},
				{ContainerPort: new(int32(80)), HostPort: new(int32(8000))},
			}
			if tc.mode == ecstypes.NetworkModeHost {
				ports[1].HostPort, ports[2].HostPort = nil, nil
			}
			if tc.mode == ecstypes.NetworkModeNone {
				ports = nil
			}
			dt := desiredTask(container("app", func(c *ecstypes.ContainerDefinition) { c.PortMappings = ports }))
			dt.Definition.NetworkMode = tc.mode
			cp.addTask(dt)
			tr := cp.waitStatus(dt.TaskArn, statusRunning)
			if got := bindingsOf(tr.Containers[0]); !slices.Equal(got, tc.want) {
				t.Errorf("bindings = %v, want %v", got, tc.want)
			}
		})
	}
}

// loadingRuntime is the fake with the optional ImageLoader capability.
type loadingRuntime struct {
	*fake.Runtime
	mu      sync.Mutex
	archive []byte
}

func (l *loadingRuntime) LoadImage(ctx context.Context, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.archive = b
	l.mu.Unlock()
	l.AddImage(DefaultPauseImage)
	return nil
}

func TestAwsvpcTask(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := &loadingRuntime{Runtime: newFake()}
	// The default metadata host: an alias that the pause container maps to
	// the engine's host-gateway.
	startAgent(t, cp, rt, t.TempDir(), func(c *Config) { c.MetadataHost = "" })
	dt := desiredTask(
		container("app", func(c *ecstypes.ContainerDefinition) {
			c.PortMappings = []ecstypes.PortMapping{{ContainerPort: new(int32(8080))}}
		}),
		container("sidecar"),
	)
	dt.Definition.NetworkMode = ecstypes.NetworkModeAwsvpc
	cp.addTask(dt)
	tr := cp.waitStatus(dt.TaskArn, statusRunning)

	// The agent loaded its own pause image, created the pause container on
	// the bridge, and joined the task's containers to it.
	rt.mu.Lock()
	archive := rt.archive
	rt.mu.Unlock()
	if !bytes.Contains(archive, []byte(`"RepoTags":["`+DefaultPauseImage+`"]`)) {
		t.Errorf("pause archive not loaded")
	}
	pause, err := rt.Inspect(context.Background(), pauseDockerName(dt.TaskArn))
	if err != nil {
		t.Fatal(err)
	}
	pauseSpec, _ := rt.Spec(pause.ID)
	if pauseSpec.NetworkMode != "bridge" || pauseSpec.Image != DefaultPauseImage || pauseSpec.Labels[labelContainerName] != pauseContainerName {
		t.Errorf("pause spec = %+v", pauseSpec)
	}
	if !slices.Equal(pauseSpec.ExtraHosts, []string{DefaultMetadataAlias + ":host-gateway"}) {
		t.Errorf("pause extra hosts = %v", pauseSpec.ExtraHosts)
	}
	for _, c := range rt.CallsTo(fake.MethodCreate) {
		if c.Target == pause.Name {
			continue
		}
		// Joined containers share the pause container's /etc/hosts; the
		// engine refuses extra hosts and ports for them.
		if c.Spec.NetworkMode != "container:"+pause.ID || len(c.Spec.PortBindings) != 0 || len(c.Spec.ExtraHosts) != 0 {
			t.Errorf("%s: network mode %q, ports %v, extra hosts %v", c.Target, c.Spec.NetworkMode, c.Spec.PortBindings, c.Spec.ExtraHosts)
		}
		if got := envMap(c.Spec.Env)["ECS_CONTAINER_METADATA_URI_V4"]; !strings.HasPrefix(got, "http://"+DefaultMetadataAlias+":") {
			t.Errorf("%s: metadata URI %q", c.Target, got)
		}
	}

	// The task reports an ENI attachment with the pause container's address.
	if len(tr.Attachments) != 1 {
		t.Fatalf("attachments = %+v", tr.Attachments)
	}
	att := tr.Attachments[0]
	details := map[string]string{}
	for _, kv := range att.Details {
		details[kv.Name] = kv.Value
	}
	if att.Type != "ElasticNetworkInterface" || att.Status != "ATTACHED" || details["privateIPv4Address"] != pause.IPAddress || pause.IPAddress == "" {
		t.Errorf("attachment = %+v (pause ip %q)", att, pause.IPAddress)
	}
	for _, k := range []string{"subnetId", "networkInterfaceId", "privateDnsName"} {
		if details[k] == "" {
			t.Errorf("attachment detail %s missing", k)
		}
	}
	for _, c := range tr.Containers {
		if len(c.NetworkInterfaces) != 1 || c.NetworkInterfaces[0].PrivateIpv4Address != pause.IPAddress || c.NetworkInterfaces[0].AttachmentId != att.Id {
			t.Errorf("%s interfaces = %+v", c.Name, c.NetworkInterfaces)
		}
	}

	// Stopping stops the app containers first, then the pause container.
	cp.stopTask(dt.TaskArn, "UserInitiated", "")
	tr = cp.waitStatus(dt.TaskArn, statusStopped)
	stops := rt.CallsTo(fake.MethodStop)
	if len(stops) != 3 || stops[2].Target != pause.ID {
		t.Errorf("stops = %+v", stops)
	}
	if tr.Attachments[0].Status != "DELETED" {
		t.Errorf("attachment status after stop = %q", tr.Attachments[0].Status)
	}
}

func TestAwsvpcWithoutPauseImageFailsClearly(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake() // cannot load images, pause image absent
	startAgent(t, cp, rt, t.TempDir())
	dt := desiredTask(container("app"))
	dt.Definition.NetworkMode = ecstypes.NetworkModeAwsvpc
	cp.addTask(dt)
	tr := cp.waitStatus(dt.TaskArn, statusStopped)
	if tr.StopCode != "TaskFailedToStart" || !strings.Contains(tr.StoppedReason, "cannot load images") {
		t.Errorf("stop = %q %q", tr.StopCode, tr.StoppedReason)
	}
}
