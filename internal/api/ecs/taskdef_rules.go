package ecs

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
)

// Limits and defaults of task definitions, as the ECS documentation gives them.
const (
	maxContainers      = 10
	maxTaskDefBytes    = 64 << 10
	minContainerMemory = 6 // MiB; Docker reserves at least this much per container
	minTaskCPU         = 128
	maxTaskCPU         = 196608
	maxPlacementRules  = 10

	healthIntervalDefault, healthIntervalMin, healthIntervalMax = 30, 5, 300
	healthTimeoutDefault, healthTimeoutMin, healthTimeoutMax    = 5, 2, 120
	healthRetriesDefault, healthRetriesMin, healthRetriesMax    = 3, 1, 10
	healthStartPeriodMin, healthStartPeriodMax                  = 0, 300
)

// fargateSizes maps each Fargate task CPU to the task memory values it allows.
var fargateSizes = map[int][]int{
	256:   {512, 1024, 2048},
	512:   steps(1024, 4096, 1024),
	1024:  steps(2048, 8192, 1024),
	2048:  steps(4096, 16384, 1024),
	4096:  steps(8192, 30720, 1024),
	8192:  steps(16384, 61440, 4096),
	16384: steps(32768, 122880, 8192),
}

func steps(from, to, by int) []int {
	var out []int
	for v := from; v <= to; v += by {
		out = append(out, v)
	}
	return out
}

var (
	cpuRE    = regexp.MustCompile(`^(?i)\s*([0-9]*\.?[0-9]+)\s*(vcpu)?\s*$`)
	memoryRE = regexp.MustCompile(`^(?i)\s*([0-9]*\.?[0-9]+)\s*(gb|mb|mib|gib)?\s*$`)
)

