package ecs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

func TestCreateServiceDefaults(t *testing.T) {
	f := newFixture(t)
	got := f.create("api", func(r *ecstypes.CreateServiceRequest) {
		r.Tags = []ecstypes.Tag{{Key: "team", Value: "core"}}
	})

	if got.ServiceArn != arnBase+"service/c/api" || got.ClusterArn != arnBase+"cluster/c" || got.ServiceName != "api" {
		t.Errorf("identity = %s %s %s", got.ServiceArn, got.ClusterArn, got.ServiceName)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"status", got.Status, "ACTIVE"},
		{"taskDefinition", got.TaskDefinition, arnBase + "task-definition/web:1"},
		{"desiredCount", got.DesiredCount, int32(2)},
		{"runningCount", got.RunningCount, int32(0)},
		{"pendingCount", got.PendingCount, int32(0)},
		{"launchType", got.LaunchType, ecstypes.LaunchTypeEc2},
		{"schedulingStrategy", got.SchedulingStrategy, ecstypes.SchedulingStrategyReplica},
		{"deploymentController", *got.DeploymentController, ecstypes.DeploymentController{Type: ecstypes.DeploymentControllerTypeEcs}},
		{"maximumPercent", *got.DeploymentConfiguration.MaximumPercent, int32(200)},
		{"minimumHealthyPercent", *got.DeploymentConfiguration.MinimumHealthyPercent, int32(100)},
		{"circuit breaker", *got.DeploymentConfiguration.DeploymentCircuitBreaker, ecstypes.DeploymentCircuitBreaker{}},
		{"strategy", got.DeploymentConfiguration.Strategy, ecstypes.DeploymentStrategyRolling},
		{"propagateTags", got.PropagateTags, ecstypes.PropagateTagsNone},
		{"enableECSManagedTags", got.EnableECSManagedTags, false},
		{"createdAt", got.CreatedAt.Time, f.now},
		{"createdBy", got.CreatedBy, "arn:aws:iam::" + account + ":root"},
		{"tags", len(got.Tags), 1},
		{"deployments", len(got.Deployments), 1},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	d := got.Deployments[0]
	if d.Status != "PRIMARY" || d.TaskDefinition != got.TaskDefinition || d.DesiredCount != 2 || d.RolloutState != ecstypes.DeploymentRolloutStateInProgress || d.LaunchType != ecstypes.LaunchTypeEc2 {
		t.Errorf("deployment = %+v", d)
	}
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(arnBase) + `service-deployment/c/api/[A-Za-z0-9]{21}$`).MatchString(got.CurrentServiceDeployment) {
		t.Errorf("currentServiceDeployment = %q", got.CurrentServiceDeployment)
	}

	// The wire shape: ECS's empty lists as [], none of Berth's bookkeeping.
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"loadBalancers":[]`, `"serviceRegistries":[]`, `"events":[]`, `"placementConstraints":[]`, `"placementStrategy":[]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("response lacks %s: %s", want, b)
		}
	}
	if strings.Contains(string(b), "berth") {
		t.Errorf("response leaks the envelope: %s", b)
	}

	rec := f.stored("api")
	if rec.Generation != 1 || rec.Steady || rec.Cluster != "c" || rec.PropagateTags != ecstypes.PropagateTagsNone || len(rec.Deploys) != 1 {
		t.Errorf("envelope = generation %d steady %v cluster %q propagate %q deploys %d", rec.Generation, rec.Steady, rec.Cluster, rec.PropagateTags, len(rec.Deploys))
	}
}

