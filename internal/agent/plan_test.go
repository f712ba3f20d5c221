package agent

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/runtime"
	"github.com/berthdev/berth/internal/runtime/fake"
)

var testEnv = planEnv{
	agentID:        "agent-1",
	instanceID:     "i-1",
	metadataBridge: "berth-agent.internal:51679",
	metadataHost:   "127.0.0.1:51679",
	metadataAlias:  "berth-agent.internal",
	stopTimeout:    30 * time.Second,
	pauseImage:     "berth-pause:1",
	tokens:         map[string]string{"app": "tok-app"},
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// TestPlanContainerSpec maps container definitions to engine specs.
func TestPlanContainerSpec(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   ecstypes.NetworkMode
		edit   func(*ecstypes.ContainerDefinition)
		vols   []ecstypes.Volume
		over   *ecstypes.TaskOverride
		check  func(t *testing.T, s runtime.ContainerSpec, cp containerPlan)
		reason string // an unsupported feature's message
	}{
		{
			name: "defaults",
			check: func(t *testing.T, s runtime.ContainerSpec, cp containerPlan) {
				if s.CPUShares != 2 || s.MemoryLimit != 128<<20 || s.NetworkMode != "bridge" || s.Image != "app:1" {
					t.Errorf("spec = %+v", s)
				}
				if s.Name != "berth-web-3-app-"+taskIDOf(testTaskArn) {
					t.Errorf("name = %q", s.Name)
				}
				want := map[string]string{
					"com.amazonaws.ecs.cluster":                 "default",
					"com.amazonaws.ecs.task-arn":                testTaskArn,
					"com.amazonaws.ecs.container-name":          "app",
					"com.amazonaws.ecs.task-definition-family":  "web",
					"com.amazonaws.ecs.task-definition-version": "3",
					"dev.berth.agent-id":                        "agent-1",
					"dev.berth.container-instance":              "i-1",
				}
				if !maps.Equal(s.Labels, want) {
					t.Errorf("labels = %v", s.Labels)
				}
				env := envMap(s.Env)
				if env["ECS_CONTAINER_METADATA_URI_V4"] != "http://berth-agent.internal:51679/v4/tok-app" ||
					env["ECS_CONTAINER_METADATA_URI"] != "http://berth-agent.internal:51679/v3/tok-app" ||
					env["ECS_AGENT_URI"] != "" ||
					env["AWS_EXECUTION_ENV"] != "AWS_ECS_EC2" {
					t.Errorf("env = %v", env)
				}
				if !slices.Contains(s.ExtraHosts, "berth-agent.internal:host-gateway") {
					t.Errorf("extra hosts = %v", s.ExtraHosts)
				}
				if !cp.essential || cp.stopTimeout != 30*time.Second || s.Healthcheck != nil || s.LogDriver != "" {
					t.Errorf("plan = %+v", cp)
				}
			},
		},
		{
			name: "resources and security",
			edit: func(c *ecstypes.ContainerDefinition) {
				c.Cpu = 512
				c.Memory = nil
				c.MemoryReservation = new(int32(64))
				c.Ulimits = []ecstypes.Ulimit{{Name: ecstypes.UlimitNameNofile, SoftLimit: 1024, HardLimit: 4096}}
				c.LinuxParameters = &ecstypes.LinuxParameters{InitProcessEnabled: new(true), Capabilities: &ecstypes.KernelCapabilities{Add: []string{"NET_ADMIN"}, Drop: []string{"MKNOD"}}}
				c.ReadonlyRootFilesystem = new(true)
				c.Privileged = new(true)
				c.User = "1000:1000"
				c.WorkingDirectory = "/srv"
				c.Hostname = "web"
				c.SystemControls = []ecstypes.SystemControl{{Namespace: "net.core.somaxconn", Value: "1024"}}
				c.ExtraHosts = []ecstypes.HostEntry{{Hostname: "db", IpAddress: "10.0.0.5"}}
				c.DnsServers = []string{"10.0.0.2"}
				c.DnsSearchDomains = []string{"corp.example"}
				c.DockerLabels = map[string]string{"team": "web", "com.amazonaws.ecs.cluster": "spoofed"}
				c.EntryPoint = []string{"/app"}
				c.Command = []string{"serve"}
				c.StopTimeout = new(int32(12))
			},
			check: func(t *testing.T, s runtime.ContainerSpec, cp containerPlan) {
				if s.CPUShares != 512 || s.MemoryLimit != 0 || s.MemoryReservation != 64<<20 {
					t.Errorf("resources = %d %d %d", s.CPUShares, s.MemoryLimit, s.MemoryReservation)
				}
				if !slices.Equal(s.Ulimits, []runtime.Ulimit{{Name: "nofile", Soft: 1024, Hard: 4096}}) {
					t.Errorf("ulimits = %v", s.Ulimits)
				}
				if !s.Init || !s.ReadonlyRootfs || !s.Privileged || s.User != "1000:1000" || s.WorkingDir != "/srv" || s.Hostname != "web" {
					t.Errorf("spec = %+v", s)
				}
				if !slices.Equal(s.CapAdd, []string{"NET_ADMIN"}) || !slices.Equal(s.CapDrop, []string{"MKNOD"}) {
					t.Errorf("caps = %v %v", s.CapAdd, s.CapDrop)
				}
				if s.Sysctls["net.core.somaxconn"] != "1024" {
					t.Errorf("sysctls = %v", s.Sysctls)
				}
				if !slices.Equal(s.ExtraHosts, []string{"db:10.0.0.5", "berth-agent.internal:host-gateway"}) {
					t.Errorf("extra hosts = %v", s.ExtraHosts)
				}
				if !slices.Equal(s.DNSServers, []string{"10.0.0.2"}) || !slices.Equal(s.DNSSearch, []string{"corp.example"}) {
					t.Errorf("dns = %v %v", s.DNSServers, s.DNSSearch)
				}
				if s.Labels["team"] != "web" || s.Labels["com.amazonaws.ecs.cluster"] != "default" {
					t.Errorf("labels = %v", s.Labels)
				}
				if !slices.Equal(s.Entrypoint, []string{"/app"}) || !slices.Equal(s.Cmd, []string{"serve"}) {
					t.Errorf("command = %v %v", s.Entrypoint, s.Cmd)
				}
				if cp.stopTimeout != 12*time.Second {
					t.Errorf("stop timeout = %v", cp.stopTimeout)
				}
			},
		},
		{
			name: "overrides",
			edit: func(c *ecstypes.ContainerDefinition) {
				c.Command = []string{"serve"}
				c.Environment = []ecstypes.KeyValuePair{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}}
			},
			over: &ecstypes.TaskOverride{ContainerOverrides: []ecstypes.ContainerOverride{{
				Name:              "app",
				Command:           []string{"exit", "3"},
				Environment:       []ecstypes.KeyValuePair{{Name: "B", Value: "two"}, {Name: "C", Value: "3"}},
				Cpu:               new(int32(256)),
				Memory:            new(int32(512)),
				MemoryReservation: new(int32(256)),
			}}},
			check: func(t *testing.T, s runtime.ContainerSpec, cp containerPlan) {
				if !slices.Equal(s.Cmd, []string{"exit", "3"}) {
					t.Errorf("cmd = %v", s.Cmd)
				}
				if !slices.Equal(s.Env[:3], []string{"A=1", "B=two", "C=3"}) {
					t.Errorf("env = %v", s.Env)
				}
				if s.CPUShares != 256 || s.MemoryLimit != 512<<20 || s.MemoryReservation != 256<<20 {
					t.Errorf("resources = %d %d %d", s.CPUShares, s.MemoryLimit, s.MemoryReservation)
				}
			},
		},
		{
			name: "health check and logs",
			edit: func(c *ecstypes.ContainerDefinition) {
				c.HealthCheck = &ecstypes.HealthCheck{Command: []string{"CMD-SHELL", "true"}, Interval: new(int32(10)), StartPeriod: new(int32(3))}
				c.LogConfiguration = &ecstypes.LogConfiguration{LogDriver: ecstypes.LogDriverJsonFile, Options: map[string]string{"max-size": "10m"}}
			},
			check: func(t *testing.T, s runtime.ContainerSpec, cp containerPlan) {
				want := runtime.Healthcheck{Test: []string{"CMD-SHELL", "true"}, Interval: 10 * time.Second, Timeout: 5 * time.Second, StartPeriod: 3 * time.Second, Retries: 3}
				if s.Healthcheck == nil || !slices.Equal(s.Healthcheck.Test, want.Test) || s.Healthcheck.Interval != want.Interval ||
					s.Healthcheck.Timeout != want.Timeout || s.Healthcheck.StartPeriod != want.StartPeriod || s.Healthcheck.Retries != want.Retries {
					t.Errorf("health check = %+v", s.Healthcheck)
				}
				if s.LogDriver != "json-file" || s.LogOptions["max-size"] != "10m" {
					t.Errorf("log = %q %v", s.LogDriver, s.LogOptions)
				}
			},
		},
		{
			name: "log driver none",
			edit: func(c *ecstypes.ContainerDefinition) {
				c.LogConfiguration = &ecstypes.LogConfiguration{LogDriver: "none"}
			},
			check: func(t *testing.T, s runtime.ContainerSpec, cp containerPlan) {
				if s.LogDriver != "none" {
					t.Errorf("log driver = %q", s.LogDriver)
				}
			},
		},
		{
			name: "volumes",
			vols: []ecstypes.Volume{
				{Name: "host", Host: &ecstypes.HostVolumeProperties{SourcePath: "/srv/data"}},
				{Name: "scratch"},
				{Name: "cache", DockerVolumeConfiguration: &ecstypes.DockerVolumeConfiguration{Scope: ecstypes.ScopeTask, Driver: "local"}},
				{Name: "shared", DockerVolumeConfiguration: &ecstypes.DockerVolumeConfiguration{Scope: ecstypes.ScopeShared, Autoprovision: new(true)}},
			},
			edit: func(c *ecstypes.ContainerDefinition) {
				c.MountPoints = []ecstypes.MountPoint{
					{SourceVolume: "host", ContainerPath: "/data", ReadOnly: new(true)},
					{SourceVolume: "scratch", ContainerPath: "/scratch"},
					{SourceVolume: "cache", ContainerPath: "/cache"},
					{SourceVolume: "shared", ContainerPath: "/shared"},
				}
			},
			check: func(t *testing.T, s runtime.ContainerSpec, cp containerPlan) {
				id := taskIDOf(testTaskArn)
				want := []runtime.Mount{
					{Type: "bind", Source: "/srv/data", Target: "/data", ReadOnly: true},
					{Type: "volume", Source: "berth-" + id + "-scratch", Target: "/scratch"},
					{Type: "volume", Source: "berth-" + id + "-cache", Target: "/cache"},
					{Type: "volume", Source: "shared", Target: "/shared"},
				}
				if !slices.Equal(s.Mounts, want) {
					t.Errorf("mounts = %+v", s.Mounts)
				}
			},
		},
		{
			name: "bridge ports, dynamic and fixed",
			edit: func(c *ecstypes.ContainerDefinition) {
				c.PortMappings = []ecstypes.PortMapping{
					{ContainerPort: new(int32(8080))},
					{ContainerPort: new(int32(9090)), HostPort: new(int32(0)), Protocol: ecstypes.TransportProtocolUdp},
					{ContainerPort: new(int32(80)), HostPort: new(int32(8000))},
				}
			},
			check: func(t *testing.T, s runtime.ContainerSpec, cp containerPlan) {
				want := []runtime.PortBinding{{ContainerPort: 8080, Protocol: "tcp", HostIP: "0.0.0.0"}, {ContainerPort: 9090, Protocol: "udp", HostIP: "0.0.0.0"}, {ContainerPort: 80, Protocol: "tcp", HostPort: 8000, HostIP: "0.0.0.0"}}
				if !slices.Equal(s.PortBindings, want) {
					t.Errorf("ports = %+v", s.PortBindings)
				}
			},
		},
		{
			name: "host mode",
			mode: ecstypes.NetworkModeHost,
			edit: func(c *ecstypes.ContainerDefinition) {
				c.PortMappings = []ecstypes.PortMapping{{ContainerPort: new(int32(8080))}}
			},
			check: func(t *testing.T, s runtime.ContainerSpec, cp containerPlan) {
				if s.NetworkMode != "host" || len(s.PortBindings) != 0 || len(s.ExtraHosts) != 0 {
					t.Errorf("spec = %+v", s)
				}
				if got := envMap(s.Env)["ECS_CONTAINER_METADATA_URI_V4"]; got != "http://127.0.0.1:51679/v4/tok-app" {
					t.Errorf("metadata URI = %q", got)
				}
			},
		},
		{name: "awslogs", edit: func(c *ecstypes.ContainerDefinition) {
			c.LogConfiguration = &ecstypes.LogConfiguration{LogDriver: ecstypes.LogDriverAwslogs}
		}, reason: `Berth does not support the awslogs log driver yet (container "app"); supported log drivers: json-file, none`},
		{name: "efs", vols: []ecstypes.Volume{{Name: "efs", EfsVolumeConfiguration: &ecstypes.EFSVolumeConfiguration{FileSystemId: "fs-1"}}}, reason: `Berth does not support EFS volumes yet (volume "efs")`},
		{name: "fsx", vols: []ecstypes.Volume{{Name: "fsx", FsxWindowsFileServerVolumeConfiguration: &ecstypes.FSxWindowsFileServerVolumeConfiguration{}}}, reason: `Berth does not support FSx volumes (volume "fsx")`},
		{name: "secrets", edit: func(c *ecstypes.ContainerDefinition) {
			c.Secrets = []ecstypes.Secret{{Name: "PW", ValueFrom: "arn:aws:ssm:::parameter/pw"}}
		}, reason: `Berth does not support secrets yet (container "app")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			def := container("app")
			if tc.edit != nil {
				tc.edit(&def)
			}
			dt := agentapi.DesiredTask{
				TaskArn: testTaskArn, Cluster: "default", DesiredStatus: statusRunning, Overrides: tc.over,
				Definition: ecstypes.TaskDefinition{Family: "web", Revision: 3, NetworkMode: tc.mode, Volumes: tc.vols, ContainerDefinitions: []ecstypes.ContainerDefinition{def}},
			}
			p, err := buildPlan(&dt, testEnv)
			if tc.reason != "" {
				var u *unsupportedError
				if !errors.As(err, &u) || err.Error() != tc.reason {
					t.Fatalf("err = %v, want unsupported %q", err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p.containers[0].spec, p.containers[0])
		})
	}
}

const testTaskArn = "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef"

func TestPlanStartOrder(t *testing.T) {
	defs := []ecstypes.ContainerDefinition{
		container("web", dependsOn("app", ecstypes.ContainerConditionHealthy)),
		container("app", dependsOn("migrate", ecstypes.ContainerConditionSuccess), func(c *ecstypes.ContainerDefinition) {
			c.VolumesFrom = []ecstypes.VolumeFrom{{SourceContainer: "data", ReadOnly: new(true)}}
		}),
		container("migrate"),
		container("data"),
	}
	dt := agentapi.DesiredTask{TaskArn: testTaskArn, Definition: ecstypes.TaskDefinition{Family: "f", ContainerDefinitions: defs}}
	p, err := buildPlan(&dt, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range p.startOrder {
		names = append(names, p.containers[i].def.Name)
	}
	if want := []string{"migrate", "data", "app", "web"}; !slices.Equal(names, want) {
		t.Errorf("start order = %v, want %v", names, want)
	}

	defs[2].DependsOn = []ecstypes.ContainerDependency{{ContainerName: "web", Condition: ecstypes.ContainerConditionStart}}
	if _, err := buildPlan(&dt, testEnv); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: err = %v", err)
	}
}

func TestPlanTaskLimits(t *testing.T) {
	for _, tc := range []struct {
		cpu, mem     string
		over         *ecstypes.TaskOverride
		wantCPU, mib int
	}{
		{"256", "512", nil, 256, 512},
		// The control plane stores "1 vCPU" and "2 GB" as "1024" and "2048".
		{"1024", "2048", nil, 1024, 2048},
		{"256", "512", &ecstypes.TaskOverride{Cpu: "1024", Memory: "4096"}, 1024, 4096},
		{"", "", nil, 0, 0},
	} {
		dt := agentapi.DesiredTask{TaskArn: testTaskArn, Overrides: tc.over, Definition: ecstypes.TaskDefinition{Family: "f", Cpu: tc.cpu, Memory: tc.mem, ContainerDefinitions: []ecstypes.ContainerDefinition{container("app")}}}
		p, err := buildPlan(&dt, testEnv)
		if err != nil {
			t.Fatal(err)
		}
		if p.cpuUnits != tc.wantCPU || p.memoryMiB != tc.mib {
			t.Errorf("cpu %q mem %q: got %d %d, want %d %d", tc.cpu, tc.mem, p.cpuUnits, p.memoryMiB, tc.wantCPU, tc.mib)
		}
	}
}

// TestOverridesReachTheEngine runs a task with overrides and checks the
// spec the engine was given.
func TestOverridesReachTheEngine(t *testing.T) {
	cp := newFakeControlPlane(t)
	rt := newFake()
	startAgent(t, cp, rt, t.TempDir())
	dt := desiredTask(container("app", func(c *ecstypes.ContainerDefinition) {
		c.Command = []string{"serve"}
		c.Environment = []ecstypes.KeyValuePair{{Name: "MODE", Value: "prod"}}
	}))
	dt.Overrides = &ecstypes.TaskOverride{ContainerOverrides: []ecstypes.ContainerOverride{{
		Name: "app", Command: []string{"exit", "0"}, Environment: []ecstypes.KeyValuePair{{Name: "MODE", Value: "test"}},
		Cpu: new(int32(100)), Memory: new(int32(300)), MemoryReservation: new(int32(200)),
	}}}
	cp.addTask(dt)
	cp.waitStatus(dt.TaskArn, statusRunning)
	creates := rt.CallsTo(fake.MethodCreate)
	if len(creates) != 1 {
		t.Fatalf("%d creates", len(creates))
	}
	s := creates[0].Spec
	if !slices.Equal(s.Cmd, []string{"exit", "0"}) || envMap(s.Env)["MODE"] != "test" || s.CPUShares != 100 || s.MemoryLimit != 300<<20 || s.MemoryReservation != 200<<20 {
		t.Errorf("spec = cmd %v env %v cpu %d mem %d res %d", s.Cmd, s.Env, s.CPUShares, s.MemoryLimit, s.MemoryReservation)
	}
}
