package agent

import (
	"fmt"
	"maps"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/runtime"
)

// The Docker labels every task container carries: ECS's standard ones, and
// Berth's, which name the agent that owns the container so that a restarted
// agent re-adopts its containers and removes its orphans, and never touches
// another agent's containers on a shared engine.
const (
	labelCluster          = "com.amazonaws.ecs.cluster"
	labelTaskArn          = "com.amazonaws.ecs.task-arn"
	labelContainerName    = "com.amazonaws.ecs.container-name"
	labelFamily           = "com.amazonaws.ecs.task-definition-family"
	labelFamilyVersion    = "com.amazonaws.ecs.task-definition-version"
	labelAgentID          = "dev.berth.agent-id"
	labelInstanceID       = "dev.berth.container-instance"
	pauseContainerName    = "~internal~ecs~pause"
	defaultHealthInterval = 30
	defaultHealthTimeout  = 5
	defaultHealthRetries  = 3
	minCPUShares          = 2
)

// plan is what one task asks of the engine: the task definition with the
// task's overrides applied, mapped to container specs. It is a pure function
// of the desired task and the agent's environment (buildPlan), recomputed
// whenever the manager needs it rather than persisted.
type plan struct {
	taskID      string
	networkMode ecstypes.NetworkMode
	// containers are in task definition order.
	containers []containerPlan
	// startOrder lists container indexes so that every container comes after
	// the containers it depends on (dependsOn and volumesFrom).
	startOrder []int
	volumes    []volumePlan
	// pause is the awsvpc pause container's spec, nil for other modes.
	pause *runtime.ContainerSpec
	// cpuUnits and memoryMiB are the task-level limits, 0 if unset.
	cpuUnits  int
	memoryMiB int
}

// containerPlan is one container of a plan.
type containerPlan struct {
	def  ecstypes.ContainerDefinition
	spec runtime.ContainerSpec
	// volumesFrom names source containers; their engine ids are filled into
	// spec.VolumesFrom when the container is created.
	volumesFrom  []ecstypes.VolumeFrom
	essential    bool
	stopTimeout  time.Duration
	startTimeout time.Duration
	// hasHealthCheck says whether the engine runs a health check.
	hasHealthCheck bool
	// mounts are for the metadata endpoint's Volumes.
	mounts []runtime.Mount
}

// volumePlan is one task definition volume.
type volumePlan struct {
	name string
	// mountType is "bind" (host.sourcePath) or "volume".
	mountType string
	// source is the host path or the engine's volume name.
	source string
	// create asks the agent to create the named volume; taskScoped asks it to
	// remove the volume at cleanup.
	create     bool
	taskScoped bool
	driver     string
	driverOpts map[string]string
	labels     map[string]string
}

// planEnv is what the plan needs to know about the agent.
type planEnv struct {
	agentID    string
	instanceID string
	// metadataBridge is the host:port bridge and awsvpc containers use for
	// the metadata server, metadataHost the one host-mode containers use.
	metadataBridge string
	metadataHost   string
	// metadataAlias, when set, is mapped to Docker's host-gateway in the
	// /etc/hosts of bridge and awsvpc containers.
	metadataAlias string
	stopTimeout   time.Duration
	pauseImage    string
	// tokens maps container names to their metadata tokens.
	tokens map[string]string
}

// unsupportedError says that a task asks for something Berth cannot do
// (yet); the task fails to start with its message as stoppedReason.
type unsupportedError struct{ msg string }

func (e *unsupportedError) Error() string { return e.msg }

func unsupported(format string, args ...any) error {
	return &unsupportedError{msg: fmt.Sprintf(format, args...)}
}

// taskIDOf returns the last element of a task ARN.
func taskIDOf(taskArn string) string {
	if i := strings.LastIndexByte(taskArn, '/'); i >= 0 {
		return taskArn[i+1:]
	}
	return taskArn
}

