package state

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
)

// Instance statuses.
const (
	InstanceActive   = "ACTIVE"
	InstanceDraining = "DRAINING"
	InstanceInactive = "INACTIVE"
)

// Resources an instance offers, as registered.
type Resources struct {
	CPU, MemoryMiB           int
	ReservedTCP, ReservedUDP []int
}

// ecsResources renders resources as the ECS Resource list.
func ecsResources(r Resources) []ecstypes.Resource {
	ports := func(ps []int) []string {
		out := make([]string, 0, len(ps))
		for _, p := range ps {
			out = append(out, strconv.Itoa(p))
		}
		return out
	}
	return []ecstypes.Resource{
		{Name: "CPU", Type: "INTEGER", IntegerValue: int32(r.CPU)},
		{Name: "MEMORY", Type: "INTEGER", IntegerValue: int32(r.MemoryMiB)},
		{Name: "PORTS", Type: "STRINGSET", StringSetValue: ports(r.ReservedTCP)},
		{Name: "PORTS_UDP", Type: "STRINGSET", StringSetValue: ports(r.ReservedUDP)},
	}
}

// RegisterInstance fills ci (new or re-registered) with what the agent
// offers. Remaining resources are the registered ones minus what the
// instance's running tasks hold (held).
func RegisterInstance(ci *ContainerInstance, arns ARNs, cluster, id string, r Resources, attrs []ecstypes.Attribute, v ecstypes.VersionInfo, held Reservation, now time.Time) {
	ci.ID, ci.Cluster = id, cluster
	ci.ContainerInstanceArn = arns.ContainerInstance(cluster, id)
	if ci.Ec2InstanceId == "" {
		ci.Ec2InstanceId = "berth-" + id[:min(17, len(id))]
	}
	if ci.Status == "" || ci.Status == InstanceInactive {
		ci.Status = InstanceActive
	}
	if ci.RegisteredAt == nil {
		ci.RegisteredAt = awsmodel.NewTime(now)
	}
	ci.Version++
	ci.VersionInfo = &v
	ci.RegisteredResources = ecsResources(r)
	rem := r
	rem.CPU -= held.CPU
	rem.MemoryMiB -= held.Memory
	ci.RemainingResources = ecsResources(rem)
	// Custom attributes set with PutAttributes survive re-registration;
	// the agent's own are replaced.
	custom := slices.DeleteFunc(slices.Clone(ci.Attributes), func(a ecstypes.Attribute) bool { return isBuiltin(a.Name) })
	ci.Attributes = append(slices.Clone(attrs), custom...)
	ci.UsedPorts = slices.Clone(held.Ports)
}

func isBuiltin(name string) bool {
	return len(name) > 4 && (name[:4] == "ecs." || (len(name) > 18 && name[:18] == "com.amazonaws.ecs."))
}

// Remaining returns an instance's remaining CPU units and MiB.
func (ci *ContainerInstance) Remaining() (cpu, mem int) {
	for _, r := range ci.RemainingResources {
		switch r.Name {
		case "CPU":
			cpu = int(r.IntegerValue)
		case "MEMORY":
			mem = int(r.IntegerValue)
		}
	}
	return cpu, mem
}

// Hold takes (or with sign -1 gives back) a task's reservation.
func (ci *ContainerInstance) Hold(r Reservation, sign int) error {
	for i := range ci.RemainingResources {
		switch ci.RemainingResources[i].Name {
		case "CPU":
			ci.RemainingResources[i].IntegerValue -= int32(sign * r.CPU)
		case "MEMORY":
			ci.RemainingResources[i].IntegerValue -= int32(sign * r.Memory)
		}
	}
	if sign > 0 {
		for _, p := range r.Ports {
			if slices.Contains(ci.UsedPorts, p) {
				return fmt.Errorf("port %s on %s is already in use", p, ci.ID)
			}
		}
		ci.UsedPorts = append(ci.UsedPorts, r.Ports...)
	} else {
		ci.UsedPorts = slices.DeleteFunc(ci.UsedPorts, func(p string) bool { return slices.Contains(r.Ports, p) })
	}
	ci.Version++
	return nil
}
