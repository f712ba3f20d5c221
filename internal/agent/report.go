package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/runtime"
)

// report is the task's observed state as the control plane receives it
// (Seq is set by publish).
func (m *manager) report() agentapi.TaskReport {
	r := m.rec
	tr := agentapi.TaskReport{
		TaskArn:            r.TaskArn,
		LastStatus:         r.Status,
		HealthStatus:       string(m.taskHealth()),
		PullStartedAt:      awsTime(r.PullStartedAt),
		PullStoppedAt:      awsTime(r.PullStoppedAt),
		StartedAt:          awsTime(r.StartedAt),
		StoppingAt:         awsTime(r.StoppingAt),
		ExecutionStoppedAt: awsTime(r.ExecutionStoppedAt),
		StoppedAt:          awsTime(r.StoppedAt),
		StopCode:           r.StopCode,
		StoppedReason:      r.StoppedReason,
	}
	if r.ConnectivityAt != nil {
		tr.Connectivity = string(ecstypes.ConnectivityConnected)
		tr.ConnectivityAt = awsTime(r.ConnectivityAt)
	}
	eni := m.eniAttachment()
	if eni != nil {
		tr.Attachments = []ecstypes.Attachment{*eni}
	}
	for _, c := range r.Containers {
		cr := agentapi.ContainerReport{
			Name:            c.Name,
			RuntimeID:       c.RuntimeID,
			ImageDigest:     c.ImageDigest,
			LastStatus:      c.lastStatus(),
			ExitCode:        c.ExitCode,
			Reason:          c.Reason,
			HealthStatus:    string(containerHealth(c.Health)),
			NetworkBindings: c.Bindings,
		}
		if eni != nil && r.Pause != nil && r.Pause.IPAddress != "" {
			cr.NetworkInterfaces = []ecstypes.NetworkInterface{{AttachmentId: eni.Id, PrivateIpv4Address: r.Pause.IPAddress}}
		}
		tr.Containers = append(tr.Containers, cr)
	}
	return tr
}

func awsTime(t *time.Time) *awsmodel.Time {
	if t == nil {
		return nil
	}
	return awsmodel.NewTime(*t)
}

// containerHealth maps the engine's health word to ECS's.
func containerHealth(h string) ecstypes.HealthStatus {
	switch h {
	case runtime.HealthHealthy:
		return ecstypes.HealthStatusHealthy
	case runtime.HealthUnhealthy:
		return ecstypes.HealthStatusUnhealthy
	}
	return ecstypes.HealthStatusUnknown
}

// taskHealth is UNHEALTHY if any essential container with a health check is
// unhealthy, HEALTHY if all of them are healthy, else UNKNOWN (also when
// no essential container has a health check).
func (m *manager) taskHealth() ecstypes.HealthStatus {
	if m.plan == nil {
		return ecstypes.HealthStatusUnknown
	}
	checked, healthy := 0, 0
	for i, c := range m.rec.Containers {
		if !c.Essential || !m.plan.containers[i].hasHealthCheck {
			continue
		}
		checked++
		switch containerHealth(c.Health) {
		case ecstypes.HealthStatusUnhealthy:
			return ecstypes.HealthStatusUnhealthy
		case ecstypes.HealthStatusHealthy:
			healthy++
		}
	}
	if checked > 0 && healthy == checked {
		return ecstypes.HealthStatusHealthy
	}
	return ecstypes.HealthStatusUnknown
}

