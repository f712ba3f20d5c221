package docker

import (
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

func TestCreateOptions(t *testing.T) {
	spec := runtime.ContainerSpec{
		Name:              "web",
		Image:             "app:1",
		Entrypoint:        []string{"/app"},
		Cmd:               []string{"serve"},
		Env:               []string{"A=1"},
		WorkingDir:        "/w",
		User:              "1000",
		Labels:            map[string]string{"k": "v"},
		Hostname:          "h",
		CPUShares:         512,
		MemoryLimit:       128 << 20,
		MemoryReservation: 64 << 20,
		Ulimits:           []runtime.Ulimit{{Name: "nofile", Soft: 1, Hard: 2}},
		ReadonlyRootfs:    true,
		Init:              true,
		Privileged:        true,
		CapAdd:            []string{"NET_ADMIN"},
		CapDrop:           []string{"MKNOD"},
		Sysctls:           map[string]string{"net.core.somaxconn": "1024"},
		ExtraHosts:        []string{"db:10.0.0.2"},
		DNSServers:        []string{"10.0.0.53"},
		DNSSearch:         []string{"svc"},
		NetworkMode:       "container:pause",
		PortBindings: []runtime.PortBinding{
			{ContainerPort: 80},
			{ContainerPort: 53, Protocol: "udp", HostIP: "127.0.0.1", HostPort: 5353},
		},
		Mounts: []runtime.Mount{
			{Type: "bind", Source: "/host", Target: "/c", ReadOnly: true},
			{Type: "volume", Source: "v", Target: "/v"},
		},
		VolumesFrom: []string{"other:ro"},
		LogDriver:   "json-file",
		LogOptions:  map[string]string{"max-size": "1m"},
		Healthcheck: &runtime.Healthcheck{
			Test: []string{"CMD", "true"}, Interval: time.Second, Timeout: 2 * time.Second,
			StartPeriod: 3 * time.Second, Retries: 4,
		},
		StopSignal: "SIGINT",
	}
	got, err := createOptions(spec)
	if err != nil {
		t.Fatal(err)
	}
	init := true
	tcp80 := network.MustParsePort("80/tcp")
	udp53 := network.MustParsePort("53/udp")
	wantCfg := &container.Config{
		Image: "app:1", Entrypoint: []string{"/app"}, Cmd: []string{"serve"}, Env: []string{"A=1"},
		WorkingDir: "/w", User: "1000", Labels: map[string]string{"k": "v"}, Hostname: "h", StopSignal: "SIGINT",
		ExposedPorts: network.PortSet{tcp80: {}, udp53: {}},
		Healthcheck: &container.HealthConfig{
			Test: []string{"CMD", "true"}, Interval: time.Second, Timeout: 2 * time.Second,
			StartPeriod: 3 * time.Second, Retries: 4,
		},
	}
	wantHost := &container.HostConfig{
		NetworkMode: "container:pause", ReadonlyRootfs: true, Privileged: true, Init: &init,
		CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"MKNOD"},
		Sysctls:    map[string]string{"net.core.somaxconn": "1024"},
		ExtraHosts: []string{"db:10.0.0.2"}, DNS: []netip.Addr{netip.MustParseAddr("10.0.0.53")}, DNSSearch: []string{"svc"},
		PortBindings: network.PortMap{
			tcp80: {{}},
			udp53: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "5353"}},
		},
		Mounts: []mount.Mount{
			{Type: mount.TypeBind, Source: "/host", Target: "/c", ReadOnly: true},
			{Type: mount.TypeVolume, Source: "v", Target: "/v"},
		},
		VolumesFrom: []string{"other:ro"},
		LogConfig:   container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m"}},
		Resources: container.Resources{
			CPUShares: 512, Memory: 128 << 20, MemoryReservation: 64 << 20,
			Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 1, Hard: 2}},
		},
	}
	if got.Name != "web" {
		t.Errorf("name %q", got.Name)
	}
	if !reflect.DeepEqual(got.Config, wantCfg) {
		t.Errorf("config:\n got %s\nwant %s", js(got.Config), js(wantCfg))
	}
	if !reflect.DeepEqual(got.HostConfig, wantHost) {
		t.Errorf("host config:\n got %s\nwant %s", js(got.HostConfig), js(wantHost))
	}
}