// parseTaskCPU turns "1024", "1 vCPU" or "0.25 vcpu" into CPU units.
func parseTaskCPU(s string) (int, error) {
	m := cpuRE.FindStringSubmatch(s)
	if m == nil {
		return 0, clientErr("Invalid 'cpu' setting for task: %q is neither CPU units (1024) nor vCPUs (1 vCPU).", s)
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	if m[2] != "" {
		f *= 1024
	}
	if f != math.Trunc(f) || f > math.MaxInt32 {
		return 0, clientErr("Invalid 'cpu' setting for task: %q is not a whole number of CPU units.", s)
	}
	return int(f), nil
}

// parseTaskMemory turns "2048", "2GB" or "2 GB" into MiB.
func parseTaskMemory(s string) (int, error) {
	m := memoryRE.FindStringSubmatch(s)
	if m == nil {
		return 0, clientErr("Invalid 'memory' setting for task: %q is neither MiB (2048) nor GB (2 GB).", s)
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	if u := strings.ToLower(m[2]); u == "gb" || u == "gib" {
		f *= 1024
	}
	if f != math.Trunc(f) || f > math.MaxInt32 {
		return 0, clientErr("Invalid 'memory' setting for task: %q is not a whole number of MiB.", s)
	}
	return int(f), nil
}

// prepareTaskDefinition applies ECS's registration rules to a request and
// returns the task definition to store (without ARN, revision and status),
// with string sizes converted and defaults filled as ECS fills them.
func prepareTaskDefinition(in *ecstypes.RegisterTaskDefinitionRequest) (*ecstypes.TaskDefinition, error) {
	if !nameRE.MatchString(in.Family) {
		return nil, clientErr("Family name can have up to 255 characters. Valid characters are letters (uppercase and lowercase), numbers, hyphens, and underscores.")
	}
	if size := jsonSize(in); size > maxTaskDefBytes {
		return nil, clientErr("The task definition is %d bytes; a task definition can be at most %d bytes (64 KiB).", size, maxTaskDefBytes)
	}
	if n := len(in.ContainerDefinitions); n < 1 || n > maxContainers {
		return nil, clientErr("A task definition must have between 1 and %d container definitions; this one has %d.", maxContainers, n)
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if len(in.PlacementConstraints) > maxPlacementRules {
		return nil, clientErr("A task definition can have at most %d placement constraints.", maxPlacementRules)
	}
	for _, pc := range in.PlacementConstraints {
		if pc.Type != ecstypes.TaskDefinitionPlacementConstraintTypeMemberOf {
			return nil, clientErr("Task definition placement constraints must be of type memberOf.")
		}
	}
	td := &ecstypes.TaskDefinition{
		Family:                  in.Family,
		TaskRoleArn:             in.TaskRoleArn,
		ExecutionRoleArn:        in.ExecutionRoleArn,
		NetworkMode:             in.NetworkMode,
		ContainerDefinitions:    slices.Clone(in.ContainerDefinitions),
		Volumes:                 in.Volumes,
		PlacementConstraints:    in.PlacementConstraints,
		RequiresCompatibilities: in.RequiresCompatibilities,
		PidMode:                 in.PidMode,
		IpcMode:                 in.IpcMode,
		ProxyConfiguration:      in.ProxyConfiguration,
		InferenceAccelerators:   in.InferenceAccelerators,
		EphemeralStorage:        in.EphemeralStorage,
		RuntimePlatform:         in.RuntimePlatform,
		EnableFaultInjection:    in.EnableFaultInjection,
	}
	mode := in.NetworkMode
	if mode == "" {
		mode = ecstypes.NetworkModeBridge
	}
	var taskCPU, taskMem int
	var err error
	if in.Cpu != "" {
		if taskCPU, err = parseTaskCPU(in.Cpu); err != nil {
			return nil, err
		}
		if taskCPU < minTaskCPU || taskCPU > maxTaskCPU {
			return nil, clientErr("Invalid 'cpu' setting for task: %d CPU units is outside the supported range %d to %d.", taskCPU, minTaskCPU, maxTaskCPU)
		}
		td.Cpu = strconv.Itoa(taskCPU)
	}
	if in.Memory != "" {
		if taskMem, err = parseTaskMemory(in.Memory); err != nil {
			return nil, err
		}
		if taskMem < minContainerMemory {
			return nil, clientErr("Invalid 'memory' setting for task: %d MiB is below the minimum of %d MiB.", taskMem, minContainerMemory)
		}
		td.Memory = strconv.Itoa(taskMem)
	}
	if slices.Contains(in.RequiresCompatibilities, ecstypes.CompatibilityFargate) {
		if err := checkFargate(in, mode, taskCPU, taskMem); err != nil {
			return nil, err
		}
	}
	for _, c := range in.ContainerDefinitions {
		if len(c.Secrets) > 0 && in.ExecutionRoleArn == "" {
			return nil, clientErr("When you are specifying container secrets, you must also specify a value for 'executionRoleArn'.")
		}
		if c.Hostname != "" && mode == ecstypes.NetworkModeAwsvpc {
			return nil, clientErr("hostname is not supported on container when networkMode=awsvpc.")
		}
	}
	if err := checkVolumes(td.Volumes); err != nil {
		return nil, err
	}
	if err := prepareContainers(td, mode, taskCPU, taskMem); err != nil {
		return nil, err
	}
	td.Compatibilities = compatibilities(mode, taskCPU, taskMem)
	td.RequiresAttributes = requiredAttributes(td, mode)
	fillEmptyLists(td)
	return td, nil
}

// checkFargate applies the rules for task definitions that require FARGATE,
// in ECS's order and words.
func checkFargate(in *ecstypes.RegisterTaskDefinitionRequest, mode ecstypes.NetworkMode, taskCPU, taskMem int) error {
	switch {
	case mode != ecstypes.NetworkModeAwsvpc:
		return clientErr("Fargate only supports network mode ‘awsvpc’.")
	case taskCPU == 0:
		return clientErr("Fargate requires that 'cpu' be defined at the task level.")
	case taskMem == 0:
		return clientErr("Fargate requires that 'memory' be defined at the task level.")
	case !slices.Contains(fargateSizes[taskCPU], taskMem):
		return clientErr("No Fargate configuration exists for given values: %d CPU, %d memory. See the Amazon ECS documentation for supported values.", taskCPU, taskMem)
	case in.IpcMode != "":
		return clientErr("Tasks using the Fargate launch type do not support ipcMode.")
	case len(in.PlacementConstraints) > 0:
		return clientErr("Fargate does not support task placement constraints.")
	}
	for _, v := range in.Volumes {
		if v.Host != nil && v.Host.SourcePath != "" {
			return clientErr("host.sourcePath should not be set for volumes in Fargate.")
		}
	}
	for _, c := range in.ContainerDefinitions {
		if lc := c.LogConfiguration; lc != nil && lc.LogDriver == ecstypes.LogDriverAwslogs && in.ExecutionRoleArn == "" {
			return clientErr("Fargate requires task definition to have execution role ARN to support log driver awslogs.")
		}
	}
	return nil
}

// fillEmptyLists sets the lists ECS always returns, empty or not, so that
// DescribeTaskDefinition shows "portMappings": [] and friends as ECS does.
func fillEmptyLists(td *ecstypes.TaskDefinition) {
	orEmpty(&td.Volumes)
	orEmpty(&td.PlacementConstraints)
	orEmpty(&td.RequiresAttributes)
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		orEmpty(&c.PortMappings)
		orEmpty(&c.Environment)
		orEmpty(&c.MountPoints)
		orEmpty(&c.VolumesFrom)
		orEmpty(&c.SystemControls)
	}
}

func orEmpty[T any](s *[]T) {
	if *s == nil {
		*s = []T{}
	}
}

func jsonSize(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return math.MaxInt
	}
	return len(b)
}

func checkVolumes(vols []ecstypes.Volume) error {
	seen := map[string]bool{}
	for _, v := range vols {
		if v.Name == "" {
			return clientErr("Every volume needs a name.")
		}
		if !nameRE.MatchString(v.Name) {
			return clientErr("Volume name %q can have up to 255 characters. Valid characters are letters (uppercase and lowercase), numbers, hyphens, and underscores.", v.Name)
		}
		if seen[v.Name] {
			return clientErr("Volume name %q is used more than once.", v.Name)
		}
		seen[v.Name] = true
		if v.Host != nil && v.DockerVolumeConfiguration != nil {
			return clientErr("Volume %q cannot set both host and dockerVolumeConfiguration.", v.Name)
		}
	}
	return nil
}

// prepareContainers checks each container and the task's containers
// together, and fills ECS's defaults.
func prepareContainers(td *ecstypes.TaskDefinition, mode ecstypes.NetworkMode, taskCPU, taskMem int) error {
	names := map[string]bool{}
	for _, c := range td.ContainerDefinitions {
		if c.Name == "" {
			return clientErr("Container.name should not be null or empty.")
		}
		if !nameRE.MatchString(c.Name) {
			return clientErr("Container name %q can have up to 255 characters. Valid characters are letters (uppercase and lowercase), numbers, hyphens, and underscores.", c.Name)
		}
		if names[c.Name] {
			return clientErr("Container names must be unique within a task definition: %q is used more than once.", c.Name)
		}
		names[c.Name] = true
	}
	volumes := map[string]bool{}
	for _, v := range td.Volumes {
		volumes[v.Name] = true
	}
	var sumCPU, sumReserve int
	essential := false
	type hostPort struct {
		port  int32
		proto ecstypes.TransportProtocol
	}
	usedHostPorts := map[hostPort]string{}
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		bad := func(format string, args ...any) error {
			return clientErr("Invalid setting for container '%s'. %s", c.Name, fmt.Sprintf(format, args...))
		}
		if strings.TrimSpace(c.Image) == "" {
			return clientErr("Container.image should not be null or empty.")
		}
		if c.Essential == nil {
			c.Essential = ptr(true)
		}
		essential = essential || *c.Essential
		if c.Cpu < 0 {
			return bad("'cpu' must not be negative.")
		}
		sumCPU += int(c.Cpu)
		if c.Memory == nil && c.MemoryReservation == nil && taskMem == 0 {
			return bad("At least one of 'memory' or 'memoryReservation' must be specified.")
		}
		if c.Memory != nil {
			if *c.Memory < minContainerMemory {
				return bad("'memory' must be at least %d MiB.", minContainerMemory)
			}
			if taskMem > 0 && int(*c.Memory) > taskMem {
				return clientErr("The 'memory' setting for container '%s' is greater than for the task.", c.Name)
			}
		}
		if c.MemoryReservation != nil {
			if *c.MemoryReservation < minContainerMemory {
				return bad("'memoryReservation' must be at least %d MiB.", minContainerMemory)
			}
			if c.Memory != nil && *c.MemoryReservation > *c.Memory {
				return bad("'memory' must be greater than or equal to 'memoryReservation'.")
			}
			sumReserve += int(*c.MemoryReservation)
		} else if c.Memory != nil {
			sumReserve += int(*c.Memory)
		}
		if len(c.Links) > 0 && mode != ecstypes.NetworkModeBridge {
			return bad("Links are only supported when networkMode is bridge.")
		}
		if mode == ecstypes.NetworkModeNone && len(c.PortMappings) > 0 {
			return bad("Port mappings are not allowed when networkMode is none.")
		}
		for j := range c.PortMappings {
			pm := &c.PortMappings[j]
			if pm.ContainerPort == nil && pm.ContainerPortRange == "" {
				return bad("Each port mapping needs a containerPort or a containerPortRange.")
			}
			if pm.ContainerPort != nil && (*pm.ContainerPort < 1 || *pm.ContainerPort > 65535) {
				return bad("containerPort %d is outside 1 to 65535.", *pm.ContainerPort)
			}
			if pm.HostPort != nil && (*pm.HostPort < 0 || *pm.HostPort > 65535) {
				return bad("hostPort %d is outside 0 to 65535.", *pm.HostPort)
			}
			if pm.Protocol == "" {
				pm.Protocol = ecstypes.TransportProtocolTcp
			}
			if (mode == ecstypes.NetworkModeAwsvpc || mode == ecstypes.NetworkModeHost) && pm.ContainerPort != nil {
				if pm.HostPort != nil && *pm.HostPort != *pm.ContainerPort && *pm.HostPort != 0 {
					return clientErr("When networkMode=%s, the host ports and container ports in port mappings must match.", mode)
				}
				pm.HostPort = ptr(*pm.ContainerPort)
			}
			if pm.HostPort != nil && *pm.HostPort != 0 {
				k := hostPort{*pm.HostPort, pm.Protocol}
				if other, ok := usedHostPorts[k]; ok {
					return clientErr("Host port %d/%s is mapped twice in the task (containers '%s' and '%s').", *pm.HostPort, pm.Protocol, other, c.Name)
				}
				usedHostPorts[k] = c.Name
			}
		}
		for _, mp := range c.MountPoints {
			if !volumes[mp.SourceVolume] {
				return bad("Unknown volume '%s' in mountPoints: declare it in the task definition's volumes.", mp.SourceVolume)
			}
			if mp.ContainerPath == "" {
				return bad("Every mount point needs a containerPath.")
			}
		}
		for _, vf := range c.VolumesFrom {
			if !names[vf.SourceContainer] || vf.SourceContainer == c.Name {
				return bad("volumesFrom names container '%s', which is not another container of this task.", vf.SourceContainer)
			}
		}
		for _, d := range c.DependsOn {
			if !names[d.ContainerName] || d.ContainerName == c.Name {
				return bad("dependsOn names container '%s', which is not another container of this task.", d.ContainerName)
			}
		}
		if hc := c.HealthCheck; hc != nil {
			if err := prepareHealthCheck(c.Name, hc); err != nil {
				return err
			}
		}
	}
	if !essential {
		return clientErr("A task definition must have at least one essential container.")
	}
	if err := checkDependencyGraph(td.ContainerDefinitions); err != nil {
		return err
	}
	if taskCPU > 0 && sumCPU > taskCPU {
		return clientErr("The sum of the containers' cpu (%d) is greater than the task cpu (%d).", sumCPU, taskCPU)
	}
	if taskMem > 0 && sumReserve > taskMem {
		return clientErr("The memory reserved by the containers (%d MiB: each container's memoryReservation, else its memory) is greater than the task memory (%d MiB).", sumReserve, taskMem)
	}
	return nil
}