// bindings are a container's network bindings: the ports the engine
// actually bound in bridge mode (dynamic ones included), the container
// ports themselves in host mode, none otherwise.
func (m *manager) bindings(c *containerRecord, st runtime.ContainerState) []ecstypes.NetworkBinding {
	if m.plan == nil {
		return nil
	}
	var out []ecstypes.NetworkBinding
	switch m.plan.networkMode {
	case ecstypes.NetworkModeBridge:
		for _, p := range st.Ports {
			if p.HostPort == 0 {
				continue
			}
			ip := p.HostIP
			if ip == "" {
				ip = "0.0.0.0"
			}
			out = append(out, ecstypes.NetworkBinding{
				BindIP:        ip,
				ContainerPort: new(int32(p.ContainerPort)),
				HostPort:      new(int32(p.HostPort)),
				Protocol:      ecstypes.TransportProtocol(protocolOf(ecstypes.TransportProtocol(p.Protocol))),
			})
		}
	case ecstypes.NetworkModeHost:
		if cp := m.planOf(c.Name); cp != nil {
			for _, pm := range cp.def.PortMappings {
				if pm.ContainerPort == nil {
					continue
				}
				out = append(out, ecstypes.NetworkBinding{
					BindIP:        "0.0.0.0",
					ContainerPort: new(*pm.ContainerPort),
					HostPort:      new(*pm.ContainerPort),
					Protocol:      ecstypes.TransportProtocol(protocolOf(pm.Protocol)),
				})
			}
		}
	}
	return out
}