func TestCreateServiceErrors(t *testing.T) {
	f := newFixture(t)
	f.taskDef("vpc", ecstypes.NetworkModeAwsvpc)
	f.taskDef("old", "")
	f.must(f.api.DeregisterTaskDefinition(context.Background(), &ecstypes.DeregisterTaskDefinitionRequest{TaskDefinition: "old:1"}))
	f.create("taken")
	f.create("draining", func(r *ecstypes.CreateServiceRequest) { r.DesiredCount = ptr[int32](0) })
	f.must(f.api.DeleteService(context.Background(), &ecstypes.DeleteServiceRequest{Cluster: "c", Service: "draining"}))

	tests := []struct {
		name      string
		change    func(*ecstypes.CreateServiceRequest)
		code, msg string
	}{
		{"unknown cluster", func(r *ecstypes.CreateServiceRequest) { r.Cluster = "nope" }, "ClusterNotFoundException", "Cluster not found."},
		{"bad name", func(r *ecstypes.CreateServiceRequest) { r.ServiceName = "a/b" }, "InvalidParameterException", "Service name can have up to 255 characters"},
		{"long name", func(r *ecstypes.CreateServiceRequest) { r.ServiceName = strings.Repeat("a", 256) }, "InvalidParameterException", "up to 255 characters"},
		{"ACTIVE name", func(r *ecstypes.CreateServiceRequest) { r.ServiceName = "taken" }, "InvalidParameterException", "Creation of service was not idempotent."},
		{"DRAINING name", func(r *ecstypes.CreateServiceRequest) { r.ServiceName = "draining" }, "InvalidParameterException", "Creation of service was not idempotent."},
		{"no task definition", func(r *ecstypes.CreateServiceRequest) { r.TaskDefinition = "" }, "InvalidParameterException", "taskDefinition is required"},
		{"unknown task definition", func(r *ecstypes.CreateServiceRequest) { r.TaskDefinition = "nope" }, "ClientException", "Unable to describe task definition."},
		{"inactive task definition", func(r *ecstypes.CreateServiceRequest) { r.TaskDefinition = "old:1" }, "ClientException", "TaskDefinition is inactive"},
		{"no desired count", func(r *ecstypes.CreateServiceRequest) { r.DesiredCount = nil }, "InvalidParameterException", "desiredCount is required"},
		{"negative desired count", func(r *ecstypes.CreateServiceRequest) { r.DesiredCount = ptr[int32](-1) }, "InvalidParameterException", "desiredCount must be 0 or more."},
		{"awsvpc without network", func(r *ecstypes.CreateServiceRequest) { r.TaskDefinition = "vpc" }, "InvalidParameterException", "Network Configuration must be provided"},
		{"network for bridge", func(r *ecstypes.CreateServiceRequest) {
			r.NetworkConfiguration = &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: []string{"s"}}}
		}, "InvalidParameterException", "Network Configuration is not valid"},
		{"minimumHealthyPercent above 100", func(r *ecstypes.CreateServiceRequest) {
			r.DeploymentConfiguration = &ecstypes.DeploymentConfiguration{MinimumHealthyPercent: ptr[int32](101)}
		}, "InvalidParameterException", "minimumHealthyPercent must be between 0 and 100."},
		{"minimum above maximum", func(r *ecstypes.CreateServiceRequest) {
			r.DeploymentConfiguration = &ecstypes.DeploymentConfiguration{MaximumPercent: ptr[int32](50), MinimumHealthyPercent: ptr[int32](75)}
		}, "InvalidParameterException", "minimumHealthyPercent (75) cannot be greater than maximumPercent (50)."},
		{"11 placement constraints", func(r *ecstypes.CreateServiceRequest) {
			for range 11 {
				r.PlacementConstraints = append(r.PlacementConstraints, ecstypes.PlacementConstraint{Type: "distinctInstance"})
			}
		}, "InvalidParameterException", "at most 10 placement constraints"},
		{"6 placement strategies", func(r *ecstypes.CreateServiceRequest) {
			for range 6 {
				r.PlacementStrategy = append(r.PlacementStrategy, ecstypes.PlacementStrategy{Type: "random"})
			}
		}, "InvalidParameterException", "at most 5 placement strategies"},
		{"long clientToken", func(r *ecstypes.CreateServiceRequest) { r.ClientToken = strings.Repeat("t", 37) }, "InvalidParameterException", "clientToken can have up to 36"},
		{"reserved tag", func(r *ecstypes.CreateServiceRequest) { r.Tags = []ecstypes.Tag{{Key: "aws:x"}} }, "InvalidParameterException", "reserved"},
		{"negative grace period", func(r *ecstypes.CreateServiceRequest) { r.HealthCheckGracePeriodSeconds = ptr[int32](-1) }, "InvalidParameterException", "healthCheckGracePeriodSeconds"},
		{"role", func(r *ecstypes.CreateServiceRequest) { r.Role = "ecsServiceRole" }, "InvalidParameterException", "role is only used with loadBalancers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &ecstypes.CreateServiceRequest{Cluster: "c", ServiceName: "new", TaskDefinition: "web", DesiredCount: ptr[int32](1)}
			tt.change(req)
			_, err := f.api.CreateService(context.Background(), req)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	if got := f.describe("new").Failures; len(got) != 1 || got[0].Reason != "MISSING" {
		t.Errorf("a refused CreateService left a service: %+v", got)
	}
}