// prepareHealthCheck checks a container health check's ranges and fills
// ECS's defaults (interval 30, timeout 5, retries 3, startPeriod 0).
func prepareHealthCheck(container string, hc *ecstypes.HealthCheck) error {
	bad := func(format string, args ...any) error {
		return clientErr("Invalid health check for container '%s'. %s", container, fmt.Sprintf(format, args...))
	}
	if len(hc.Command) == 0 {
		return bad("'command' is required.")
	}
	switch hc.Command[0] {
	case "CMD", "CMD-SHELL", "NONE":
	default:
		return bad("'command' must start with CMD, CMD-SHELL or NONE, not %q.", hc.Command[0])
	}
	fill := func(field string, p **int32, def, min, max int32) error {
		if *p == nil {
			*p = ptr(def)
			return nil
		}
		if **p < min || **p > max {
			return bad("'%s' must be between %d and %d seconds; it is %d.", field, min, max, **p)
		}
		return nil
	}
	if err := fill("interval", &hc.Interval, healthIntervalDefault, healthIntervalMin, healthIntervalMax); err != nil {
		return err
	}
	if err := fill("timeout", &hc.Timeout, healthTimeoutDefault, healthTimeoutMin, healthTimeoutMax); err != nil {
		return err
	}
	if err := fill("retries", &hc.Retries, healthRetriesDefault, healthRetriesMin, healthRetriesMax); err != nil {
		return err
	}
	if hc.StartPeriod != nil && (*hc.StartPeriod < healthStartPeriodMin || *hc.StartPeriod > healthStartPeriodMax) {
		return bad("'startPeriod' must be between %d and %d seconds; it is %d.", healthStartPeriodMin, healthStartPeriodMax, *hc.StartPeriod)
	}
	return nil
}