// attachmentID is the awsvpc attachment's id, stable per task.
func attachmentID(taskArn string) string {
	sum := sha256.Sum256([]byte("eni:" + taskArn))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// eniAttachment describes an awsvpc task's network interface the way ECS
// describes an ENI. Berth's "ENI" is the pause container's interface on the
// engine's default bridge: the interface id is derived from the pause
// container's id and the DNS name from its address.
func (m *manager) eniAttachment() *ecstypes.Attachment {
	r := m.rec
	if m.plan == nil || m.plan.networkMode != ecstypes.NetworkModeAwsvpc {
		return nil
	}
	a := &ecstypes.Attachment{Id: attachmentID(r.TaskArn), Type: "ElasticNetworkInterface", Status: "PRECREATED"}
	pc := r.Pause
	if pc == nil || pc.IPAddress == "" {
		if r.Status == statusStopped {
			a.Status = "DELETED"
		}
		return a
	}
	a.Status = "ATTACHED"
	if pc.Exited {
		a.Status = "DELETED"
	}
	a.Details = []ecstypes.KeyValuePair{
		{Name: "subnetId", Value: "berth-default-bridge"},
		{Name: "networkInterfaceId", Value: "eni-" + pc.RuntimeID[:min(17, len(pc.RuntimeID))]},
		{Name: "privateDnsName", Value: privateDNSName(pc.IPAddress)},
		{Name: "privateIPv4Address", Value: pc.IPAddress},
	}
	return a
}

func privateDNSName(ip string) string { return "ip-" + strings.ReplaceAll(ip, ".", "-") }

// metadataView is the task as the metadata endpoint shows it.
func (m *manager) metadataView() *taskView {
	r, p := m.rec, m.plan
	td := &r.Desired.Definition
	known := r.Status
	if known == statusNone {
		known = "NONE"
	}
	v := &taskView{
		task: taskMetadata{
			Cluster:            r.Desired.Cluster,
			TaskARN:            r.TaskArn,
			Family:             td.Family,
			Revision:           strconv.Itoa(int(td.Revision)),
			DesiredStatus:      r.Desired.DesiredStatus,
			KnownStatus:        known,
			PullStartedAt:      utc(r.PullStartedAt),
			PullStoppedAt:      utc(r.PullStoppedAt),
			ExecutionStoppedAt: utc(r.ExecutionStoppedAt),
			AvailabilityZone:   m.a.cfg.AvailabilityZone,
			LaunchType:         "EC2",
		},
		containers: map[string]containerMetadata{},
		runtimeIDs: map[string]string{},
		tokens:     map[string]string{},
	}
	if svc, ok := strings.CutPrefix(r.Desired.Group, "service:"); ok {
		v.task.ServiceName = svc
	}
	if p != nil && (p.cpuUnits > 0 || p.memoryMiB > 0) {
		l := &limitsMetadata{}
		if p.cpuUnits > 0 {
			l.CPU = new(float64(p.cpuUnits) / 1024)
		}
		if p.memoryMiB > 0 {
			l.Memory = new(int64(p.memoryMiB))
		}
		v.task.Limits = l
	}
	for i, c := range r.Containers {
		cm := m.containerMetadata(c, i)
		v.task.Containers = append(v.task.Containers, cm)
		v.containers[c.Name] = cm
		v.tokens[c.Name] = c.Token
		if c.Created && !c.Removed {
			v.runtimeIDs[c.Name] = c.RuntimeID
		}
	}
	return v
}

// containerMetadata is one container as the metadata endpoint shows it.
func (m *manager) containerMetadata(c *containerRecord, i int) containerMetadata {
	r := m.rec
	cm := containerMetadata{
		DockerID:      c.RuntimeID,
		Name:          c.Name,
		DockerName:    c.DockerName,
		ImageID:       c.ImageID,
		DesiredStatus: r.Desired.DesiredStatus,
		KnownStatus:   containerKnownStatus(c),
		CreatedAt:     utc(c.CreatedAt),
		StartedAt:     utc(c.StartedAt),
		FinishedAt:    utc(c.FinishedAt),
		Type:          "NORMAL",
	}
	if c.ExitCode != nil {
		cm.ExitCode = new(int(*c.ExitCode))
	}
	if m.plan == nil {
		return cm
	}
	cp := &m.plan.containers[i]
	cm.Image = cp.def.Image
	cm.Labels = cp.spec.Labels
	cm.Limits.CPU = new(float64(cp.def.Cpu))
	if cp.def.Memory != nil {
		cm.Limits.Memory = new(int64(*cp.def.Memory))
	} else if cp.def.MemoryReservation != nil {
		cm.Limits.Memory = new(int64(*cp.def.MemoryReservation))
	}
	cm.LogDriver, cm.LogOptions = cp.spec.LogDriver, cp.spec.LogOptions
	if cp.hasHealthCheck {
		cm.Health = &healthMetadata{Status: string(containerHealth(c.Health))}
		if !c.HealthSince.IsZero() {
			cm.Health.Since = utc(&c.HealthSince)
		}
	}
	for _, b := range c.Bindings {
		cm.Ports = append(cm.Ports, portMetadata{ContainerPort: uint16(deref(b.ContainerPort, 0)), Protocol: string(b.Protocol), HostPort: uint16(deref(b.HostPort, 0)), HostIP: b.BindIP})
	}
	for _, mt := range cp.mounts {
		vm := volumeMetadata{Source: mt.Source, Destination: mt.Target}
		if mt.Type == "volume" {
			vm = volumeMetadata{DockerName: mt.Source, Destination: mt.Target}
		}
		cm.Volumes = append(cm.Volumes, vm)
	}
	switch m.plan.networkMode {
	case ecstypes.NetworkModeAwsvpc:
		for _, pm := range cp.def.PortMappings {
			if pm.ContainerPort != nil {
				cm.Ports = append(cm.Ports, portMetadata{ContainerPort: uint16(*pm.ContainerPort), Protocol: protocolOf(pm.Protocol), HostPort: uint16(*pm.ContainerPort)})
			}
		}
		if pc := r.Pause; pc != nil && pc.IPAddress != "" {
			cm.Networks = []networkMetadata{{
				NetworkMode:     "awsvpc",
				IPv4Addresses:   []string{pc.IPAddress},
				AttachmentIndex: new(0),
				PrivateDNSName:  privateDNSName(pc.IPAddress),
			}}
		}
	case ecstypes.NetworkModeBridge:
		nw := networkMetadata{NetworkMode: cp.spec.NetworkMode}
		if c.IPAddress != "" {
			nw.IPv4Addresses = []string{c.IPAddress}
		}
		cm.Networks = []networkMetadata{nw}
	default:
		cm.Networks = []networkMetadata{{NetworkMode: string(m.plan.networkMode)}}
	}
	return cm
}

// containerKnownStatus is the ECS agent's container status word.
func containerKnownStatus(c *containerRecord) string {
	switch {
	case c.Exited || c.NeverStarted:
		return "STOPPED"
	case c.Started:
		return "RUNNING"
	case c.Created:
		return "CREATED"
	case c.Pulled:
		return "PULLED"
	}
	return "NONE"
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