// dockerName is the engine name of a task's container: deterministic, so
// that a create repeated after a crash finds the first one.
func dockerName(dt *agentapi.DesiredTask, container string) string {
	family := dt.Definition.Family
	if len(family) > 100 {
		family = family[:100]
	}
	return fmt.Sprintf("berth-%s-%d-%s-%s", family, dt.Definition.Revision, container, taskIDOf(dt.TaskArn))
}

// pauseDockerName is the engine name of a task's pause container.
func pauseDockerName(taskArn string) string { return "berth-pause-" + taskIDOf(taskArn) }

// taskLabels are the labels that identify a task's containers.
func taskLabels(dt *agentapi.DesiredTask, env planEnv, container string) map[string]string {
	l := map[string]string{
		labelCluster:       dt.Cluster,
		labelTaskArn:       dt.TaskArn,
		labelContainerName: container,
		labelFamily:        dt.Definition.Family,
		labelFamilyVersion: strconv.Itoa(int(dt.Definition.Revision)),
		labelAgentID:       env.agentID,
	}
	if env.instanceID != "" {
		l[labelInstanceID] = env.instanceID
	}
	return l
}

// buildPlan maps a desired task to container specs. An *unsupportedError
// means the task cannot run on Berth; any other error means the
// definition is inconsistent.
func buildPlan(dt *agentapi.DesiredTask, env planEnv) (*plan, error) {
	td := &dt.Definition
	p := &plan{taskID: taskIDOf(dt.TaskArn), networkMode: td.NetworkMode}
	if p.networkMode == "" {
		p.networkMode = ecstypes.NetworkModeBridge
	}
	if err := checkTaskSupported(td); err != nil {
		return nil, err
	}
	cpu, mem := td.Cpu, td.Memory
	if o := dt.Overrides; o != nil {
		if o.Cpu != "" {
			cpu = o.Cpu
		}
		if o.Memory != "" {
			mem = o.Memory
		}
	}
	p.cpuUnits, p.memoryMiB = atoi(cpu), atoi(mem)

	vols := map[string]*volumePlan{}
	for _, v := range td.Volumes {
		vp, err := planVolume(p.taskID, env, v)
		if err != nil {
			return nil, err
		}
		p.volumes = append(p.volumes, vp)
		vols[v.Name] = &p.volumes[len(p.volumes)-1]
	}

	for _, def := range td.ContainerDefinitions {
		def = applyOverrides(def, dt.Overrides)
		cp, err := planContainer(dt, env, p, def, vols)
		if err != nil {
			return nil, err
		}
		p.containers = append(p.containers, cp)
	}
	order, err := startOrder(p.containers)
	if err != nil {
		return nil, err
	}
	p.startOrder = order

	if p.networkMode == ecstypes.NetworkModeAwsvpc {
		p.pause = &runtime.ContainerSpec{
			Name:        pauseDockerName(dt.TaskArn),
			Image:       env.pauseImage,
			Entrypoint:  []string{"/pause"},
			Labels:      taskLabels(dt, env, pauseContainerName),
			NetworkMode: "bridge",
			CPUShares:   minCPUShares,
			// The pause process ignores SIGTERM (it is PID 1 without a
			// handler); there is nothing to shut down gracefully.
			StopSignal: "SIGKILL",
		}
		if env.metadataAlias != "" {
			p.pause.ExtraHosts = []string{env.metadataAlias + ":host-gateway"}
		}
	}
	return p, nil
}

// checkTaskSupported refuses task-level features Berth does not implement.
func checkTaskSupported(td *ecstypes.TaskDefinition) error {
	switch td.NetworkMode {
	case "", ecstypes.NetworkModeBridge, ecstypes.NetworkModeHost, ecstypes.NetworkModeNone, ecstypes.NetworkModeAwsvpc:
	default:
		return unsupported("Berth does not support network mode %q", td.NetworkMode)
	}
	switch {
	case td.PidMode != "":
		return unsupported("Berth does not support pidMode yet")
	case td.IpcMode != "":
		return unsupported("Berth does not support ipcMode yet")
	case td.ProxyConfiguration != nil:
		return unsupported("Berth does not support proxyConfiguration yet")
	case len(td.InferenceAccelerators) > 0:
		return unsupported("Berth does not support inference accelerators")
	}
	return nil
}