// checkDependencyGraph refuses dependsOn cycles, which could never start,
// and HEALTHY conditions on containers without a health check.
func checkDependencyGraph(cs []ecstypes.ContainerDefinition) error {
	byName := map[string]*ecstypes.ContainerDefinition{}
	for i := range cs {
		byName[cs[i].Name] = &cs[i]
	}
	const (
		unvisited = iota
		visiting
		done
	)
	mark := map[string]int{}
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch mark[name] {
		case visiting:
			return clientErr("Container dependencies form a cycle: %s.", strings.Join(append(path, name), " -> "))
		case done:
			return nil
		}
		mark[name] = visiting
		for _, d := range byName[name].DependsOn {
			if d.Condition == ecstypes.ContainerConditionHealthy && byName[d.ContainerName].HealthCheck == nil {
				return clientErr("Container '%s' depends on container '%s' being HEALTHY, but '%s' has no health check.", name, d.ContainerName, d.ContainerName)
			}
			if err := visit(d.ContainerName, append(path, name)); err != nil {
				return err
			}
		}
		mark[name] = done
		return nil
	}
	for _, c := range cs {
		if err := visit(c.Name, nil); err != nil {
			return err
		}
	}
	return nil
}

// compatibilities are the launch types a task definition can run on, as ECS
// computes and orders them: EXTERNAL outside awsvpc, EC2 always, FARGATE for
// awsvpc definitions with a valid Fargate size.
func compatibilities(mode ecstypes.NetworkMode, cpu, mem int) []ecstypes.Compatibility {
	var out []ecstypes.Compatibility
	if mode != ecstypes.NetworkModeAwsvpc {
		out = append(out, ecstypes.CompatibilityExternal)
	}
	out = append(out, ecstypes.CompatibilityEc2)
	if mode == ecstypes.NetworkModeAwsvpc && slices.Contains(fargateSizes[cpu], mem) {
		out = append(out, ecstypes.CompatibilityFargate)
	}
	return out
}

