package state

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	CPU         int   `json:"cpu"`
	MemoryMiB   int   `json:"memoryMiB"`
	ReservedTCP []int `json:"reservedTcp,omitempty"`
	ReservedUDP []int `json:"reservedUdp,omitempty"`
}

// ecsResources renders resources as the ECS Resource list; extra ports
// ("tcp/80") are added to PORTS or PORTS_UDP.
func ecsResources(cpu, mem int, tcp, udp []int, extra []string) []ecstypes.Resource {
	render := func(ps []int, proto string) []string {
		out := make([]string, 0, len(ps))
		for _, p := range ps {
			out = append(out, strconv.Itoa(p))
		}
		for _, e := range extra {
			if pr, num, ok := strings.Cut(e, "/"); ok && pr == proto && !slices.Contains(out, num) {
				out = append(out, num)
			}
		}
		return out
	}
	return []ecstypes.Resource{
		{Name: "CPU", Type: "INTEGER", IntegerValue: int32(cpu)},
		{Name: "MEMORY", Type: "INTEGER", IntegerValue: int32(mem)},
		{Name: "PORTS", Type: "STRINGSET", StringSetValue: render(tcp, "tcp")},
		{Name: "PORTS_UDP", Type: "STRINGSET", StringSetValue: render(udp, "udp")},
	}
}

// render recomputes the ECS resource lists from Registered and Held:
// remaining PORTS lists the reserved ports and those tasks hold, as ECS does.
func (ci *ContainerInstance) render() {
	r := ci.Registered
	ci.RegisteredResources = ecsResources(r.CPU, r.MemoryMiB, r.ReservedTCP, r.ReservedUDP, nil)
	ci.RemainingResources = ecsResources(r.CPU-ci.Held.CPU, r.MemoryMiB-ci.Held.Memory, r.ReservedTCP, r.ReservedUDP, ci.Held.Ports)
}

// Ec2InstanceID is the EC2-style id Berth shows for an instance: "i-" and
// 17 hex digits taken from the instance id.
func Ec2InstanceID(id string) string {
	return "i-" + id[:min(17, len(id))]
}

// RegisterInstance fills ci (new or re-registered) with what the agent
// offers. held is what the instance's live tasks hold.
func RegisterInstance(ci *ContainerInstance, arns ARNs, cluster, id string, r Resources, attrs []ecstypes.Attribute, v ecstypes.VersionInfo, held Reservation, now time.Time) {
	ci.ID, ci.Cluster = id, cluster
	ci.ContainerInstanceArn = arns.ContainerInstance(cluster, id)
	if ci.Ec2InstanceId == "" {
		ci.Ec2InstanceId = Ec2InstanceID(id)
	}
	if ci.Status == "" {
		ci.Status = InstanceActive
	}
	if ci.RegisteredAt == nil {
		ci.RegisteredAt = awsmodel.NewTime(now)
	}
	ci.Version++
	ci.VersionInfo = &v
	ci.AgentUpdateStatus = ""
	ci.Registered, ci.Held = r, held
	ci.render()
	// The agent's attributes replace those it registered before; attributes
	// set with PutAttributes stay unless the agent now sets the same name.
	fresh := map[string]bool{}
	var agentAttrs []ecstypes.Attribute
	for _, a := range attrs {
		if !fresh[a.Name] {
			fresh[a.Name] = true
			agentAttrs = append(agentAttrs, a)
		}
	}
	var kept []ecstypes.Attribute
	for _, a := range ci.Attributes {
		if !fresh[a.Name] && !slices.Contains(ci.AgentAttributes, a.Name) && !isBuiltin(a.Name) {
			kept = append(kept, a)
		}
	}
	ci.Attributes = append(agentAttrs, kept...)
	ci.AgentAttributes = ci.AgentAttributes[:0]
	for _, a := range agentAttrs {
		ci.AgentAttributes = append(ci.AgentAttributes, a.Name)
	}
}

func isBuiltin(name string) bool {
	return strings.HasPrefix(name, "ecs.") || strings.HasPrefix(name, "com.amazonaws.ecs.")
}

// Remaining returns an instance's remaining CPU units and MiB.
func (ci *ContainerInstance) Remaining() (cpu, mem int) {
	return ci.Registered.CPU - ci.Held.CPU, ci.Registered.MemoryMiB - ci.Held.Memory
}

// Place records a task placed here: its reservation and its group.
func (ci *ContainerInstance) Place(r Reservation, group string) error {
	for _, p := range r.Ports {
		if slices.Contains(ci.Held.Ports, p) {
			return fmt.Errorf("port %s on %s is already in use", p, ci.ID)
		}
	}
	ci.Held.CPU += r.CPU
	ci.Held.Memory += r.Memory
	ci.Held.Ports = append(ci.Held.Ports, r.Ports...)
	ci.LiveTasks++
	if ci.Groups == nil {
		ci.Groups = map[string]int{}
	}
	ci.Groups[group]++
	ci.Version++
	ci.render()
	return nil
}

// TaskMoved updates the counters for a task of group whose lastStatus went
// from prev to next, giving back its reservation r when it has stopped.
func (ci *ContainerInstance) TaskMoved(group, prev, next string, r *Reservation) {
	if prev == next {
		return
	}
	switch {
	case next == "RUNNING":
		ci.RunningTasks++
	case prev == "RUNNING":
		ci.RunningTasks--
	}
	if next == "STOPPED" {
		ci.LiveTasks--
		if ci.Groups[group]--; ci.Groups[group] <= 0 {
			delete(ci.Groups, group)
		}
		if r != nil {
			ci.Held.CPU -= r.CPU
			ci.Held.Memory -= r.Memory
			ci.Held.Ports = slices.DeleteFunc(ci.Held.Ports, func(p string) bool { return slices.Contains(r.Ports, p) })
		}
	}
	ci.Version++
	ci.render()
}