// planVolume maps one task definition volume.
func planVolume(taskID string, env planEnv, v ecstypes.Volume) (volumePlan, error) {
	vp := volumePlan{name: v.Name, mountType: "volume"}
	switch {
	case v.EfsVolumeConfiguration != nil:
		return vp, unsupported("Berth does not support EFS volumes yet (volume %q)", v.Name)
	case v.FsxWindowsFileServerVolumeConfiguration != nil:
		return vp, unsupported("Berth does not support FSx volumes (volume %q)", v.Name)
	case v.S3filesVolumeConfiguration != nil:
		return vp, unsupported("Berth does not support S3 Files volumes (volume %q)", v.Name)
	case v.ConfiguredAtLaunch != nil && *v.ConfiguredAtLaunch:
		return vp, unsupported("Berth does not support volumes configured at launch (volume %q)", v.Name)
	case v.Host != nil && v.Host.SourcePath != "":
		vp.mountType, vp.source = "bind", v.Host.SourcePath
	case v.DockerVolumeConfiguration != nil:
		dv := v.DockerVolumeConfiguration
		vp.driver, vp.driverOpts = dv.Driver, dv.DriverOpts
		vp.labels = maps.Clone(dv.Labels)
		if vp.labels == nil {
			vp.labels = map[string]string{}
		}
		vp.labels[labelAgentID] = env.agentID
		if dv.Scope == ecstypes.ScopeShared {
			// A shared volume outlives the task under its own name; the agent
			// creates it only when asked to autoprovision it.
			vp.source = v.Name
			vp.create = dv.Autoprovision != nil && *dv.Autoprovision
		} else {
			vp.source, vp.create, vp.taskScoped = "berth-"+taskID+"-"+v.Name, true, true
		}
	default:
		// No host path and no Docker configuration: ECS gives the task a
		// volume that lives as long as the task.
		vp.source, vp.create, vp.taskScoped = "berth-"+taskID+"-"+v.Name, true, true
		vp.labels = map[string]string{labelAgentID: env.agentID}
	}
	return vp, nil
}

// applyOverrides applies the container override of the same name.
func applyOverrides(def ecstypes.ContainerDefinition, o *ecstypes.TaskOverride) ecstypes.ContainerDefinition {
	if o == nil {
		return def
	}
	for _, co := range o.ContainerOverrides {
		if co.Name != def.Name {
			continue
		}
		if len(co.Command) > 0 {
			def.Command = co.Command
		}
		if len(co.Environment) > 0 {
			def.Environment = mergeEnv(def.Environment, co.Environment)
		}
		if co.Cpu != nil {
			def.Cpu = *co.Cpu
		}
		if co.Memory != nil {
			def.Memory = co.Memory
		}
		if co.MemoryReservation != nil {
			def.MemoryReservation = co.MemoryReservation
		}
		if len(co.EnvironmentFiles) > 0 {
			def.EnvironmentFiles = co.EnvironmentFiles
		}
		if len(co.ResourceRequirements) > 0 {
			def.ResourceRequirements = co.ResourceRequirements
		}
	}
	return def
}

