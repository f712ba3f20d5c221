package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// loadGen sends GETs through a load balancer from a few clients until
// stopped, counting answers and failures.
type loadGen struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	names      map[string]int
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

func startLoad(url string, clients int) *loadGen {
	g := &loadGen{names: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	for range clients {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					g.fail(err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					g.fail(fmt.Sprintf("%d %s", resp.StatusCode, body))
					continue
				}
				var v struct{ Name string }
				_ = json.Unmarshal(body, &v)
				g.ok.Add(1)
				g.mu.Lock()
				g.names[v.Name]++
				g.mu.Unlock()
			}
		}()
	}
	return g
}

func (g *loadGen) fail(msg string) {
	g.failed.Add(1)
	g.mu.Lock()
	if len(g.errs) < 5 {
		g.errs = append(g.errs, msg)
	}
	g.mu.Unlock()
}

func (g *loadGen) stop() { g.cancel(); g.wg.Wait() }

// TestDockerServiceBehindLoadBalancer runs a service of 3 tasks on Docker
// behind an application load balancer configured with the SDK: every task
// answers through it; a task that fails the target group's health checks
// is taken out and replaced; and while a steady stream of requests flows,
// the service rolls to a new revision and scales in without one failed
// request.
func TestDockerServiceBehindLoadBalancer(t *testing.T) {
	cl, _, _, image := dockerCluster(t)
	b := &berth{cp: cl.CP, endpoint: cl.CP.Endpoint(), key: cl.CP.Key()}
	c, lbc := cl.ECS(), b.elbClient()

	register := func(name string) {
		must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
			Family: aws.String("lbweb"),
			ContainerDefinitions: []types.ContainerDefinition{{
				Name: aws.String("app"), Image: aws.String(image), Memory: aws.Int32(32),
				Command:      []string{"serve", "-port", "8080", "-name", name},
				PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080)}}, // a dynamic host port
			}},
		}))
	}
	register("v1")

	lbd := must[*elb.CreateLoadBalancerOutput](t)(lbc.CreateLoadBalancer(ctx(t), &elb.CreateLoadBalancerInput{Name: aws.String("svc")})).LoadBalancers[0]
	tg := must[*elb.CreateTargetGroupOutput](t)(lbc.CreateTargetGroup(ctx(t), &elb.CreateTargetGroupInput{
		Name: aws.String("svc"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), TargetType: elbtypes.TargetTypeEnumInstance,
		VpcId: aws.String("vpc-berth"), HealthCheckPath: aws.String("/health"), HealthCheckIntervalSeconds: aws.Int32(5),
		HealthCheckTimeoutSeconds: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2), HealthyThresholdCount: aws.Int32(2),
	})).TargetGroups[0]
	tgArn := aws.ToString(tg.TargetGroupArn)
	must[*elb.ModifyTargetGroupAttributesOutput](t)(lbc.ModifyTargetGroupAttributes(ctx(t), &elb.ModifyTargetGroupAttributesInput{
		TargetGroupArn: tg.TargetGroupArn, Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("3")}},
	}))
	_, p, _ := net.SplitHostPort(freePort(t))
	port, _ := strconv.Atoi(p)
	must[*elb.CreateListenerOutput](t)(lbc.CreateListener(ctx(t), &elb.CreateListenerInput{
		LoadBalancerArn: lbd.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(int32(port)),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroupArn}},
	}))
	url := fmt.Sprintf("http://%s:%d/", lbAddressOf(t, b, "svc"), port)

	must[*ecs.CreateServiceOutput](t)(c.CreateService(ctx(t), &ecs.CreateServiceInput{
		Cluster: aws.String("dock"), ServiceName: aws.String("lbweb"), TaskDefinition: aws.String("lbweb"), DesiredCount: aws.Int32(3),
		LoadBalancers: []types.LoadBalancer{{TargetGroupArn: tg.TargetGroupArn, ContainerName: aws.String("app"), ContainerPort: aws.Int32(8080)}},
	}))
	waitStable := func(what string) types.Service {
		var svc types.Service
		deadline := time.Now().Add(90 * time.Second)
		for {
			out := must[*ecs.DescribeServicesOutput](t)(c.DescribeServices(ctx(t), &ecs.DescribeServicesInput{Cluster: aws.String("dock"), Services: []string{"lbweb"}}))
			svc = out.Services[0]
			if len(svc.Deployments) == 1 && svc.RunningCount == svc.DesiredCount && svc.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted {
				return svc
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: service not stable: running %d/%d, deployments %d; events %v", what, svc.RunningCount, svc.DesiredCount, len(svc.Deployments), eventMessages(svc, 5))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	svc := waitStable("create")
	if !hasServiceEvent(svc, "targets in (target-group "+tgArn+")") {
		t.Fatalf("events %v", eventMessages(svc, 10))
	}
	if n := healthyTargets(t, lbc, tgArn); n != 3 {
		t.Fatalf("%d healthy targets, want 3", n)
	}

	// Every task answers through the load balancer.
	hosts := map[string]bool{}
	for range 30 {
		var v struct{ Hostname string }
		if err := json.Unmarshal([]byte(httpGet(t, url)), &v); err != nil {
			t.Fatal(err)
		}
		hosts[v.Hostname] = true
	}
	if len(hosts) != 3 {
		t.Fatalf("answered by %d tasks, want 3", len(hosts))
	}

	// A task that fails its health checks is taken out and replaced.
	tasks := must[*ecs.ListTasksOutput](t)(c.ListTasks(ctx(t), &ecs.ListTasksInput{Cluster: aws.String("dock"), ServiceName: aws.String("lbweb")})).TaskArns
	sick := describeTask(t, c, "dock", tasks[0])
	hp := aws.ToInt32(containerOf(sick, "app").NetworkBindings[0].HostPort)
	httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/sick", hp))
	eventually30 := func(what string, cond func() bool) {
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	eventually30("the sick task stopped", func() bool {
		s := describeTask(t, c, "dock", tasks[0])
		return aws.ToString(s.LastStatus) == "STOPPED"
	})
	stopped := describeTask(t, c, "dock", tasks[0])
	if aws.ToString(stopped.StoppedReason) != "Task failed ELB health checks in (target-group "+tgArn+")" {
		t.Fatalf("stopped reason %q", aws.ToString(stopped.StoppedReason))
	}
	svc = waitStable("replacement")
	if !hasServiceEvent(svc, fmt.Sprintf("(port %d) is unhealthy in target-group svc due to (reason Health checks failed with these codes: [500]).", hp)) {
		t.Fatalf("events %v", eventMessages(svc, 10))
	}

	// Zero downtime: a rolling update and a scale-in under load.
	load := startLoad(url, 4)
	register("v2")
	must[*ecs.UpdateServiceOutput](t)(c.UpdateService(ctx(t), &ecs.UpdateServiceInput{Cluster: aws.String("dock"), Service: aws.String("lbweb"), TaskDefinition: aws.String("lbweb")}))
	waitStable("rollout") // UpdateService answered with two deployments: stable means the rollout finished
	must[*ecs.UpdateServiceOutput](t)(c.UpdateService(ctx(t), &ecs.UpdateServiceInput{Cluster: aws.String("dock"), Service: aws.String("lbweb"), DesiredCount: aws.Int32(1)}))
	waitStable("scale-in")
	eventually30("only v2 answers", func() bool {
		var v struct{ Name string }
		_ = json.Unmarshal([]byte(httpGet(t, url)), &v)
		return v.Name == "v2"
	})
	load.stop()
	t.Logf("requests during rollout and scale-in: %d ok, %d failed; by revision %v", load.ok.Load(), load.failed.Load(), load.names)
	if load.failed.Load() != 0 {
		t.Fatalf("%d requests failed during the rollout and scale-in: %v", load.failed.Load(), load.errs)
	}
	if load.names["v1"] == 0 || load.names["v2"] == 0 || load.ok.Load() < 100 {
		t.Fatalf("the load did not span the rollout: %v", load.names)
	}
}

func hasServiceEvent(s types.Service, sub string) bool {
	for _, e := range s.Events {
		if strings.Contains(aws.ToString(e.Message), sub) {
			return true
		}
	}
	return false
}

func eventMessages(s types.Service, n int) []string {
	var out []string
	for _, e := range s.Events {
		if len(out) == n {
			break
		}
		out = append(out, aws.ToString(e.Message))
	}
	return out
}

// TestDockerAwsvpcServiceBehindIPTargetGroup: the tasks of an awsvpc
// service are registered by their own address and container port in an
// ip target group, and answer through the load balancer.
func TestDockerAwsvpcServiceBehindIPTargetGroup(t *testing.T) {
	cl, _, _, image := dockerCluster(t)
	b := &berth{cp: cl.CP, endpoint: cl.CP.Endpoint(), key: cl.CP.Key()}
	c, lbc := cl.ECS(), b.elbClient()
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("vpcweb"), NetworkMode: types.NetworkModeAwsvpc,
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String(image), Memory: aws.Int32(32), Command: []string{"serve", "-port", "8080"},
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080)}},
		}},
	}))
	lbd := must[*elb.CreateLoadBalancerOutput](t)(lbc.CreateLoadBalancer(ctx(t), &elb.CreateLoadBalancerInput{Name: aws.String("vpcweb")})).LoadBalancers[0]
	tg := must[*elb.CreateTargetGroupOutput](t)(lbc.CreateTargetGroup(ctx(t), &elb.CreateTargetGroupInput{
		Name: aws.String("vpcweb"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), TargetType: elbtypes.TargetTypeEnumIp,
		VpcId: aws.String("vpc-berth"), HealthCheckPath: aws.String("/health"), HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2),
	})).TargetGroups[0]
	_, p, _ := net.SplitHostPort(freePort(t))
	port, _ := strconv.Atoi(p)
	must[*elb.CreateListenerOutput](t)(lbc.CreateListener(ctx(t), &elb.CreateListenerInput{
		LoadBalancerArn: lbd.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(int32(port)),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroupArn}},
	}))
	must[*ecs.CreateServiceOutput](t)(c.CreateService(ctx(t), &ecs.CreateServiceInput{
		Cluster: aws.String("dock"), ServiceName: aws.String("vpcweb"), TaskDefinition: aws.String("vpcweb"), DesiredCount: aws.Int32(2),
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-berth"}}},
		LoadBalancers:        []types.LoadBalancer{{TargetGroupArn: tg.TargetGroupArn, ContainerName: aws.String("app"), ContainerPort: aws.Int32(8080)}},
	}))
	eventually := func(what string, cond func() bool) {
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	eventually("two healthy ip targets", func() bool { return healthyTargets(t, lbc, aws.ToString(tg.TargetGroupArn)) == 2 })
	h := must[*elb.DescribeTargetHealthOutput](t)(lbc.DescribeTargetHealth(ctx(t), &elb.DescribeTargetHealthInput{TargetGroupArn: tg.TargetGroupArn}))
	for _, d := range h.TargetHealthDescriptions {
		if aws.ToInt32(d.Target.Port) != 8080 || net.ParseIP(aws.ToString(d.Target.Id)) == nil {
			t.Fatalf("target %s:%d is not a task address and container port", aws.ToString(d.Target.Id), aws.ToInt32(d.Target.Port))
		}
	}
	url := fmt.Sprintf("http://%s:%d/", lbAddressOf(t, b, "vpcweb"), port)
	addrs := map[string]bool{}
	for range 20 {
		var v struct{ Addrs []string }
		if err := json.Unmarshal([]byte(httpGet(t, url)), &v); err != nil {
			t.Fatal(err)
		}
		addrs[strings.Join(v.Addrs, ",")] = true
	}
	if len(addrs) != 2 {
		t.Fatalf("answered from %v, want both tasks", addrs)
	}
}
