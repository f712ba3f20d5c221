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

// activating is a cluster of one simulated agent whose reports the test
// makes, and a service of one task behind an instance target group.
type activating struct {
	t     *testing.T
	b     *berth
	c     *ecs.Client
	sim   *simAgent
	tgArn string
	task  string // the task's ARN
}

func newActivating(t *testing.T) *activating {
	b, c, sims := serviceCluster(t, "act", 1)
	a := &activating{t: t, b: b, c: c, sim: sims[0]}
	a.sim.HoldIf(func(agentapi.DesiredTask) bool { return true }) // the test makes the reports
	lbc := b.elbClient()
	tg := must[*elb.CreateTargetGroupOutput](t)(lbc.CreateTargetGroup(ctx(t), &elb.CreateTargetGroupInput{
		Name: aws.String("act"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
		TargetType: elbtypes.TargetTypeEnumInstance, VpcId: aws.String("vpc-berth"),
	})).TargetGroups[0]
	a.tgArn = aws.ToString(tg.TargetGroupArn)
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
	eventually(t, "the service's task", func() bool {
		tasks := serviceTasks(t, c, "act", "web")
		if len(tasks) == 1 {
			a.task = aws.ToString(tasks[0].TaskArn)
		}
		return len(tasks) == 1
	})
	return a
}

// running reports the task running with bindings.
func (a *activating) running(seq uint64, bindings []ecstypes.NetworkBinding) {
	a.sim.report(agentapi.TaskReport{TaskArn: a.task, Seq: seq, LastStatus: "RUNNING", StartedAt: awsmodel.NewTime(time.Now()),
		Containers: []agentapi.ContainerReport{{Name: "app", LastStatus: "RUNNING", RuntimeID: "sim-app", NetworkBindings: bindings}}})
}

func (a *activating) status() string {
	out := must[*ecs.DescribeTasksOutput](a.t)(a.c.DescribeTasks(ctx(a.t), &ecs.DescribeTasksInput{Cluster: aws.String("act"), Tasks: []string{a.task}}))
	return aws.ToString(out.Tasks[0].LastStatus)
}

// instanceRunning is the instance's runningTasksCount.
func (a *activating) instanceRunning() int32 {
	out := must[*ecs.DescribeContainerInstancesOutput](a.t)(a.c.DescribeContainerInstances(ctx(a.t), &ecs.DescribeContainerInstancesInput{
		Cluster: aws.String("act"), ContainerInstances: []string{a.sim.arn(a.b, "act")}}))
	return out.ContainerInstances[0].RunningTasksCount
}

// unregistered checks that the task, reported running without a host
// port, is ACTIVATING, stays so, and is not registered.
func (a *activating) unregistered() {
	t := a.t
	t.Helper()
	a.running(1000, nil)
	if got := a.status(); got != "ACTIVATING" {
		t.Fatalf("lastStatus after the agent's RUNNING = %s, want ACTIVATING", got)
	}
	time.Sleep(300 * time.Millisecond) // service passes run on the change
	if got, n := a.status(), a.instanceRunning(); got != "ACTIVATING" || n != 0 {
		t.Fatalf("unregistered task: lastStatus %s, instance runningTasksCount %d; want ACTIVATING, 0", got, n)
	}
	h := must[*elb.DescribeTargetHealthOutput](t)(a.b.elbClient().DescribeTargetHealth(ctx(t), &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(a.tgArn)}))
	if len(h.TargetHealthDescriptions) != 0 {
		t.Fatalf("targets registered before the task had a host port: %+v", h.TargetHealthDescriptions)
	}
}

// A task of a service with loadBalancers is ACTIVATING from the moment
// its agent reports it running until the service has registered it in its
// target group, as in ECS, and only then RUNNING: here the simulated agent
// first reports it running without the host port the instance target
// group needs, then with it.
func TestServiceTaskActivatesOnceRegistered(t *testing.T) {
	a := newActivating(t)
	hostPort := []ecstypes.NetworkBinding{{ContainerPort: aws.Int32(8080), HostPort: aws.Int32(49153), Protocol: ecstypes.TransportProtocolTcp, BindIP: "0.0.0.0"}}

	// Running, but with no host port to register: ACTIVATING, and it stays so.
	a.unregistered()

	// The host port arrives: the service registers the task, which is RUNNING.
	a.running(1001, hostPort)
	eventually(t, "the task RUNNING once registered", func() bool { return a.status() == "RUNNING" })
	h := must[*elb.DescribeTargetHealthOutput](t)(a.b.elbClient().DescribeTargetHealth(ctx(t), &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(a.tgArn)}))
	if len(h.TargetHealthDescriptions) != 1 || aws.ToInt32(h.TargetHealthDescriptions[0].Target.Port) != 49153 {
		t.Fatalf("targets = %+v, want the task's instance on host port 49153", h.TargetHealthDescriptions)
	}
	if n := a.instanceRunning(); n != 1 {
		t.Fatalf("instance runningTasksCount = %d, want 1", n)
	}
	if svc := describeService(t, a.c, "act", "web"); !hasEventLike(svc, "registered 1 targets in (target-group "+a.tgArn+")") {
		t.Fatalf("no registration event in %s", eventText(svc))
	}
	// A later report of the same state leaves it RUNNING.
	a.running(1002, hostPort)
	if got := a.status(); got != "RUNNING" {
		t.Fatalf("lastStatus after another report = %s, want RUNNING", got)
	}
}

// A task waiting to be registered is released, RUNNING, when its service
// drops its load balancers (UpdateService with an empty list).
func TestServiceTaskActivatingReleasedWithoutLoadBalancers(t *testing.T) {
	a := newActivating(t)
	a.unregistered()
	must[*ecs.UpdateServiceOutput](t)(a.c.UpdateService(ctx(t), &ecs.UpdateServiceInput{
		Cluster: aws.String("act"), Service: aws.String("web"), LoadBalancers: []types.LoadBalancer{},
	}))
	eventually(t, "the task RUNNING without load balancers", func() bool { return a.status() == "RUNNING" })
	if n := a.instanceRunning(); n != 1 {
		t.Fatalf("instance runningTasksCount = %d, want 1", n)
	}
}