// mergeEnv returns base with the variables of over replacing those of the
// same name and the others appended, in order.
func mergeEnv(base, over []ecstypes.KeyValuePair) []ecstypes.KeyValuePair {
	out := append([]ecstypes.KeyValuePair(nil), base...)
	for _, kv := range over {
		replaced := false
		for i := range out {
			if out[i].Name == kv.Name {
				out[i].Value, replaced = kv.Value, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// checkContainerSupported refuses container features Berth does not
// implement, rather than silently running something else.
func checkContainerSupported(def *ecstypes.ContainerDefinition) error {
	n := def.Name
	switch {
	case len(def.Secrets) > 0:
		return unsupported("Berth does not support secrets yet (container %q)", n)
	case len(def.EnvironmentFiles) > 0:
		return unsupported("Berth does not support environmentFiles yet (container %q)", n)
	case def.RepositoryCredentials != nil:
		return unsupported("Berth does not support repositoryCredentials yet (container %q)", n)
	case def.FirelensConfiguration != nil:
		return unsupported("Berth does not support FireLens (container %q)", n)
	case len(def.ResourceRequirements) > 0:
		return unsupported("Berth does not support resourceRequirements (GPU, accelerators) yet (container %q)", n)
	case len(def.CredentialSpecs) > 0:
		return unsupported("Berth does not support credentialSpecs (container %q)", n)
	case len(def.DockerSecurityOptions) > 0:
		return unsupported("Berth does not support dockerSecurityOptions yet (container %q)", n)
	case len(def.Links) > 0:
		return unsupported("Berth does not support container links yet (container %q)", n)
	case def.Interactive != nil && *def.Interactive, def.PseudoTerminal != nil && *def.PseudoTerminal:
		return unsupported("Berth does not support interactive or pseudoTerminal containers (container %q)", n)
	case def.RestartPolicy != nil && def.RestartPolicy.Enabled != nil && *def.RestartPolicy.Enabled:
		return unsupported("Berth does not support container restart policies yet (container %q)", n)
	}
	if lp := def.LinuxParameters; lp != nil {
		switch {
		case len(lp.Devices) > 0:
			return unsupported("Berth does not support linuxParameters.devices yet (container %q)", n)
		case len(lp.Tmpfs) > 0:
			return unsupported("Berth does not support linuxParameters.tmpfs yet (container %q)", n)
		case lp.SharedMemorySize != nil:
			return unsupported("Berth does not support linuxParameters.sharedMemorySize yet (container %q)", n)
		case lp.MaxSwap != nil, lp.Swappiness != nil:
			return unsupported("Berth does not support linuxParameters.maxSwap or swappiness yet (container %q)", n)
		}
	}
	for _, pm := range def.PortMappings {
		if pm.ContainerPortRange != "" {
			return unsupported("Berth does not support containerPortRange yet (container %q)", n)
		}
	}
	if lc := def.LogConfiguration; lc != nil {
		switch lc.LogDriver {
		case ecstypes.LogDriverJsonFile, "none":
		default:
			return unsupported("Berth does not support the %s log driver yet (container %q); supported log drivers: json-file, none", lc.LogDriver, n)
		}
		if len(lc.SecretOptions) > 0 {
			return unsupported("Berth does not support logConfiguration.secretOptions yet (container %q)", n)
		}
	}
	return nil
}

// planContainer maps one container definition to a container spec.
func planContainer(dt *agentapi.DesiredTask, env planEnv, p *plan, def ecstypes.ContainerDefinition, vols map[string]*volumePlan) (containerPlan, error) {
	if err := checkContainerSupported(&def); err != nil {
		return containerPlan{}, err
	}
	cp := containerPlan{
		def:         def,
		volumesFrom: def.VolumesFrom,
		essential:   def.Essential == nil || *def.Essential,
		stopTimeout: env.stopTimeout,
		hasHealthCheck: def.HealthCheck != nil && len(def.HealthCheck.Command) > 0 &&
			def.HealthCheck.Command[0] != "NONE",
	}
	if def.StopTimeout != nil && *def.StopTimeout > 0 {
		cp.stopTimeout = time.Duration(*def.StopTimeout) * time.Second
	}
	if def.StartTimeout != nil && *def.StartTimeout > 0 {
		cp.startTimeout = time.Duration(*def.StartTimeout) * time.Second
	}
	s := runtime.ContainerSpec{
		Name:           dockerName(dt, def.Name),
		Image:          def.Image,
		Entrypoint:     def.EntryPoint,
		Cmd:            def.Command,
		WorkingDir:     def.WorkingDirectory,
		User:           def.User,
		Hostname:       def.Hostname,
		CPUShares:      int64(max(def.Cpu, minCPUShares)),
		ReadonlyRootfs: def.ReadonlyRootFilesystem != nil && *def.ReadonlyRootFilesystem,
		Privileged:     def.Privileged != nil && *def.Privileged,
		DNSServers:     def.DnsServers,
		DNSSearch:      def.DnsSearchDomains,
	}
	if def.Memory != nil {
		s.MemoryLimit = int64(*def.Memory) << 20
	}
	if def.MemoryReservation != nil {
		s.MemoryReservation = int64(*def.MemoryReservation) << 20
	}
	for _, u := range def.Ulimits {
		s.Ulimits = append(s.Ulimits, runtime.Ulimit{Name: string(u.Name), Soft: int64(u.SoftLimit), Hard: int64(u.HardLimit)})
	}
	if lp := def.LinuxParameters; lp != nil {
		s.Init = lp.InitProcessEnabled != nil && *lp.InitProcessEnabled
		if c := lp.Capabilities; c != nil {
			s.CapAdd, s.CapDrop = c.Add, c.Drop
		}
	}
	for _, sc := range def.SystemControls {
		if s.Sysctls == nil {
			s.Sysctls = map[string]string{}
		}
		s.Sysctls[sc.Namespace] = sc.Value
	}
	for _, h := range def.ExtraHosts {
		s.ExtraHosts = append(s.ExtraHosts, h.Hostname+":"+h.IpAddress)
	}

	// Labels: the definition's, then the standard ones, which win.
	s.Labels = maps.Clone(def.DockerLabels)
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	maps.Copy(s.Labels, taskLabels(dt, env, def.Name))

	// Networking.
	metadataAddr := env.metadataBridge
	switch p.networkMode {
	case ecstypes.NetworkModeBridge:
		s.NetworkMode = "bridge"
		if def.DisableNetworking != nil && *def.DisableNetworking {
			s.NetworkMode = "none"
		}
		for _, pm := range def.PortMappings {
			if pm.ContainerPort == nil {
				continue
			}
			// Publish on IPv4 only, as ECS reports bindings (bindIP 0.0.0.0).
			// With no host IP, Docker 20.10 publishes IPv4 and IPv6 apart and
			// can give a dynamic port a different number on each, so the
			// reported port could lead to another container.
			pb := runtime.PortBinding{ContainerPort: uint16(*pm.ContainerPort), Protocol: protocolOf(pm.Protocol), HostIP: "0.0.0.0"}
			if pm.HostPort != nil {
				pb.HostPort = uint16(*pm.HostPort)
			}
			s.PortBindings = append(s.PortBindings, pb)
		}
		if env.metadataAlias != "" && s.NetworkMode == "bridge" {
			s.ExtraHosts = append(s.ExtraHosts, env.metadataAlias+":host-gateway")
		}
	case ecstypes.NetworkModeHost:
		s.NetworkMode = "host"
		metadataAddr = env.metadataHost
	case ecstypes.NetworkModeNone:
		s.NetworkMode = "none"
	case ecstypes.NetworkModeAwsvpc:
		if def.DisableNetworking != nil && *def.DisableNetworking {
			return cp, unsupported("disableNetworking is not supported with the awsvpc network mode (container %q)", def.Name)
		}
		// NetworkMode "container:<pause id>" is filled in at create time.
	}

	// Environment: the definition's (with overrides), then the agent's.
	env2 := mergeEnv(def.Environment, []ecstypes.KeyValuePair{
		{Name: "ECS_CONTAINER_METADATA_URI_V4", Value: "http://" + metadataAddr + "/v4/" + env.tokens[def.Name]},
		{Name: "ECS_CONTAINER_METADATA_URI", Value: "http://" + metadataAddr + "/v3/" + env.tokens[def.Name]},
		{Name: "AWS_EXECUTION_ENV", Value: "AWS_ECS_EC2"},
	})
	for _, kv := range env2 {
		s.Env = append(s.Env, kv.Name+"="+kv.Value)
	}

	// Storage.
	for _, mp := range def.MountPoints {
		vp, ok := vols[mp.SourceVolume]
		if !ok {
			return cp, fmt.Errorf("container %q mounts unknown volume %q", def.Name, mp.SourceVolume)
		}
		m := runtime.Mount{Type: vp.mountType, Source: vp.source, Target: mp.ContainerPath, ReadOnly: mp.ReadOnly != nil && *mp.ReadOnly}
		s.Mounts = append(s.Mounts, m)
	}
	cp.mounts = s.Mounts

	if lc := def.LogConfiguration; lc != nil {
		s.LogDriver, s.LogOptions = string(lc.LogDriver), lc.Options
	}
	if cp.hasHealthCheck {
		hc := def.HealthCheck
		s.Healthcheck = &runtime.Healthcheck{
			Test:        hc.Command,
			Interval:    seconds(hc.Interval, defaultHealthInterval),
			Timeout:     seconds(hc.Timeout, defaultHealthTimeout),
			StartPeriod: seconds(hc.StartPeriod, 0),
			Retries:     int(deref(hc.Retries, defaultHealthRetries)),
		}
	}
	cp.spec = s
	return cp, nil
}

func protocolOf(p ecstypes.TransportProtocol) string {
	if p == "" {
		return "tcp"
	}
	return string(p)
}

func seconds(v *int32, def int32) time.Duration {
	return time.Duration(deref(v, def)) * time.Second
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// startOrder sorts containers so that each comes after its dependencies
// (dependsOn and volumesFrom), keeping definition order among equals.
func startOrder(cs []containerPlan) ([]int, error) {
	index := map[string]int{}
	for i, c := range cs {
		index[c.def.Name] = i
	}
	deps := make([][]int, len(cs))
	for i, c := range cs {
		for _, d := range c.def.DependsOn {
			j, ok := index[d.ContainerName]
			if !ok {
				return nil, fmt.Errorf("container %q depends on unknown container %q", c.def.Name, d.ContainerName)
			}
			switch d.Condition {
			case ecstypes.ContainerConditionStart, ecstypes.ContainerConditionComplete,
				ecstypes.ContainerConditionSuccess, ecstypes.ContainerConditionHealthy:
			default:
				return nil, fmt.Errorf("container %q: unknown dependency condition %q", c.def.Name, d.Condition)
			}
			deps[i] = append(deps[i], j)
		}
		for _, vf := range c.volumesFrom {
			j, ok := index[vf.SourceContainer]
			if !ok {
				return nil, fmt.Errorf("container %q takes volumes from unknown container %q", c.def.Name, vf.SourceContainer)
			}
			deps[i] = append(deps[i], j)
		}
	}
	done := make([]bool, len(cs))
	var order []int
	for len(order) < len(cs) {
		progressed := false
		for i := range cs {
			if done[i] {
				continue
			}
			ready := true
			for _, j := range deps[i] {
				ready = ready && done[j]
			}
			if ready {
				done[i], progressed = true, true
				order = append(order, i)
			}
		}
		if !progressed {
			return nil, fmt.Errorf("the containers' dependencies form a cycle")
		}
	}
	return order, nil
}

// atoi reads a task-level cpu or memory, which the control plane stores as
// whole CPU units and MiB ("1 vCPU" is registered as "1024"); "" is 0.
func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}

// metadataAddrs works out the host:port containers use for the metadata
// server listening on ln: host-mode containers share the host's loopback;
// bridge containers go through the bridge gateway, named by alias unless
// an explicit host is configured.
func metadataAddrs(listen net.Addr, configuredHost string) (bridge, host, alias string) {
	h, port, _ := net.SplitHostPort(listen.String())
	ip := net.ParseIP(h)
	host = net.JoinHostPort("127.0.0.1", port)
	if ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		host = net.JoinHostPort(h, port)
	}
	if configuredHost != "" {
		return net.JoinHostPort(configuredHost, port), host, ""
	}
	return net.JoinHostPort(DefaultMetadataAlias, port), host, DefaultMetadataAlias
}
