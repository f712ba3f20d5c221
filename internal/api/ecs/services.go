package ecs

import (
	"context"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/launch"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// Services: the API records what the caller asked for (desired count,
// task definition, deployment configuration) and starts deployments with
// package deploy; the service controller does the rest, reading the stored
// service: it starts and stops tasks, keeps the counts, deployments and
// events, and moves a DRAINING service to INACTIVE once its tasks are gone.
//
//	CreateService ──▶ ACTIVE ──DeleteService──▶ DRAINING ──(no tasks left)──▶ INACTIVE
//
// Every write through the API bumps Generation, so the controller can tell
// a new request from its own writes.

func serviceNotFound() error { return ecstypes.NewServiceNotFoundException("Service not found.") }

func serviceNotActive() error {
	return ecstypes.NewServiceNotActiveException("Service was not ACTIVE.")
}

func notIdempotent() error { return invalidParam("Creation of service was not idempotent.") }

const serviceNameRule = "Service name can have up to 255 characters. Valid characters are letters (uppercase and lowercase), numbers, hyphens, and underscores."

// CreateService records a new service and its first deployment. A name may
// be reused once the service of that name is INACTIVE; while it is ACTIVE or
// DRAINING, ECS answers that the creation was not idempotent. A retry with
// the same clientToken and parameters returns the service it created.
func (s *Service) CreateService(ctx context.Context, in *ecstypes.CreateServiceRequest) (*ecstypes.CreateServiceResponse, error) {
	name := in.ServiceName
	if !nameRE.MatchString(name) {
		return nil, invalidParam(serviceNameRule)
	}
	strategy := in.SchedulingStrategy
	if strategy == "" {
		strategy = ecstypes.SchedulingStrategyReplica
	}
	daemon := strategy == ecstypes.SchedulingStrategyDaemon
	opts := serviceOptions{
		launchType: in.LaunchType, capacity: in.CapacityProviderStrategy, exec: in.EnableExecuteCommand,
		volumes: len(in.VolumeConfigurations) > 0, loadBalancers: in.LoadBalancers, registries: in.ServiceRegistries,
		serviceConnect: in.ServiceConnectConfiguration, lattice: in.VpcLatticeConfigurations,
		controller: in.DeploymentController, platformVersion: in.PlatformVersion, monitoring: in.Monitoring,
		azRebalancing: in.AvailabilityZoneRebalancing, managedTags: in.EnableECSManagedTags,
		gracePeriod: in.HealthCheckGracePeriodSeconds,
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	if in.Role != "" && len(in.LoadBalancers) == 0 {
		return nil, invalidParam("role is only used with loadBalancers.")
	}
	if in.TaskDefinition == "" {
		return nil, invalidParam("taskDefinition is required for a service that uses the ECS deployment controller.")
	}
	if err := checkDesiredCount(daemon, in.DesiredCount, true); err != nil {
		return nil, err
	}
	if err := checkPlacement(daemon, in.PlacementConstraints, in.PlacementStrategy); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if err := checkClientToken(in.ClientToken); err != nil {
		return nil, err
	}
	dc, err := mergeDeploymentConfiguration(nil, in.DeploymentConfiguration, daemon)
	if err != nil {
		return nil, err
	}
	fingerprint := ""
	if in.ClientToken != "" {
		req := *in
		req.ClientToken = ""
		fingerprint = "CreateService " + jsonString(req)
	}
	caller, now := s.caller(ctx), s.now()
	var out *state.Service
	_, err = s.store.Update(ctx, func(tx store.Tx) error {
		out = nil
		cl, err := s.activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		key := state.ServiceKey(cl.ClusterName, name)
		existing, found, err := state.Get[state.Service](tx, key)
		if err != nil {
			return err
		}
		if in.ClientToken != "" {
			prev, ok, err := state.GetClientToken(tx, cl.ClusterName, in.ClientToken)
			if err != nil {
				return err
			}
			if ok {
				if prev.Request != fingerprint || !found {
					return notIdempotent()
				}
				out = existing // a retry of the call that created it
				return nil
			}
		}
		if found && existing.Status != state.ServiceInactive {
			return notIdempotent()
		}
		td, err := s.lookupTaskDefinition(tx, in.TaskDefinition)
		if err != nil {
			return err
		}
		if td.TaskDefinition.Status != tdActive {
			return clientErr("TaskDefinition is inactive")
		}
		if err := checkNetwork(&td.TaskDefinition, in.NetworkConfiguration); err != nil {
			return err
		}
		if err := checkLoadBalancers(tx, s.arns, &td.TaskDefinition, in.LoadBalancers); err != nil {
			return err
		}
		svc := &state.Service{Cluster: cl.ClusterName, Generation: 1}
		if found {
			// The name is reused: the new service starts a history of its own.
			svc.Generation = existing.Generation + 1
			if err := deleteUnder(tx, state.ServiceDeploymentsKeyPrefix(cl.ClusterName, name)); err != nil {
				return err
			}
		}
		propagate := in.PropagateTags
		if propagate == "" {
			propagate = ecstypes.PropagateTagsNone
		}
		v := &svc.Service
		v.ServiceArn = s.arns.Service(cl.ClusterName, name)
		v.ServiceName = name
		v.ClusterArn = cl.ClusterArn
		v.Status = state.ServiceActive
		if in.DesiredCount != nil && !daemon {
			v.DesiredCount = *in.DesiredCount
		}
		v.LaunchType = ecstypes.LaunchTypeEc2
		v.SchedulingStrategy = strategy
		v.DeploymentController = &ecstypes.DeploymentController{Type: ecstypes.DeploymentControllerTypeEcs}
		v.DeploymentConfiguration = dc
		v.PlacementConstraints = orEmptyCopy(in.PlacementConstraints)
		v.PlacementStrategy = orEmptyCopy(in.PlacementStrategy)
		v.NetworkConfiguration = in.NetworkConfiguration
		v.HealthCheckGracePeriodSeconds = in.HealthCheckGracePeriodSeconds
		v.AvailabilityZoneRebalancing = in.AvailabilityZoneRebalancing
		v.LoadBalancers = orEmptyCopy(in.LoadBalancers)
		v.RoleArn = in.Role
		v.ServiceRegistries = []ecstypes.ServiceRegistry{}
		v.Events = []ecstypes.ServiceEvent{}
		v.Tags = dedupeTags(in.Tags)
		v.PropagateTags = propagate
		v.CreatedAt = awsmodel.NewTime(now)
		v.CreatedBy = caller
		deploy.Defaults(svc)
		if err := checkBounds(svc.DeploymentConfiguration); err != nil {
			return err
		}
		if daemon {
			// A DAEMON service's desired count is the number of instances
			// it belongs on, known from the start (the service scheduler
			// keeps it current), so services-stable does not pass at once.
			need, err := launch.ServiceTask(&td.TaskDefinition, name, v.PlacementConstraints, nil)
			if err != nil {
				return err
			}
			list, err := s.launcher.DaemonInstances(tx, cl.ClusterName, need)
			if err != nil {
				return err
			}
			for _, di := range list {
				if di.Eligible {
					v.DesiredCount++
				}
			}
		}
		if _, err := deploy.Start(tx, s.arns, svc, td.TaskDefinition.TaskDefinitionArn, now, ""); err != nil {
			return err
		}
		if in.ClientToken != "" {
			if err := state.PutClientToken(tx, cl.ClusterName, in.ClientToken, &state.ClientToken{Request: fingerprint}, now); err != nil {
				return err
			}
		}
		out = svc
		return state.Put(tx, key, svc)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("service created", "cluster", out.Cluster, "service", out.ServiceName, "task_definition", out.TaskDefinition)
	return &ecstypes.CreateServiceResponse{Service: serviceView(out, true)}, nil
}

// UpdateService changes an ACTIVE service. A new deployment starts when the
// task definition or the network configuration changes, or when
// forceNewDeployment is set; the desired count, deployment configuration,
// placement, grace period and tag propagation change in place, as the ECS
// API reference says of each of these members.
func (s *Service) UpdateService(ctx context.Context, in *ecstypes.UpdateServiceRequest) (*ecstypes.UpdateServiceResponse, error) {
	opts := serviceOptions{
		capacity: in.CapacityProviderStrategy, exec: ptrTrue(in.EnableExecuteCommand),
		volumes: len(in.VolumeConfigurations) > 0, loadBalancers: in.LoadBalancers, registries: in.ServiceRegistries,
		serviceConnect: in.ServiceConnectConfiguration, lattice: in.VpcLatticeConfigurations,
		controller: in.DeploymentController, platformVersion: in.PlatformVersion, monitoring: in.Monitoring,
		azRebalancing: in.AvailabilityZoneRebalancing, managedTags: ptrTrue(in.EnableECSManagedTags),
		gracePeriod: in.HealthCheckGracePeriodSeconds,
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	now := s.now()
	var out *state.Service
	var deployed bool
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		out, deployed = nil, false
		_, svc, err := s.findService(tx, in.Cluster, in.Service)
		if err != nil {
			return err
		}
		if svc.Status != state.ServiceActive {
			return serviceNotActive()
		}
		daemon := svc.SchedulingStrategy == ecstypes.SchedulingStrategyDaemon
		if err := checkDesiredCount(daemon, in.DesiredCount, false); err != nil {
			return err
		}
		constraints, strategy := svc.PlacementConstraints, svc.PlacementStrategy
		if in.PlacementConstraints != nil {
			constraints = in.PlacementConstraints
		}
		if in.PlacementStrategy != nil {
			strategy = in.PlacementStrategy
		}
		if err := checkPlacement(daemon, constraints, strategy); err != nil {
			return err
		}
		dc, err := mergeDeploymentConfiguration(svc.DeploymentConfiguration, in.DeploymentConfiguration, daemon)
		if err != nil {
			return err
		}

		// What makes a new deployment.
		taskDef, network := svc.TaskDefinition, svc.NetworkConfiguration
		var def *ecstypes.TaskDefinition
		if in.TaskDefinition != "" {
			td, err := s.lookupTaskDefinition(tx, in.TaskDefinition)
			if err != nil {
				return err
			}
			if td.TaskDefinition.TaskDefinitionArn != svc.TaskDefinition {
				if td.TaskDefinition.Status != tdActive {
					return clientErr("TaskDefinition is inactive")
				}
				taskDef, def = td.TaskDefinition.TaskDefinitionArn, &td.TaskDefinition
			}
		}
		if in.NetworkConfiguration != nil && jsonString(in.NetworkConfiguration) != jsonString(svc.NetworkConfiguration) {
			network = in.NetworkConfiguration
			if def == nil {
				td, err := s.lookupTaskDefinition(tx, taskDef)
				if err != nil {
					return err
				}
				def = &td.TaskDefinition
			}
		}
		lbs := svc.LoadBalancers
		if in.LoadBalancers != nil && jsonString(in.LoadBalancers) != jsonString(svc.LoadBalancers) {
			lbs = in.LoadBalancers
			if def == nil {
				td, err := s.lookupTaskDefinition(tx, taskDef)
				if err != nil {
					return err
				}
				def = &td.TaskDefinition
			}
		}
		if def != nil {
			if err := checkNetwork(def, network); err != nil {
				return err
			}
			if err := checkLoadBalancers(tx, s.arns, def, lbs); err != nil {
				return err
			}
		}
		deployed = def != nil || in.ForceNewDeployment
		svc.LoadBalancers = orEmptyCopy(lbs)

		svc.PlacementConstraints = orEmptyCopy(constraints)
		svc.PlacementStrategy = orEmptyCopy(strategy)
		svc.DeploymentConfiguration = dc
		deploy.Defaults(svc)
		if err := checkBounds(svc.DeploymentConfiguration); err != nil {
			return err
		}
		if in.HealthCheckGracePeriodSeconds != nil {
			svc.HealthCheckGracePeriodSeconds = in.HealthCheckGracePeriodSeconds
		}
		if in.PropagateTags != "" {
			svc.PropagateTags = in.PropagateTags
		}
		if in.AvailabilityZoneRebalancing != "" {
			svc.AvailabilityZoneRebalancing = in.AvailabilityZoneRebalancing
		}
		// A daemon's count is the scheduler's (checkDesiredCount lets only 0 through).
		if in.DesiredCount != nil && !daemon && *in.DesiredCount != svc.DesiredCount {
			svc.DesiredCount = *in.DesiredCount
			if p := deploy.Primary(svc); p != nil {
				p.DesiredCount = svc.DesiredCount
				p.UpdatedAt = awsmodel.NewTime(now)
			}
			svc.Steady = false
		}
		if deployed {
			svc.NetworkConfiguration = network
			if _, err := deploy.Start(tx, s.arns, svc, taskDef, now, ""); err != nil {
				return err
			}
		}
		svc.Generation++
		out = svc
		return state.Put(tx, state.ServiceKey(svc.Cluster, svc.ServiceName), svc)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("service updated", "cluster", out.Cluster, "service", out.ServiceName, "desired_count", out.DesiredCount, "new_deployment", deployed)
	return &ecstypes.UpdateServiceResponse{Service: serviceView(out, true)}, nil
}

// DeleteService sets a service DRAINING with a desired count of 0; the
// controller stops its tasks and then makes it INACTIVE. A REPLICA service
// still scaled above 0 needs force. Deleting a service that is already
// DRAINING or INACTIVE answers it unchanged, as ECS does (aws/aws-cli#1334,
// aws/aws-sdk-js#4189); DeleteService has no ServiceNotActiveException.
func (s *Service) DeleteService(ctx context.Context, in *ecstypes.DeleteServiceRequest) (*ecstypes.DeleteServiceResponse, error) {
	now := s.now()
	var out *state.Service
	var changed bool
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		out, changed = nil, false
		_, svc, err := s.findService(tx, in.Cluster, in.Service)
		if err != nil {
			return err
		}
		out = svc
		if svc.Status != state.ServiceActive {
			return nil
		}
		if svc.SchedulingStrategy != ecstypes.SchedulingStrategyDaemon && svc.DesiredCount > 0 && !ptrTrue(in.Force) {
			return invalidParam("The service cannot be stopped while it is scaled above 0.")
		}
		svc.Status = state.ServiceDraining
		svc.DesiredCount = 0
		if p := deploy.Primary(svc); p != nil {
			p.DesiredCount = 0
			p.UpdatedAt = awsmodel.NewTime(now)
		}
		svc.Steady = false
		svc.Generation++
		changed = true
		return state.Put(tx, state.ServiceKey(svc.Cluster, svc.ServiceName), svc)
	})
	if err != nil {
		return nil, err
	}
	if changed {
		s.log.Info("service deleted", "cluster", out.Cluster, "service", out.ServiceName)
	}
	return &ecstypes.DeleteServiceResponse{Service: serviceView(out, true)}, nil
}

// DescribeServices describes up to 10 services by name or ARN, INACTIVE
// ones included; unknown ones come back as MISSING failures.
func (s *Service) DescribeServices(ctx context.Context, in *ecstypes.DescribeServicesRequest) (*ecstypes.DescribeServicesResponse, error) {
	if n := len(in.Services); n < 1 || n > 10 {
		return nil, invalidParam("services must name between 1 and 10 services.")
	}
	withTags := slices.Contains(in.Include, ecstypes.ServiceFieldTags)
	out := &ecstypes.DescribeServicesResponse{}
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		cl, err := s.activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		for _, ref := range in.Services {
			svc, ok, err := s.getService(tx, cl.ClusterName, ref)
			if err != nil {
				return err
			}
			if !ok {
				out.Failures = append(out.Failures, ecstypes.Failure{Arn: s.missingServiceARN(cl.ClusterName, ref), Reason: "MISSING"})
				continue
			}
			out.Services = append(out.Services, *serviceView(svc, withTags))
		}
		return nil
	})
	return out, err
}

func (s *Service) missingServiceARN(cluster, ref string) string {
	if state.IsARN(ref) {
		return ref
	}
	return s.arns.Service(cluster, ref)
}

// ListServices lists the ARNs of a cluster's ACTIVE services in name order
// (DRAINING and INACTIVE ones are not listed), 10 a page unless maxResults
// says otherwise.
func (s *Service) ListServices(ctx context.Context, in *ecstypes.ListServicesRequest) (*ecstypes.ListServicesResponse, error) {
	p, err := newPage(in.MaxResults, in.NextToken, 100)
	if err != nil {
		return nil, err
	}
	if in.MaxResults == nil {
		p.Limit = 10
	}
	out := &ecstypes.ListServicesResponse{}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		cl, err := s.activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		out.NextToken, err = scan(tx, state.ServicesClusterPrefix(cl.ClusterName), p, func(kv store.KV) (bool, error) {
			svc, err := state.Decode[state.Service](kv)
			if err != nil {
				return false, err
			}
			switch {
			case svc.Status != state.ServiceActive,
				in.LaunchType != "" && svc.LaunchType != in.LaunchType,
				in.SchedulingStrategy != "" && svc.SchedulingStrategy != in.SchedulingStrategy,
				// Every Berth service is managed by its creator; none is an Express service.
				in.ResourceManagementType == ecstypes.ResourceManagementTypeEcs:
				return false, nil
			}
			out.ServiceArns = append(out.ServiceArns, svc.ServiceArn)
			return true, nil
		})
		return err
	})
	return out, err
}

