package e2e

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
)

// A task of a service with loadBalancers is ACTIVATING from the moment
// its agent reports it running until the service has registered it in its
// target group, as in ECS, and only then RUNNING: here the simulated agent
// first reports it running without the host port the instance target
// group needs, then with it.
func TestServiceTaskActivatesOnceRegistered(t *testing.T) {
	b, c, sims := serviceCluster(t, "act", 1)
	sim := sims[0]
	sim.HoldIf(func(agentapi.DesiredTask) bool { return true }) // the test makes the reports
	lbc := b.elbClient()
	tg := must[*elb.CreateTargetGroupOutput](t)(lbc.CreateTargetGroup(ctx(t), &elb.CreateTargetGroupInput{
		Name: aws.String("act"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
		TargetType: elbtypes.TargetTypeEnumInstance, VpcId: aws.String("vpc-berth"),
	})).TargetGroups[0]
	lb := must[*elb.CreateLoadBalancerOutput](t)(lbc.CreateLoadBalancer(ctx(t), &elb.CreateLoadBalancerInput{Name: aws.String("act")})).LoadBalancers[0]
	must[*elb.CreateListenerOutput](t)(lbc.CreateListener(ctx(t), &elb.CreateListenerInput{
		LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(int32(freePortNumber(t))),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroupArn}},
	}))
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("web"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("berth-testapp:latest"), Memory: aws.Int32(64),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080)}},
		}},
	}))
	must[*ecs.CreateServiceOutput](t)(c.CreateService(ctx(t), &ecs.CreateServiceInput{
		Cluster: aws.String("act"), ServiceName: aws.String("web"), TaskDefinition: aws.String("web"), DesiredCount: aws.Int32(1),
		LoadBalancers: []types.LoadBalancer{{TargetGroupArn: tg.TargetGroupArn, ContainerName: aws.String("app"), ContainerPort: aws.Int32(8080)}},
	}))
	var task types.Task
	eventually(t, "the service's task", func() bool {
		tasks := serviceTasks(t, c, "act", "web")
		if len(tasks) == 1 {
			task = tasks[0]
		}
		return len(tasks) == 1
	})
	running := func(seq uint64, bindings []ecstypes.NetworkBinding) {
		sim.report(agentapi.TaskReport{TaskArn: aws.ToString(task.TaskArn), Seq: seq, LastStatus: "RUNNING", StartedAt: awsmodel.NewTime(time.Now()),
			Containers: []agentapi.ContainerReport{{Name: "app", LastStatus: "RUNNING", RuntimeID: "sim-app", NetworkBindings: bindings}}})
	}
	status := func() string {
		out := must[*ecs.DescribeTasksOutput](t)(c.DescribeTasks(ctx(t), &ecs.DescribeTasksInput{Cluster: aws.String("act"), Tasks: []string{aws.ToString(task.TaskArn)}}))
		return aws.ToString(out.Tasks[0].LastStatus)
	}
	instanceRunning := func() int32 {
		out := must[*ecs.DescribeContainerInstancesOutput](t)(c.DescribeContainerInstances(ctx(t), &ecs.DescribeContainerInstancesInput{
			Cluster: aws.String("act"), ContainerInstances: []string{sim.arn(b, "act")}}))
		return out.ContainerInstances[0].RunningTasksCount
	}

	hostPort := []ecstypes.NetworkBinding{{ContainerPort: aws.Int32(8080), HostPort: aws.Int32(49153), Protocol: ecstypes.TransportProtocolTcp, BindIP: "0.0.0.0"}}

	// Running, but with no host port to register: ACTIVATING, and it stays so.
	running(1000, nil)
	if got := status(); got != "ACTIVATING" {
		t.Fatalf("lastStatus after the agent's RUNNING = %s, want ACTIVATING", got)
	}
	time.Sleep(300 * time.Millisecond) // service passes run on the change
	if got, n := status(), instanceRunning(); got != "ACTIVATING" || n != 0 {
		t.Fatalf("unregistered task: lastStatus %s, instance runningTasksCount %d; want ACTIVATING, 0", got, n)
	}
	if h := must[*elb.DescribeTargetHealthOutput](t)(lbc.DescribeTargetHealth(ctx(t), &elb.DescribeTargetHealthInput{TargetGroupArn: tg.TargetGroupArn})); len(h.TargetHealthDescriptions) != 0 {
		t.Fatalf("targets registered before the task had a host port: %+v", h.TargetHealthDescriptions)
	}

	// The host port arrives: the service registers the task, which is RUNNING.
	running(1001, hostPort)
	eventually(t, "the task RUNNING once registered", func() bool { return status() == "RUNNING" })
	h := must[*elb.DescribeTargetHealthOutput](t)(lbc.DescribeTargetHealth(ctx(t), &elb.DescribeTargetHealthInput{TargetGroupArn: tg.TargetGroupArn}))
	if len(h.TargetHealthDescriptions) != 1 || aws.ToInt32(h.TargetHealthDescriptions[0].Target.Port) != 49153 {
		t.Fatalf("targets = %+v, want the task's instance on host port 49153", h.TargetHealthDescriptions)
	}
	if n := instanceRunning(); n != 1 {
		t.Fatalf("instance runningTasksCount = %d, want 1", n)
	}
	if svc := describeService(t, c, "act", "web"); !hasEventLike(svc, "registered 1 targets in (target-group "+aws.ToString(tg.TargetGroupArn)+")") {
		t.Fatalf("no registration event in %s", eventText(svc))
	}
	// A later report of the same state leaves it RUNNING.
	running(1002, hostPort)
	if got := status(); got != "RUNNING" {
		t.Fatalf("lastStatus after another report = %s, want RUNNING", got)
	}
}