func TestCreateOptionsMinimal(t *testing.T) {
	got, err := createOptions(runtime.ContainerSpec{Image: "app:1"})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing unset is sent as a zero that would override the engine's defaults.
	if got.HostConfig.Init != nil || got.Config.Healthcheck != nil || got.Config.ExposedPorts != nil ||
		got.HostConfig.PortBindings != nil || got.HostConfig.Memory != 0 || got.HostConfig.DNS != nil {
		t.Errorf("minimal spec set defaults: %s %s", js(got.Config), js(got.HostConfig))
	}
}

func TestCreateOptionsRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(*runtime.ContainerSpec)
	}{
		{"no image", func(s *runtime.ContainerSpec) { s.Image = "" }},
		{"dns not an address", func(s *runtime.ContainerSpec) { s.DNSServers = []string{"dns.example"} }},
		{"port zero", func(s *runtime.ContainerSpec) { s.PortBindings = []runtime.PortBinding{{}} }},
		{"host ip not an address", func(s *runtime.ContainerSpec) {
			s.PortBindings = []runtime.PortBinding{{ContainerPort: 80, HostIP: "localhost"}}
		}},
		{"mount type", func(s *runtime.ContainerSpec) { s.Mounts = []runtime.Mount{{Type: "tmpfs", Target: "/t"}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := runtime.ContainerSpec{Name: "c", Image: "app:1"}
			tt.edit(&spec)
			if _, err := createOptions(spec); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("createOptions: %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestBoundPorts(t *testing.T) {
	// The engine reports each binding once per address family.
	ns := &container.NetworkSettings{Ports: network.PortMap{
		network.MustParsePort("8080/tcp"): {
			{HostIP: netip.MustParseAddr("::"), HostPort: "49153"},
			{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: "49153"},
		},
		network.MustParsePort("53/udp"):   {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "49154"}},
		network.MustParsePort("9000/tcp"): nil, // exposed, not published
	}}
	want := []runtime.PortBinding{
		{ContainerPort: 53, Protocol: "udp", HostIP: "127.0.0.1", HostPort: 49154},
		{ContainerPort: 8080, Protocol: "tcp", HostIP: "0.0.0.0", HostPort: 49153},
	}
	if got := boundPorts(ns); !reflect.DeepEqual(got, want) {
		t.Errorf("boundPorts = %+v, want %+v", got, want)
	}
}

func TestConvertEvent(t *testing.T) {
	ev, ok := convertEvent(eventsMessage(`{"Type":"container","Action":"health_status: unhealthy",
		"Actor":{"ID":"abc","Attributes":{"image":"app:1","name":"web","k":"v"}},"time":1700000000,"timeNano":1700000000123456789}`))
	if !ok || ev.Action != "health_status" || ev.Health != runtime.HealthUnhealthy || ev.ContainerID != "abc" ||
		!reflect.DeepEqual(ev.Labels, map[string]string{"k": "v"}) || ev.Time.UnixNano() != 1700000000123456789 {
		t.Errorf("health event: %+v", ev)
	}
	ev, ok = convertEvent(eventsMessage(`{"Type":"container","Action":"die",
		"Actor":{"ID":"abc","Attributes":{"exitCode":"137","k":"v"}},"time":1700000000}`))
	if !ok || ev.Action != "die" || ev.ExitCode != 137 || ev.Health != "" || ev.Time.Unix() != 1700000000 {
		t.Errorf("die event: %+v", ev)
	}
	if _, ok := convertEvent(eventsMessage(`{"Type":"network","Action":"connect"}`)); ok {
		t.Error("a network event was converted")
	}
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func eventsMessage(s string) events.Message {
	var m events.Message
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		panic(err)
	}
	return m
}
