package docker

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

// createOptions translates a ContainerSpec into the engine's create request.
// It is a pure function so that the mapping is tested without an engine.
func createOptions(spec runtime.ContainerSpec) (client.ContainerCreateOptions, error) {
	if spec.Image == "" {
		return client.ContainerCreateOptions{}, fmt.Errorf("container %q: image is required: %w", spec.Name, errdefs.ErrInvalidArgument)
	}
	cfg := &container.Config{
		Image:      spec.Image,
		Entrypoint: spec.Entrypoint,
		Cmd:        spec.Cmd,
		Env:        spec.Env,
		WorkingDir: spec.WorkingDir,
		User:       spec.User,
		Labels:     spec.Labels,
		Hostname:   spec.Hostname,
		StopSignal: spec.StopSignal,
	}
	hc := &container.HostConfig{
		NetworkMode:    container.NetworkMode(spec.NetworkMode),
		ReadonlyRootfs: spec.ReadonlyRootfs,
		Privileged:     spec.Privileged,
		CapAdd:         spec.CapAdd,
		CapDrop:        spec.CapDrop,
		Sysctls:        spec.Sysctls,
		ExtraHosts:     spec.ExtraHosts,
		DNSSearch:      spec.DNSSearch,
		VolumesFrom:    spec.VolumesFrom,
		LogConfig:      container.LogConfig{Type: spec.LogDriver, Config: spec.LogOptions},
		Resources: container.Resources{
			CPUShares:         spec.CPUShares,
			Memory:            spec.MemoryLimit,
			MemoryReservation: spec.MemoryReservation,
		},
	}
	if spec.Init {
		init := true
		hc.Init = &init
	}
	for _, u := range spec.Ulimits {
		hc.Ulimits = append(hc.Ulimits, &container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	for _, s := range spec.DNSServers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return client.ContainerCreateOptions{}, fmt.Errorf("container %q: dns server %q: %w", spec.Name, s, errdefs.ErrInvalidArgument)
		}
		hc.DNS = append(hc.DNS, a)
	}

	for _, pb := range spec.PortBindings {
		proto := pb.Protocol
		if proto == "" {
			proto = "tcp"
		}
		port, ok := network.PortFrom(pb.ContainerPort, network.IPProtocol(proto))
		if !ok || pb.ContainerPort == 0 {
			return client.ContainerCreateOptions{}, fmt.Errorf("container %q: port %d/%s: %w", spec.Name, pb.ContainerPort, proto, errdefs.ErrInvalidArgument)
		}
		binding := network.PortBinding{}
		if pb.HostPort != 0 {
			binding.HostPort = strconv.Itoa(int(pb.HostPort))
		}
		if pb.HostIP != "" {
			ip, err := netip.ParseAddr(pb.HostIP)
			if err != nil {
				return client.ContainerCreateOptions{}, fmt.Errorf("container %q: host ip %q: %w", spec.Name, pb.HostIP, errdefs.ErrInvalidArgument)
			}
			binding.HostIP = ip
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
			hc.PortBindings = network.PortMap{}
		}
		cfg.ExposedPorts[port] = struct{}{}
		hc.PortBindings[port] = append(hc.PortBindings[port], binding)
	}

	for _, m := range spec.Mounts {
		var t mount.Type
		switch m.Type {
		case "bind":
			t = mount.TypeBind
		case "volume", "":
			t = mount.TypeVolume
		default:
			return client.ContainerCreateOptions{}, fmt.Errorf("container %q: mount type %q: %w", spec.Name, m.Type, errdefs.ErrInvalidArgument)
		}
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: t, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}

	if h := spec.Healthcheck; h != nil {
		cfg.Healthcheck = &container.HealthConfig{
			Test:        h.Test,
			Interval:    h.Interval,
			Timeout:     h.Timeout,
			StartPeriod: h.StartPeriod,
			Retries:     h.Retries,
		}
	}
	return client.ContainerCreateOptions{Name: spec.Name, Config: cfg, HostConfig: hc}, nil
}