// TestServiceFeaturesRefused: every feature Berth does not have is refused
// by name, on create and on update, and nothing is recorded.
func TestServiceFeaturesRefused(t *testing.T) {
	f := newFixture(t)
	f.create("api")
	tests := []struct {
		name   string
		create func(*ecstypes.CreateServiceRequest)
		update func(*ecstypes.UpdateServiceRequest)
		msg    string
	}{
		{"FARGATE", func(r *ecstypes.CreateServiceRequest) { r.LaunchType = ecstypes.LaunchTypeFargate }, nil, "launchType FARGATE is not supported yet"},
		{"capacity providers", func(r *ecstypes.CreateServiceRequest) {
			r.CapacityProviderStrategy = []ecstypes.CapacityProviderStrategyItem{{CapacityProvider: "FARGATE"}}
		}, func(r *ecstypes.UpdateServiceRequest) {
			r.CapacityProviderStrategy = []ecstypes.CapacityProviderStrategyItem{{CapacityProvider: "FARGATE"}}
		}, "capacityProviderStrategy is not supported yet"},
		{"execute command", func(r *ecstypes.CreateServiceRequest) { r.EnableExecuteCommand = true },
			func(r *ecstypes.UpdateServiceRequest) { r.EnableExecuteCommand = ptr(true) }, "enableExecuteCommand is not supported yet"},
		{"EBS volumes", func(r *ecstypes.CreateServiceRequest) {
			r.VolumeConfigurations = []ecstypes.ServiceVolumeConfiguration{{Name: "v"}}
		},
			func(r *ecstypes.UpdateServiceRequest) {
				r.VolumeConfigurations = []ecstypes.ServiceVolumeConfiguration{{Name: "v"}}
			}, "volumeConfigurations"},
		{"classic load balancers", func(r *ecstypes.CreateServiceRequest) {
			r.LoadBalancers = []ecstypes.LoadBalancer{{LoadBalancerName: "classic", ContainerName: "app", ContainerPort: ptr[int32](80)}}
		},
			func(r *ecstypes.UpdateServiceRequest) {
				r.LoadBalancers = []ecstypes.LoadBalancer{{LoadBalancerName: "classic", ContainerName: "app", ContainerPort: ptr[int32](80)}}
			}, "Classic Load Balancer"},
		{"unknown target group", func(r *ecstypes.CreateServiceRequest) {
			r.LoadBalancers = []ecstypes.LoadBalancer{{TargetGroupArn: "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/none/0123456789abcdef", ContainerName: "app", ContainerPort: ptr[int32](80)}}
		}, nil, "does not exist"},
		{"service registries", func(r *ecstypes.CreateServiceRequest) {
			r.ServiceRegistries = []ecstypes.ServiceRegistry{{RegistryArn: "x"}}
		},
			func(r *ecstypes.UpdateServiceRequest) {
				r.ServiceRegistries = []ecstypes.ServiceRegistry{{RegistryArn: "x"}}
			}, "serviceRegistries"},
		{"Service Connect", func(r *ecstypes.CreateServiceRequest) {
			r.ServiceConnectConfiguration = &ecstypes.ServiceConnectConfiguration{Enabled: true}
		}, func(r *ecstypes.UpdateServiceRequest) {
			r.ServiceConnectConfiguration = &ecstypes.ServiceConnectConfiguration{Enabled: true}
		}, "Service Connect is not supported yet"},
		{"VPC Lattice", func(r *ecstypes.CreateServiceRequest) {
			r.VpcLatticeConfigurations = []ecstypes.VpcLatticeConfiguration{{PortName: "p"}}
		},
			func(r *ecstypes.UpdateServiceRequest) {
				r.VpcLatticeConfigurations = []ecstypes.VpcLatticeConfiguration{{PortName: "p"}}
			}, "vpcLatticeConfigurations"},
		{"CODE_DEPLOY", func(r *ecstypes.CreateServiceRequest) {
			r.DeploymentController = &ecstypes.DeploymentController{Type: ecstypes.DeploymentControllerTypeCodeDeploy}
		}, func(r *ecstypes.UpdateServiceRequest) {
			r.DeploymentController = &ecstypes.DeploymentController{Type: ecstypes.DeploymentControllerTypeExternal}
		}, "deploymentController"},
		{"BLUE_GREEN", func(r *ecstypes.CreateServiceRequest) {
			r.DeploymentConfiguration = &ecstypes.DeploymentConfiguration{Strategy: ecstypes.DeploymentStrategyBlueGreen}
		}, func(r *ecstypes.UpdateServiceRequest) {
			r.DeploymentConfiguration = &ecstypes.DeploymentConfiguration{Strategy: ecstypes.DeploymentStrategyCanary}
		}, "strategy"},
		{"alarms", func(r *ecstypes.CreateServiceRequest) {
			r.DeploymentConfiguration = &ecstypes.DeploymentConfiguration{Alarms: &ecstypes.DeploymentAlarms{Enable: true, AlarmNames: []string{"a"}}}
		}, func(r *ecstypes.UpdateServiceRequest) {
			r.DeploymentConfiguration = &ecstypes.DeploymentConfiguration{Alarms: &ecstypes.DeploymentAlarms{Enable: true, AlarmNames: []string{"a"}}}
		}, "alarms is not supported yet"},
		{"lifecycle hooks", func(r *ecstypes.CreateServiceRequest) {
			r.DeploymentConfiguration = &ecstypes.DeploymentConfiguration{LifecycleHooks: []ecstypes.DeploymentLifecycleHook{{HookTargetArn: "x"}}}
		}, nil, "lifecycleHooks"},
		{"breaker threshold", func(r *ecstypes.CreateServiceRequest) {
			r.DeploymentConfiguration = &ecstypes.DeploymentConfiguration{DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{
				Enable: true, ThresholdConfiguration: &ecstypes.ThresholdConfiguration{Type: ecstypes.ThresholdTypeCount, Value: 3},
			}}
		}, nil, "thresholdConfiguration"},
		{"platform version", func(r *ecstypes.CreateServiceRequest) { r.PlatformVersion = "LATEST" },
			func(r *ecstypes.UpdateServiceRequest) { r.PlatformVersion = "LATEST" }, "platformVersion"},
		{"AZ rebalancing", func(r *ecstypes.CreateServiceRequest) {
			r.AvailabilityZoneRebalancing = ecstypes.AvailabilityZoneRebalancingEnabled
		},
			func(r *ecstypes.UpdateServiceRequest) {
				r.AvailabilityZoneRebalancing = ecstypes.AvailabilityZoneRebalancingEnabled
			}, "availabilityZoneRebalancing"},
		{"managed tags", func(r *ecstypes.CreateServiceRequest) { r.EnableECSManagedTags = true },
			func(r *ecstypes.UpdateServiceRequest) { r.EnableECSManagedTags = ptr(true) }, "enableECSManagedTags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &ecstypes.CreateServiceRequest{Cluster: "c", ServiceName: "new", TaskDefinition: "web", DesiredCount: ptr[int32](1)}
			tt.create(req)
			_, err := f.api.CreateService(context.Background(), req)
			wantErr(t, err, "InvalidParameterException", tt.msg)
			if tt.update != nil {
				up := &ecstypes.UpdateServiceRequest{Cluster: "c", Service: "api"}
				tt.update(up)
				_, err := f.api.UpdateService(context.Background(), up)
				wantErr(t, err, "InvalidParameterException", tt.msg)
			}
		})
	}
	if got := f.describe("new").Failures; len(got) != 1 {
		t.Errorf("a refused CreateService left a service: %+v", got)
	}
	if g := f.stored("api").Generation; g != 1 {
		t.Errorf("refused updates changed the service: generation %d", g)
	}
}

