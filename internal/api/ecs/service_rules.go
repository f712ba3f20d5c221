package ecs

import (
	"slices"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/launch"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// serviceOptions are the members CreateService and UpdateService share that
// Berth either checks or refuses as not supported yet.
type serviceOptions struct {
	launchType      ecstypes.LaunchType
	capacity        []ecstypes.CapacityProviderStrategyItem
	exec            bool
	volumes         bool
	loadBalancers   []ecstypes.LoadBalancer
	registries      []ecstypes.ServiceRegistry
	serviceConnect  *ecstypes.ServiceConnectConfiguration
	lattice         []ecstypes.VpcLatticeConfiguration
	controller      *ecstypes.DeploymentController
	platformVersion string
	monitoring      *ecstypes.MonitoringConfiguration
	azRebalancing   ecstypes.AvailabilityZoneRebalancing
	managedTags     bool
	gracePeriod     *int32
}

// check refuses, each with a message naming it, the service features Berth
// does not have yet: none is accepted and then ignored.
func (o serviceOptions) check() error {
	if err := checkLaunch(o.launchType, o.capacity, o.exec, o.volumes); err != nil {
		return err
	}
	switch {
	case len(o.registries) > 0:
		return invalidParam("serviceRegistries (Cloud Map service discovery) are not supported yet.")
	case o.serviceConnect != nil && o.serviceConnect.Enabled:
		return invalidParam("Service Connect is not supported yet: Berth does not provide Cloud Map namespaces.")
	case len(o.lattice) > 0:
		return invalidParam("vpcLatticeConfigurations are not supported.")
	case o.controller != nil && o.controller.Type != "" && o.controller.Type != ecstypes.DeploymentControllerTypeEcs:
		return invalidParam("deploymentController %s is not supported yet: Berth services use the rolling update (ECS) deployment controller.", o.controller.Type)
	case o.platformVersion != "":
		return invalidParam("platformVersion applies to the FARGATE launch type, which is not supported yet.")
	case o.monitoring != nil && len(o.monitoring.MetricConfigurations) > 0:
		return invalidParam("monitoring (CloudWatch metric resolution) is not supported yet.")
	case o.azRebalancing == ecstypes.AvailabilityZoneRebalancingEnabled:
		return invalidParam("availabilityZoneRebalancing ENABLED is not supported yet: Berth does not balance tasks across Availability Zones.")
	case o.managedTags:
		return invalidParam("enableECSManagedTags is not supported yet: Berth does not add the aws:ecs: managed tags to tasks.")
	case o.gracePeriod != nil && *o.gracePeriod < 0:
		return invalidParam("healthCheckGracePeriodSeconds must be between 0 and 2147483647.")
	}
	return nil
}

// checkLoadBalancers applies ECS's rules to a service's loadBalancers: at
// most 5, each a target group (Classic Load Balancers are not supported)
// that exists and is attached to a load balancer, naming a container and a
// port of the task definition, with a target type the network mode can
// use (ip with awsvpc, instance otherwise).
func checkLoadBalancers(tx store.ReadTx, arns state.ARNs, td *ecstypes.TaskDefinition, lbs []ecstypes.LoadBalancer) error {
	if len(lbs) > 5 {
		return invalidParam("A service can use at most 5 target groups (loadBalancers).")
	}
	seen := map[string]bool{}
	for _, l := range lbs {
		if l.LoadBalancerName != "" {
			return invalidParam("loadBalancerName names a Classic Load Balancer, which Berth does not provide: use targetGroupArn with an Application Load Balancer.")
		}
		if l.TargetGroupArn == "" {
			return invalidParam("targetGroupArn is required in loadBalancers.")
		}
		if l.ContainerName == "" || l.ContainerPort == nil {
			return invalidParam("containerName and containerPort are required in loadBalancers.")
		}
		key := l.TargetGroupArn + "/" + l.ContainerName + "/" + strconv.Itoa(int(*l.ContainerPort))
		if seen[key] {
			return invalidParam("The same target group, container name and port are given more than once in loadBalancers.")
		}
		seen[key] = true
		tg, ok, err := state.GetTargetGroup(tx, arns, l.TargetGroupArn)
		if err != nil {
			return err
		}
		if !ok {
			return invalidParam("The target group with targetGroupArn %s does not exist.", l.TargetGroupArn)
		}
		if len(tg.LoadBalancerArns) == 0 {
			return invalidParam("The target group with targetGroupArn %s does not have an associated load balancer.", l.TargetGroupArn)
		}
		mode := td.NetworkMode
		if mode == "" {
			mode = ecstypes.NetworkModeBridge
		}
		switch {
		case tg.TargetType == elbv2types.TargetTypeEnumIp && mode != ecstypes.NetworkModeAwsvpc:
			return invalidParam("The provided target group %s has target type ip, which is incompatible with the %s network mode specified in the task definition.", l.TargetGroupArn, mode)
		case tg.TargetType == elbv2types.TargetTypeEnumInstance && mode == ecstypes.NetworkModeAwsvpc:
			return invalidParam("The provided target group %s has target type instance, which is incompatible with the awsvpc network mode specified in the task definition.", l.TargetGroupArn)
		}
		var found *ecstypes.ContainerDefinition
		for i := range td.ContainerDefinitions {
			if td.ContainerDefinitions[i].Name == l.ContainerName {
				found = &td.ContainerDefinitions[i]
			}
		}
		if found == nil {
			return invalidParam("The container %s does not exist in the task definition.", l.ContainerName)
		}
		if !slices.ContainsFunc(found.PortMappings, func(pm ecstypes.PortMapping) bool {
			return pm.ContainerPort != nil && *pm.ContainerPort == *l.ContainerPort
		}) {
			return invalidParam("The container %s did not have a container port %d defined.", l.ContainerName, *l.ContainerPort)
		}
	}
	return nil
}

// checkPlacement applies ECS's placement limits, and that a DAEMON service
// (one task per instance) takes no placement strategy.
func checkPlacement(daemon bool, cs []ecstypes.PlacementConstraint, ss []ecstypes.PlacementStrategy) error {
	if daemon && len(ss) > 0 {
		return invalidParam("Placement strategies are not supported with DAEMON scheduling strategy.")
	}
	_, _, err := launch.PlacementRules(cs, ss)
	return err
}

// checkClientToken applies the model's rule for CreateService's clientToken:
// up to 36 ASCII characters in the range 33-126.
func checkClientToken(t string) error {
	if len(t) > 36 || strings.IndexFunc(t, func(r rune) bool { return r < 33 || r > 126 }) >= 0 {
		return invalidParam("clientToken can have up to 36 ASCII characters in the range 33-126.")
	}
	return nil
}

// checkDesiredCount applies the scheduling strategy's rule: a REPLICA
// service keeps desiredCount tasks; a DAEMON service runs one task on each
// instance, so the scheduler, not the caller, sets its count.
func checkDesiredCount(daemon bool, n *int32, required bool) error {
	switch {
	case daemon && n != nil && *n != 0:
		return invalidParam("desiredCount cannot be set for a service with the DAEMON scheduling strategy: it runs one task on each container instance.")
	case !daemon && n == nil && required:
		return invalidParam("desiredCount is required for a service with the REPLICA scheduling strategy.")
	case n != nil && *n < 0:
		return invalidParam("desiredCount must be 0 or more.")
	}
	return nil
}

// mergeDeploymentConfiguration applies the members given in a request over
// the service's configuration (nil for a new service) and checks the result.
// Members not given keep their value; the result is complete once
// deploy.Defaults has filled it.
func mergeDeploymentConfiguration(have, in *ecstypes.DeploymentConfiguration, daemon bool) (*ecstypes.DeploymentConfiguration, error) {
	out := &ecstypes.DeploymentConfiguration{}
	if have != nil {
		c := *have
		out = &c
	}
	if in == nil {
		return out, nil
	}
	if err := checkDeploymentRequest(in, daemon); err != nil {
		return nil, err
	}
	if in.MaximumPercent != nil {
		out.MaximumPercent = in.MaximumPercent
	}
	if in.MinimumHealthyPercent != nil {
		out.MinimumHealthyPercent = in.MinimumHealthyPercent
	}
	if in.DeploymentCircuitBreaker != nil {
		out.DeploymentCircuitBreaker = in.DeploymentCircuitBreaker
	}
	if in.Alarms != nil {
		out.Alarms = in.Alarms
	}
	if in.Strategy != "" {
		out.Strategy = in.Strategy
	}
	return out, nil
}

// checkDeploymentRequest checks the members of one request's
// deploymentConfiguration.
func checkDeploymentRequest(dc *ecstypes.DeploymentConfiguration, daemon bool) error {
	if p := dc.MinimumHealthyPercent; p != nil && (*p < 0 || *p > 100) {
		return invalidParam("minimumHealthyPercent must be between 0 and 100.")
	}
	if p := dc.MaximumPercent; p != nil {
		if *p < 0 {
			return invalidParam("maximumPercent must be 0 or more.")
		}
		if daemon && *p > deploy.DaemonMaximumPercent {
			// ECS's own wording (seen through CloudFormation in aws/aws-cdk#2209).
			return invalidParam("The daemon scheduling strategy does not support values above 100 for maximumPercent on a deployment configuration. Change the maximumPercent value to 100, and try again")
		}
	}
	if s := dc.Strategy; s != "" && s != ecstypes.DeploymentStrategyRolling {
		return invalidParam("deploymentConfiguration.strategy %s is not supported yet: Berth deploys services with the ROLLING strategy.", s)
	}
	switch {
	case dc.Alarms != nil && dc.Alarms.Enable:
		return invalidParam("deploymentConfiguration.alarms is not supported yet: Berth has no CloudWatch alarms.")
	case len(dc.LifecycleHooks) > 0:
		return invalidParam("deploymentConfiguration.lifecycleHooks are not supported yet.")
	case dc.BakeTimeInMinutes != nil:
		return invalidParam("deploymentConfiguration.bakeTimeInMinutes applies to the BLUE_GREEN, LINEAR and CANARY strategies, which are not supported yet.")
	case dc.LinearConfiguration != nil:
		return invalidParam("deploymentConfiguration.linearConfiguration applies to the LINEAR strategy, which is not supported yet.")
	case dc.CanaryConfiguration != nil:
		return invalidParam("deploymentConfiguration.canaryConfiguration applies to the CANARY strategy, which is not supported yet.")
	}
	if cb := dc.DeploymentCircuitBreaker; cb != nil {
		if cb.ResetOnHealthyTask != nil && !*cb.ResetOnHealthyTask {
			return invalidParam("deploymentCircuitBreaker.resetOnHealthyTask false is not supported yet: a task that reaches a healthy state resets the failure count.")
		}
		// Only ECS's default threshold, which deploy.Threshold computes.
		if tc := cb.ThresholdConfiguration; tc != nil && ((tc.Type != "" && tc.Type != ecstypes.ThresholdTypeBoundedPercent) || (tc.Value != 0 && tc.Value != 50)) {
			return invalidParam("deploymentCircuitBreaker.thresholdConfiguration is not supported yet: Berth uses ECS's default threshold (BOUNDED_PERCENT, 50).")
		}
	}
	return nil
}

// checkBounds checks a complete (defaulted) configuration: the rollout needs
// room between its lower and upper limit.
func checkBounds(dc *ecstypes.DeploymentConfiguration) error {
	if dc.MinimumHealthyPercent != nil && dc.MaximumPercent != nil && *dc.MinimumHealthyPercent > *dc.MaximumPercent {
		return invalidParam("minimumHealthyPercent (%d) cannot be greater than maximumPercent (%d).", *dc.MinimumHealthyPercent, *dc.MaximumPercent)
	}
	return nil
}