// ListServicesByNamespace answers NamespaceNotFoundException: Berth has no
// Cloud Map namespaces yet, so no service can be in one.
func (s *Service) ListServicesByNamespace(ctx context.Context, in *ecstypes.ListServicesByNamespaceRequest) (*ecstypes.ListServicesByNamespaceResponse, error) {
	if _, err := newPage(in.MaxResults, in.NextToken, 100); err != nil {
		return nil, err
	}
	return nil, ecstypes.NewNamespaceNotFoundException("Namespace %q not found: Berth does not provide Cloud Map namespaces yet.", in.Namespace)
}

// findService resolves a cluster and a service name or ARN to the stored
// service, in any status, or ClusterNotFoundException /
// ServiceNotFoundException.
func (s *Service) findService(tx store.ReadTx, clusterRef, ref string) (*state.Cluster, *state.Service, error) {
	cl, err := s.activeCluster(tx, clusterRef)
	if err != nil {
		return nil, nil, err
	}
	svc, ok, err := s.getService(tx, cl.ClusterName, ref)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, serviceNotFound()
	}
	return cl, svc, nil
}

// getService reads the service a name or ARN names within cluster.
func (s *Service) getService(tx store.ReadTx, cluster, ref string) (*state.Service, bool, error) {
	name, ok := s.serviceName(cluster, ref)
	if !ok {
		return nil, false, nil
	}
	return state.Get[state.Service](tx, state.ServiceKey(cluster, name))
}