func TestCreateServiceReusesInactiveName(t *testing.T) {
	f := newFixture(t)
	first := f.create("api")
	f.update(&ecstypes.UpdateServiceRequest{Service: "api", ForceNewDeployment: true})
	f.must(f.api.DeleteService(context.Background(), &ecstypes.DeleteServiceRequest{Cluster: "c", Service: "api", Force: ptr(true)}))
	// The controller makes it INACTIVE once its tasks are gone.
	f.edit("api", func(_ store.Tx, svc *state.Service) error { svc.Status = state.ServiceInactive; return nil })
	if n := len(f.list(&ecstypes.ListServicesRequest{}).ServiceArns); n != 0 {
		t.Fatalf("ListServices lists %d services, want none", n)
	}

	f.now = f.now.Add(time.Minute)
	second := f.create("api")
	if second.ServiceArn != first.ServiceArn || second.Status != "ACTIVE" || !second.CreatedAt.Equal(f.now) {
		t.Errorf("recreated service = %s %s %v", second.ServiceArn, second.Status, second.CreatedAt)
	}
	if g := f.stored("api").Generation; g != 4 {
		t.Errorf("generation = %d, want 4 (it continues across the reuse)", g)
	}
	deps := call(f.api.ListServiceDeployments(context.Background(), &ecstypes.ListServiceDeploymentsRequest{Cluster: "c", Service: "api"})).must(t)
	if len(deps.ServiceDeployments) != 1 || deps.ServiceDeployments[0].ServiceDeploymentArn != second.CurrentServiceDeployment {
		t.Errorf("the new service's history = %+v, want only its own deployment", deps.ServiceDeployments)
	}
}

func TestCreateServiceClientToken(t *testing.T) {
	f := newFixture(t)
	req := func() *ecstypes.CreateServiceRequest {
		return &ecstypes.CreateServiceRequest{Cluster: "c", ServiceName: "api", TaskDefinition: "web", DesiredCount: ptr[int32](2), ClientToken: "token-1"}
	}
	first := call(f.api.CreateService(context.Background(), req())).must(t).Service
	f.now = f.now.Add(time.Second)
	retry := call(f.api.CreateService(context.Background(), req())).must(t).Service
	if retry.CurrentServiceDeployment != first.CurrentServiceDeployment || !retry.CreatedAt.Equal(first.CreatedAt.Time) {
		t.Errorf("a retry created anew: %s vs %s", retry.CurrentServiceDeployment, first.CurrentServiceDeployment)
	}
	if g := f.stored("api").Generation; g != 1 {
		t.Errorf("a retry wrote the service: generation %d", g)
	}

	other := req()
	other.DesiredCount = ptr[int32](3)
	_, err := f.api.CreateService(context.Background(), other)
	wantErr(t, err, "InvalidParameterException", "Creation of service was not idempotent.")

	noToken := req()
	noToken.ClientToken = ""
	_, err = f.api.CreateService(context.Background(), noToken)
	wantErr(t, err, "InvalidParameterException", "Creation of service was not idempotent.")
}

func TestDaemonService(t *testing.T) {
	f := newFixture(t)
	daemon := func(r *ecstypes.CreateServiceRequest) {
		r.SchedulingStrategy = ecstypes.SchedulingStrategyDaemon
		r.DesiredCount = nil
	}
	got := f.create("agent", daemon)
	if got.SchedulingStrategy != "DAEMON" || got.DesiredCount != 0 || *got.DeploymentConfiguration.MaximumPercent != 100 || *got.DeploymentConfiguration.MinimumHealthyPercent != 0 {
		t.Errorf("daemon = %s desired %d %d/%d", got.SchedulingStrategy, got.DesiredCount, *got.DeploymentConfiguration.MaximumPercent, *got.DeploymentConfiguration.MinimumHealthyPercent)
	}

	tests := []struct {
		name   string
		change func(*ecstypes.CreateServiceRequest)
		msg    string
	}{
		{"placement strategy", func(r *ecstypes.CreateServiceRequest) {
			r.PlacementStrategy = []ecstypes.PlacementStrategy{{Type: "spread", Field: "instanceId"}}
		}, "Placement strategies are not supported with DAEMON scheduling strategy."},
		{"maximumPercent above 100", func(r *ecstypes.CreateServiceRequest) {
			r.DeploymentConfiguration = &ecstypes.DeploymentConfiguration{MaximumPercent: ptr[int32](200)}
		}, "The daemon scheduling strategy does not support values above 100 for maximumPercent"},
		{"desired count", func(r *ecstypes.CreateServiceRequest) { r.DesiredCount = ptr[int32](3) }, "desiredCount cannot be set for a service with the DAEMON scheduling strategy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &ecstypes.CreateServiceRequest{Cluster: "c", ServiceName: "other", TaskDefinition: "web"}
			daemon(req)
			tt.change(req)
			_, err := f.api.CreateService(context.Background(), req)
			wantErr(t, err, "InvalidParameterException", tt.msg)
		})
	}

	_, err := f.api.UpdateService(context.Background(), &ecstypes.UpdateServiceRequest{Cluster: "c", Service: "agent", DesiredCount: ptr[int32](2)})
	wantErr(t, err, "InvalidParameterException", "desiredCount cannot be set")
	_, err = f.api.UpdateService(context.Background(), &ecstypes.UpdateServiceRequest{Cluster: "c", Service: "agent",
		PlacementStrategy: []ecstypes.PlacementStrategy{{Type: "random"}}})
	wantErr(t, err, "InvalidParameterException", "Placement strategies are not supported with DAEMON")

	// The scheduler sets a daemon's count: an update cannot, and deleting
	// it needs no force.
	f.edit("agent", func(_ store.Tx, svc *state.Service) error { svc.DesiredCount = 3; return nil })
	if got := f.update(&ecstypes.UpdateServiceRequest{Service: "agent", DesiredCount: ptr[int32](0)}); got.DesiredCount != 3 {
		t.Errorf("an update set a daemon's desired count to %d", got.DesiredCount)
	}
	del := call(f.api.DeleteService(context.Background(), &ecstypes.DeleteServiceRequest{Cluster: "c", Service: "agent"})).must(t).Service
	if del.Status != "DRAINING" || del.DesiredCount != 0 {
		t.Errorf("deleted daemon = %s desired %d", del.Status, del.DesiredCount)
	}
	if n := len(f.list(&ecstypes.ListServicesRequest{SchedulingStrategy: ecstypes.SchedulingStrategyDaemon}).ServiceArns); n != 0 {
		t.Errorf("a DRAINING daemon is listed")
	}
}

