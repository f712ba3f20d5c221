package ecs_test

import (
	"context"
	"testing"

	"github.com/berthdev/berth/internal/api/elbv2"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
)

// targetGroup creates, through the ELBv2 API over the fixture's store, a
// target group of targetType, attached to a load balancer's listener when
// attached is set, and returns its ARN.
func (f *fixture) targetGroup(name string, targetType elbv2types.TargetTypeEnum, attached bool) string {
	f.t.Helper()
	api, err := elbv2.New(elbv2.Config{Store: f.st, Region: region, Account: account})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx := context.Background()
	tg, err := api.CreateTargetGroup(ctx, &elbv2types.CreateTargetGroupInput{Name: name, Protocol: elbv2types.ProtocolEnumHttp,
		Port: new(int32(80)), TargetType: targetType, VpcId: "vpc-berth"})
	if err != nil {
		f.t.Fatal(err)
	}
	arn := tg.TargetGroups[0].TargetGroupArn
	if attached {
		lb, err := api.CreateLoadBalancer(ctx, &elbv2types.CreateLoadBalancerInput{Name: name})
		if err != nil {
			f.t.Fatal(err)
		}
		if _, err := api.CreateListener(ctx, &elbv2types.CreateListenerInput{LoadBalancerArn: lb.LoadBalancers[0].LoadBalancerArn,
			Protocol: elbv2types.ProtocolEnumHttp, Port: new(int32(80)),
			DefaultActions: []elbv2types.Action{{Type: elbv2types.ActionTypeEnumForward, TargetGroupArn: arn}}}); err != nil {
			f.t.Fatal(err)
		}
	}
	return arn
}

// TestServiceLoadBalancerRules: CreateService checks its loadBalancers as
// ECS does, and stores them when they are right.
func TestServiceLoadBalancerRules(t *testing.T) {
	f := newFixture(t)
	call(f.api.RegisterTaskDefinition(context.Background(), &ecstypes.RegisterTaskDefinitionRequest{
		Family: "ported", NetworkMode: ecstypes.NetworkModeBridge,
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: "app", Image: "nginx", Memory: ptr[int32](64),
			PortMappings: []ecstypes.PortMapping{{ContainerPort: ptr[int32](8080)}}}},
	})).must(t)
	instanceTG := f.targetGroup("inst", elbv2types.TargetTypeEnumInstance, true)
	ipTG := f.targetGroup("ip", elbv2types.TargetTypeEnumIp, true)
	loose := f.targetGroup("loose", elbv2types.TargetTypeEnumInstance, false)
	lb := func(tg, container string, port int32) func(*ecstypes.CreateServiceRequest) {
		return func(r *ecstypes.CreateServiceRequest) {
			r.TaskDefinition = "ported"
			r.LoadBalancers = []ecstypes.LoadBalancer{{TargetGroupArn: tg, ContainerName: container, ContainerPort: ptr(port)}}
		}
	}
	for _, c := range []struct {
		name, tg, container string
		port                int32
		msg                 string
	}{
		{"no load balancer", loose, "app", 8080, "does not have an associated load balancer"},
		{"ip with bridge", ipTG, "app", 8080, "has target type ip, which is incompatible with the bridge network mode"},
		{"unknown container", instanceTG, "web", 8080, "The container web does not exist in the task definition."},
		{"unknown port", instanceTG, "app", 9090, "The container app did not have a container port 9090 defined."},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := &ecstypes.CreateServiceRequest{Cluster: "c", ServiceName: "bad", DesiredCount: ptr[int32](1)}
			lb(c.tg, c.container, c.port)(req)
			_, err := f.api.CreateService(context.Background(), req)
			wantErr(t, err, "InvalidParameterException", c.msg)
		})
	}
	svc := f.create("good", lb(instanceTG, "app", 8080), func(r *ecstypes.CreateServiceRequest) { r.Role = "ecsServiceRole" })
	if len(svc.LoadBalancers) != 1 || svc.LoadBalancers[0].TargetGroupArn != instanceTG || svc.RoleArn != "ecsServiceRole" {
		t.Fatalf("stored loadBalancers %+v role %q", svc.LoadBalancers, svc.RoleArn)
	}
}