// serviceName resolves a service name or ARN within cluster. A long ARN
// (service/<cluster>/<name>) must name that cluster: as in ECS, the cluster
// parameter, not the ARN, says where to look.
func (s *Service) serviceName(cluster, ref string) (string, bool) {
	if !state.IsARN(ref) {
		return ref, nameRE.MatchString(ref)
	}
	typ, rest, ok := s.arns.Resource(ref)
	if !ok || typ != "service" {
		return "", false
	}
	c, name, found := strings.Cut(rest, "/")
	if !found { // the short ARN form service/<name>
		return rest, nameRE.MatchString(rest)
	}
	return name, c == cluster && nameRE.MatchString(name)
}

// serviceView is a service as the API shows it: the ECS shape without
// Berth's bookkeeping, with the lists ECS always sends as [], and tags only
// when asked for.
func serviceView(svc *state.Service, withTags bool) *ecstypes.Service {
	v := svc.Service
	if !withTags {
		v.Tags = nil
	}
	orEmpty(&v.LoadBalancers)
	orEmpty(&v.ServiceRegistries)
	orEmpty(&v.Events)
	orEmpty(&v.PlacementConstraints)
	orEmpty(&v.PlacementStrategy)
	v.Deployments = slices.Clone(v.Deployments)
	orEmpty(&v.Deployments)
	return &v
}

// orEmptyCopy returns a copy of s, [] for none.
func orEmptyCopy[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return slices.Clone(s)
}

// deleteUnder deletes every key under prefix.
func deleteUnder(tx store.Tx, prefix string) error {
	kvs, err := tx.List(prefix, "", 0)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		if err := tx.Delete(kv.Key); err != nil {
			return err
		}
	}
	return nil
}