func TestUpdateServiceDesiredCountOnly(t *testing.T) {
	f := newFixture(t)
	f.create("api")
	f.edit("api", func(_ store.Tx, svc *state.Service) error { svc.Steady = true; return nil })

	got := f.update(&ecstypes.UpdateServiceRequest{Service: "api", DesiredCount: ptr[int32](5)})
	if got.DesiredCount != 5 || len(got.Deployments) != 1 || got.Deployments[0].DesiredCount != 5 {
		t.Errorf("desired %d, deployments %+v", got.DesiredCount, got.Deployments)
	}
	rec := f.stored("api")
	if rec.Generation != 2 || rec.Steady {
		t.Errorf("generation %d steady %v, want 2 false", rec.Generation, rec.Steady)
	}

	// The same task definition again is no deployment either.
	got = f.update(&ecstypes.UpdateServiceRequest{Service: "api", TaskDefinition: "web:1", HealthCheckGracePeriodSeconds: ptr[int32](30),
		PropagateTags: ecstypes.PropagateTagsService})
	if len(got.Deployments) != 1 || *got.HealthCheckGracePeriodSeconds != 30 || got.PropagateTags != ecstypes.PropagateTagsService {
		t.Errorf("deployments %d, grace %v, propagate %s", len(got.Deployments), got.HealthCheckGracePeriodSeconds, got.PropagateTags)
	}
	if p := f.stored("api").PropagateTags; p != ecstypes.PropagateTagsService {
		t.Errorf("stored propagate = %q", p)
	}

	// Placement changes in place (the API reference: it "doesn't trigger a
	// new service deployment"); an empty list removes it.
	got = f.update(&ecstypes.UpdateServiceRequest{Service: "api", PlacementConstraints: []ecstypes.PlacementConstraint{{Type: "distinctInstance"}}})
	if len(got.Deployments) != 1 || len(got.PlacementConstraints) != 1 {
		t.Errorf("deployments %d, constraints %+v", len(got.Deployments), got.PlacementConstraints)
	}
	got = f.update(&ecstypes.UpdateServiceRequest{Service: "api", PlacementConstraints: []ecstypes.PlacementConstraint{}})
	if got.PlacementConstraints == nil || len(got.PlacementConstraints) != 0 {
		t.Errorf("constraints = %#v, want []", got.PlacementConstraints)
	}
}