// requiredAttributes are the agent capabilities an instance needs to run
// the task definition, named as the ECS agent advertises them.
func requiredAttributes(td *ecstypes.TaskDefinition, mode ecstypes.NetworkMode) []ecstypes.Attribute {
	set := map[string]bool{}
	if mode == ecstypes.NetworkModeAwsvpc {
		set["ecs.capability.task-eni"] = true
	}
	if td.TaskRoleArn != "" {
		set["com.amazonaws.ecs.capability.task-iam-role"] = true
	}
	for _, c := range td.ContainerDefinitions {
		if c.HealthCheck != nil {
			set["ecs.capability.container-health-check"] = true
		}
		if len(c.DependsOn) > 0 {
			set["ecs.capability.container-ordering"] = true
		}
		if len(c.DockerLabels) > 0 || len(c.Ulimits) > 0 {
			set["com.amazonaws.ecs.capability.docker-remote-api.1.18"] = true
		}
		if c.MemoryReservation != nil {
			set["com.amazonaws.ecs.capability.docker-remote-api.1.21"] = true
		}
		if lc := c.LogConfiguration; lc != nil && lc.LogDriver != "" {
			set["com.amazonaws.ecs.capability.logging-driver."+string(lc.LogDriver)] = true
			if lc.LogDriver == ecstypes.LogDriverAwslogs && td.ExecutionRoleArn != "" {
				set["ecs.capability.execution-role-awslogs"] = true
			}
		}
		if c.RepositoryCredentials != nil {
			set["com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager"] = true
		}
		if len(c.Secrets) > 0 {
			set["ecs.capability.secrets.asm.environment-variables"] = true
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]ecstypes.Attribute, len(names))
	for i, n := range names {
		out[i] = ecstypes.Attribute{Name: n}
	}
	return out
}