func TestUpdateServiceNewDeployment(t *testing.T) {
	f := newFixture(t)
	first := f.create("api")
	rev2 := f.taskDef("web", "")

	f.now = f.now.Add(time.Minute)
	got := f.update(&ecstypes.UpdateServiceRequest{Service: "api", TaskDefinition: "web", DesiredCount: ptr[int32](3)})
	if got.TaskDefinition != rev2 || len(got.Deployments) != 2 {
		t.Fatalf("taskDefinition %s, %d deployments", got.TaskDefinition, len(got.Deployments))
	}
	primary, old := got.Deployments[0], got.Deployments[1]
	if primary.Status != "PRIMARY" || primary.TaskDefinition != rev2 || primary.DesiredCount != 3 || old.Status != "ACTIVE" || old.TaskDefinition != first.TaskDefinition {
		t.Errorf("deployments = %+v", got.Deployments)
	}
	if got.CurrentServiceDeployment == first.CurrentServiceDeployment {
		t.Errorf("currentServiceDeployment did not change")
	}

	f.now = f.now.Add(time.Minute)
	got = f.update(&ecstypes.UpdateServiceRequest{Service: "api", ForceNewDeployment: true})
	if len(got.Deployments) != 3 || got.Deployments[0].TaskDefinition != rev2 {
		t.Errorf("forceNewDeployment: %d deployments, primary %s", len(got.Deployments), got.Deployments[0].TaskDefinition)
	}

	// Newest first; a rollout overtaken by a newer one is STOPPED.
	deps := call(f.api.ListServiceDeployments(context.Background(), &ecstypes.ListServiceDeploymentsRequest{Cluster: "c", Service: "api"})).must(t).ServiceDeployments
	if len(deps) != 3 {
		t.Fatalf("%d service deployments, want 3", len(deps))
	}
	if deps[0].ServiceDeploymentArn != got.CurrentServiceDeployment || deps[2].ServiceDeploymentArn != first.CurrentServiceDeployment {
		t.Errorf("order = %s, %s, %s", deps[0].ServiceDeploymentArn, deps[1].ServiceDeploymentArn, deps[2].ServiceDeploymentArn)
	}
	if deps[0].Status != ecstypes.ServiceDeploymentStatusInProgress || deps[1].Status != ecstypes.ServiceDeploymentStatusStopped || deps[2].Status != ecstypes.ServiceDeploymentStatusStopped {
		t.Errorf("statuses = %s %s %s", deps[0].Status, deps[1].Status, deps[2].Status)
	}
	if g := f.stored("api").Generation; g != 3 {
		t.Errorf("generation = %d, want 3", g)
	}
}

func TestUpdateServiceNetworkConfiguration(t *testing.T) {
	f := newFixture(t)
	f.taskDef("vpc", ecstypes.NetworkModeAwsvpc)
	net := func(subnet string) *ecstypes.NetworkConfiguration {
		return &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: []string{subnet}}}
	}
	f.create("api", func(r *ecstypes.CreateServiceRequest) {
		r.TaskDefinition = "vpc"
		r.NetworkConfiguration = net("a")
	})
	got := f.update(&ecstypes.UpdateServiceRequest{Service: "api", NetworkConfiguration: net("a")})
	if len(got.Deployments) != 1 {
		t.Errorf("the same network configuration started a deployment")
	}
	got = f.update(&ecstypes.UpdateServiceRequest{Service: "api", NetworkConfiguration: net("b")})
	if len(got.Deployments) != 2 || got.NetworkConfiguration.AwsvpcConfiguration.Subnets[0] != "b" || got.Deployments[0].NetworkConfiguration.AwsvpcConfiguration.Subnets[0] != "b" {
		t.Errorf("network change: %d deployments, %+v", len(got.Deployments), got.NetworkConfiguration)
	}
	// Moving to a bridge task definition needs the awsvpc configuration gone.
	_, err := f.api.UpdateService(context.Background(), &ecstypes.UpdateServiceRequest{Cluster: "c", Service: "api", TaskDefinition: "web"})
	wantErr(t, err, "InvalidParameterException", "Network Configuration is not valid")
}

func TestUpdateServiceDeploymentConfiguration(t *testing.T) {
	f := newFixture(t)
	f.create("api", func(r *ecstypes.CreateServiceRequest) {
		r.DeploymentConfiguration = &ecstypes.DeploymentConfiguration{MaximumPercent: ptr[int32](150)}
	})
	got := f.update(&ecstypes.UpdateServiceRequest{Service: "api", DeploymentConfiguration: &ecstypes.DeploymentConfiguration{
		MinimumHealthyPercent:    ptr[int32](50),
		DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true},
	}})
	dc := got.DeploymentConfiguration
	if *dc.MaximumPercent != 150 || *dc.MinimumHealthyPercent != 50 || !dc.DeploymentCircuitBreaker.Enable || !dc.DeploymentCircuitBreaker.Rollback || dc.Strategy != "ROLLING" {
		t.Errorf("merged = max %d min %d breaker %+v strategy %s", *dc.MaximumPercent, *dc.MinimumHealthyPercent, dc.DeploymentCircuitBreaker, dc.Strategy)
	}
	if len(got.Deployments) != 1 {
		t.Errorf("a deployment configuration change started a deployment")
	}
	_, err := f.api.UpdateService(context.Background(), &ecstypes.UpdateServiceRequest{Cluster: "c", Service: "api",
		DeploymentConfiguration: &ecstypes.DeploymentConfiguration{MaximumPercent: ptr[int32](40)}})
	wantErr(t, err, "InvalidParameterException", "minimumHealthyPercent (50) cannot be greater than maximumPercent (40).")
}

func TestUpdateServiceErrors(t *testing.T) {
	f := newFixture(t)
	f.create("api")
	f.create("gone", func(r *ecstypes.CreateServiceRequest) { r.DesiredCount = ptr[int32](0) })
	f.must(f.api.DeleteService(context.Background(), &ecstypes.DeleteServiceRequest{Cluster: "c", Service: "gone"}))
	f.taskDef("old", "")
	f.must(f.api.DeregisterTaskDefinition(context.Background(), &ecstypes.DeregisterTaskDefinitionRequest{TaskDefinition: "old:1"}))

	tests := []struct {
		name      string
		req       ecstypes.UpdateServiceRequest
		code, msg string
	}{
		{"unknown", ecstypes.UpdateServiceRequest{Cluster: "c", Service: "nope"}, "ServiceNotFoundException", "Service not found."},
		{"unknown cluster", ecstypes.UpdateServiceRequest{Cluster: "nope", Service: "api"}, "ClusterNotFoundException", "Cluster not found."},
		{"ARN of another cluster", ecstypes.UpdateServiceRequest{Cluster: "c", Service: arnBase + "service/other/api"}, "ServiceNotFoundException", "Service not found."},
		{"DRAINING", ecstypes.UpdateServiceRequest{Cluster: "c", Service: "gone", DesiredCount: ptr[int32](1)}, "ServiceNotActiveException", "Service was not ACTIVE."},
		{"inactive task definition", ecstypes.UpdateServiceRequest{Cluster: "c", Service: "api", TaskDefinition: "old:1"}, "ClientException", "TaskDefinition is inactive"},
		{"negative desired count", ecstypes.UpdateServiceRequest{Cluster: "c", Service: "api", DesiredCount: ptr[int32](-2)}, "InvalidParameterException", "desiredCount must be 0 or more."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.api.UpdateService(context.Background(), &tt.req)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	// By ARN it works.
	got := f.update(&ecstypes.UpdateServiceRequest{Service: arnBase + "service/c/api", DesiredCount: ptr[int32](4)})
	if got.DesiredCount != 4 {
		t.Errorf("update by ARN: desired %d", got.DesiredCount)
	}
}

func TestDeleteService(t *testing.T) {
	f := newFixture(t)
	f.create("api")
	f.create("keep")
	ctx := context.Background()

	_, err := f.api.DeleteService(ctx, &ecstypes.DeleteServiceRequest{Cluster: "c", Service: "api"})
	wantErr(t, err, "InvalidParameterException", "The service cannot be stopped while it is scaled above 0.")
	_, err = f.api.DeleteService(ctx, &ecstypes.DeleteServiceRequest{Cluster: "c", Service: "nope"})
	wantErr(t, err, "ServiceNotFoundException", "Service not found.")

	got := call(f.api.DeleteService(ctx, &ecstypes.DeleteServiceRequest{Cluster: "c", Service: "api", Force: ptr(true)})).must(t).Service
	if got.Status != "DRAINING" || got.DesiredCount != 0 || got.Deployments[0].DesiredCount != 0 {
		t.Errorf("deleted = %s desired %d primary desired %d", got.Status, got.DesiredCount, got.Deployments[0].DesiredCount)
	}
	if rec := f.stored("api"); rec.Generation != 2 || rec.Steady {
		t.Errorf("generation %d steady %v", rec.Generation, rec.Steady)
	}
	// Again: ECS answers the service as it is.
	again := call(f.api.DeleteService(ctx, &ecstypes.DeleteServiceRequest{Cluster: "c", Service: "api"})).must(t).Service
	if again.Status != "DRAINING" || f.stored("api").Generation != 2 {
		t.Errorf("a second delete changed the service: %s", again.Status)
	}

	if arns := f.list(&ecstypes.ListServicesRequest{}).ServiceArns; len(arns) != 1 || arns[0] != arnBase+"service/c/keep" {
		t.Errorf("ListServices = %v, want only keep", arns)
	}
	if d := f.describe("api"); len(d.Services) != 1 || d.Services[0].Status != "DRAINING" {
		t.Errorf("DescribeServices = %+v", d)
	}

	// The cluster counts ACTIVE services and refuses to go while any
	// service is ACTIVE or DRAINING.
	cl := call(f.api.DescribeClusters(ctx, &ecstypes.DescribeClustersRequest{Clusters: []string{"c"}})).must(t).Clusters[0]
	if cl.ActiveServicesCount != 1 {
		t.Errorf("activeServicesCount = %d, want 1", cl.ActiveServicesCount)
	}
	f.update(&ecstypes.UpdateServiceRequest{Service: "keep", DesiredCount: ptr[int32](0)})
	f.must(f.api.DeleteService(ctx, &ecstypes.DeleteServiceRequest{Cluster: "c", Service: "keep"}))
	_, err = f.api.DeleteCluster(ctx, &ecstypes.DeleteClusterRequest{Cluster: "c"})
	wantErr(t, err, "ClusterContainsServicesException", "Services are active")
	for _, name := range []string{"api", "keep"} {
		f.edit(name, func(_ store.Tx, svc *state.Service) error { svc.Status = state.ServiceInactive; return nil })
	}
	if d := f.describe("api"); len(d.Services) != 1 || d.Services[0].Status != "INACTIVE" {
		t.Errorf("an INACTIVE service is not describable: %+v", d)
	}
	f.must(f.api.DeleteCluster(ctx, &ecstypes.DeleteClusterRequest{Cluster: "c"}))
}

func TestDescribeServices(t *testing.T) {
	f := newFixture(t)
	f.create("api", func(r *ecstypes.CreateServiceRequest) { r.Tags = []ecstypes.Tag{{Key: "k", Value: "v"}} })
	ctx := context.Background()

	for _, n := range []int{0, 11} {
		refs := make([]string, n)
		for i := range refs {
			refs[i] = "api"
		}
		_, err := f.api.DescribeServices(ctx, &ecstypes.DescribeServicesRequest{Cluster: "c", Services: refs})
		wantErr(t, err, "InvalidParameterException", "between 1 and 10")
	}
	_, err := f.api.DescribeServices(ctx, &ecstypes.DescribeServicesRequest{Cluster: "nope", Services: []string{"api"}})
	wantErr(t, err, "ClusterNotFoundException", "Cluster not found.")

	other := arnBase + "service/other/api"
	got := f.describe("api", arnBase+"service/c/api", "nope", other)
	if len(got.Services) != 2 || got.Services[0].ServiceName != "api" || got.Services[1].ServiceName != "api" {
		t.Errorf("services = %+v", got.Services)
	}
	if got.Services[0].Tags != nil {
		t.Errorf("tags without include TAGS: %v", got.Services[0].Tags)
	}
	wantFailures := []ecstypes.Failure{{Arn: arnBase + "service/c/nope", Reason: "MISSING"}, {Arn: other, Reason: "MISSING"}}
	if fmt.Sprint(got.Failures) != fmt.Sprint(wantFailures) {
		t.Errorf("failures = %v, want %v", got.Failures, wantFailures)
	}

	tagged := call(f.api.DescribeServices(ctx, &ecstypes.DescribeServicesRequest{Cluster: "c", Services: []string{"api"}, Include: []ecstypes.ServiceField{ecstypes.ServiceFieldTags}})).must(t)
	if len(tagged.Services[0].Tags) != 1 || tagged.Services[0].Tags[0].Key != "k" {
		t.Errorf("include TAGS: %v", tagged.Services[0].Tags)
	}
}

func TestListServices(t *testing.T) {
	f := newFixture(t)
	for i := range 12 {
		f.create(fmt.Sprintf("svc-%02d", i))
	}
	f.create("zz-daemon", func(r *ecstypes.CreateServiceRequest) {
		r.SchedulingStrategy = ecstypes.SchedulingStrategyDaemon
		r.DesiredCount = nil
	})

	page1 := f.list(&ecstypes.ListServicesRequest{})
	if len(page1.ServiceArns) != 10 || page1.ServiceArns[0] != arnBase+"service/c/svc-00" || page1.NextToken == "" {
		t.Fatalf("first page = %d %v token %q", len(page1.ServiceArns), page1.ServiceArns, page1.NextToken)
	}
	page2 := f.list(&ecstypes.ListServicesRequest{NextToken: page1.NextToken, MaxResults: ptr[int32](100)})
	if len(page2.ServiceArns) != 3 || page2.ServiceArns[2] != arnBase+"service/c/zz-daemon" || page2.NextToken != "" {
		t.Errorf("second page = %v token %q", page2.ServiceArns, page2.NextToken)
	}

	filters := []struct {
		name string
		req  ecstypes.ListServicesRequest
		want int
	}{
		{"DAEMON", ecstypes.ListServicesRequest{SchedulingStrategy: ecstypes.SchedulingStrategyDaemon}, 1},
		{"REPLICA", ecstypes.ListServicesRequest{SchedulingStrategy: ecstypes.SchedulingStrategyReplica, MaxResults: ptr[int32](100)}, 12},
		{"EC2", ecstypes.ListServicesRequest{LaunchType: ecstypes.LaunchTypeEc2, MaxResults: ptr[int32](100)}, 13},
		{"FARGATE", ecstypes.ListServicesRequest{LaunchType: ecstypes.LaunchTypeFargate}, 0},
		{"Express", ecstypes.ListServicesRequest{ResourceManagementType: ecstypes.ResourceManagementTypeEcs}, 0},
	}
	for _, tt := range filters {
		if got := f.list(&tt.req).ServiceArns; len(got) != tt.want {
			t.Errorf("%s: %d services, want %d", tt.name, len(got), tt.want)
		}
	}
	_, err := f.api.ListServices(context.Background(), &ecstypes.ListServicesRequest{Cluster: "c", MaxResults: ptr[int32](101)})
	wantErr(t, err, "InvalidParameterException", "maxResults must be between 1 and 100.")
	_, err = f.api.ListServices(context.Background(), &ecstypes.ListServicesRequest{Cluster: "nope"})
	wantErr(t, err, "ClusterNotFoundException", "Cluster not found.")
}

func TestListServicesByNamespace(t *testing.T) {
	f := newFixture(t)
	_, err := f.api.ListServicesByNamespace(context.Background(), &ecstypes.ListServicesByNamespaceRequest{Namespace: "ns"})
	wantErr(t, err, "NamespaceNotFoundException", `Namespace "ns" not found`)
}

func TestServiceTags(t *testing.T) {
	f := newFixture(t)
	arn := f.create("api").ServiceArn
	ctx := context.Background()

	f.must(f.api.TagResource(ctx, &ecstypes.TagResourceRequest{ResourceArn: arn, Tags: []ecstypes.Tag{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}}))
	f.must(f.api.UntagResource(ctx, &ecstypes.UntagResourceRequest{ResourceArn: arn, TagKeys: []string{"a"}}))
	tags := call(f.api.ListTagsForResource(ctx, &ecstypes.ListTagsForResourceRequest{ResourceArn: arn})).must(t).Tags
	if len(tags) != 1 || tags[0] != (ecstypes.Tag{Key: "b", Value: "2"}) {
		t.Errorf("tags = %v", tags)
	}
	if g := f.stored("api").Generation; g != 3 {
		t.Errorf("generation = %d: tag changes must reach the controller", g)
	}
	for _, bad := range []string{arnBase + "service/c/nope", arnBase + "service/api"} {
		_, err := f.api.ListTagsForResource(ctx, &ecstypes.ListTagsForResourceRequest{ResourceArn: bad})
		wantErr(t, err, "ResourceNotFoundException", "The specified resource is not found")
	}
}
