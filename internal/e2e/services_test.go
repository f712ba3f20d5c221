package e2e

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/controlplane"
	"github.com/berthdev/berth/internal/runtime/fake"
	"github.com/berthdev/berth/internal/testcluster"
)

// Service tests drive the service scheduler through the SDK against
// simulated agents: the real control plane and agent protocol, no Docker.

// fastHealth makes tasks without health checks count as healthy after
// 200 ms instead of 40 s.
func fastHealth(c *controlplane.Config) { c.ServiceHealthWait = 200 * time.Millisecond }

func serviceCluster(t *testing.T, name string, agents int) (*berth, *ecs.Client, []*simAgent) {
	t.Helper()
	b := startBerth(t, fastHealth)
	c := b.ecsClient()
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String(name)}))
	var sims []*simAgent
	for range agents {
		sims = append(sims, startSimAgent(t, b, name, 1024, 1024, nil))
	}
	return b, c, sims
}

func registerApp(t *testing.T, c *ecs.Client, family, image string, memory int32) string {
	t.Helper()
	out := must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String(image), Memory: aws.Int32(memory),
		}},
	}))
	return *out.TaskDefinition.TaskDefinitionArn
}

// createService creates a REPLICA service of desired tasks of td and
// returns it as CreateService answered.
func createService(t *testing.T, c *ecs.Client, cluster, name, td string, desired int32) *types.Service {
	t.Helper()
	return must[*ecs.CreateServiceOutput](t)(c.CreateService(ctx(t), &ecs.CreateServiceInput{
		Cluster: aws.String(cluster), ServiceName: aws.String(name), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(desired),
	})).Service
}

// waitStable waits with the SDK's services-stable waiter, then for the
// deployment to complete.
func waitStable(t *testing.T, c *ecs.Client, cluster, service string) types.Service {
	t.Helper()
	w := ecs.NewServicesStableWaiter(c, func(o *ecs.ServicesStableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
	})
	in := &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{service}}
	if err := w.Wait(ctx(t), in, 30*time.Second); err != nil {
		svc := describeService(t, c, cluster, service)
		t.Fatalf("services-stable: %v\nservice: running %d pending %d desired %d deployments %d\nevents: %s",
			err, svc.RunningCount, svc.PendingCount, svc.DesiredCount, len(svc.Deployments), eventText(svc))
	}
	// The waiter is satisfied once runningCount reaches desiredCount with one
	// deployment; the rollout completes when those tasks count as healthy.
	var svc types.Service
	eventually(t, "the deployment to complete", func() bool {
		svc = describeService(t, c, cluster, service)
		return len(svc.Deployments) == 1 && svc.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted
	})
	return svc
}

func describeService(t *testing.T, c *ecs.Client, cluster, service string) types.Service {
	t.Helper()
	out := must[*ecs.DescribeServicesOutput](t)(c.DescribeServices(ctx(t), &ecs.DescribeServicesInput{
		Cluster: aws.String(cluster), Services: []string{service}}))
	if len(out.Services) != 1 {
		t.Fatalf("describe %s: %+v", service, out.Failures)
	}
	return out.Services[0]
}

func eventText(s types.Service) string {
	var b strings.Builder
	for _, e := range s.Events {
		b.WriteString("\n  " + aws.ToString(e.Message))
	}
	return b.String()
}

func hasEventLike(s types.Service, sub string) bool {
	return slices.ContainsFunc(s.Events, func(e types.ServiceEvent) bool { return strings.Contains(aws.ToString(e.Message), sub) })
}

func serviceTasks(t *testing.T, c *ecs.Client, cluster, service string) []types.Task {
	t.Helper()
	arns := must[*ecs.ListTasksOutput](t)(c.ListTasks(ctx(t), &ecs.ListTasksInput{Cluster: aws.String(cluster), ServiceName: aws.String(service)})).TaskArns
	if len(arns) == 0 {
		return nil
	}
	return must[*ecs.DescribeTasksOutput](t)(c.DescribeTasks(ctx(t), &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns})).Tasks
}

func TestServiceReachesSteadyState(t *testing.T) {
	b, c, sims := serviceCluster(t, "svc", 2)
	td := registerApp(t, c, "web", "berth-testapp:latest", 64)
	created := createService(t, c, "svc", "web", td, 3)
	if created.Status == nil || *created.Status != "ACTIVE" || len(created.Deployments) != 1 {
		t.Fatalf("created service = %+v", created)
	}
	svc := waitStable(t, c, "svc", "web")
	if svc.RunningCount != 3 || svc.PendingCount != 0 {
		t.Fatalf("running %d pending %d", svc.RunningCount, svc.PendingCount)
	}
	d := svc.Deployments[0]
	if d.RolloutState != types.DeploymentRolloutStateCompleted || d.RunningCount != 3 {
		t.Fatalf("deployment = %+v", d)
	}
	for _, want := range []string{"(service web) has started 3 tasks:", "(service web) has reached a steady state.", "deployment completed."} {
		if !hasEventLike(svc, want) {
			t.Fatalf("no event %q in %s", want, eventText(svc))
		}
	}
	// The default strategy spreads the tasks over both instances.
	per := map[string]int{}
	for _, tk := range serviceTasks(t, c, "svc", "web") {
		per[aws.ToString(tk.ContainerInstanceArn)]++
		if aws.ToString(tk.Group) != "service:web" || !strings.HasPrefix(aws.ToString(tk.StartedBy), "ecs-svc/") {
			t.Fatalf("task group %q startedBy %q", aws.ToString(tk.Group), aws.ToString(tk.StartedBy))
		}
	}
	if len(per) != 2 || len(sims) != 2 {
		t.Fatalf("tasks per instance = %v, want spread over 2", per)
	}
	cl := must[*ecs.DescribeClustersOutput](t)(c.DescribeClusters(ctx(t), &ecs.DescribeClustersInput{Clusters: []string{"svc"}})).Clusters[0]
	if cl.ActiveServicesCount != 1 || cl.RunningTasksCount != 3 {
		t.Fatalf("cluster counts: services %d running %d", cl.ActiveServicesCount, cl.RunningTasksCount)
	}
	resp, err := http.Get(b.endpoint + "/_berth/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"berth_service_tasks_started_total 3", `berth_service_deployments_finished_total{status="SUCCESSFUL"} 1`} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestServiceReplacesStoppedTask(t *testing.T) {
	_, c, sims := serviceCluster(t, "heal", 1)
	td := registerApp(t, c, "web", "berth-testapp:latest", 64)
	createService(t, c, "heal", "web", td, 2)
	waitStable(t, c, "heal", "web")
	victim := aws.ToString(serviceTasks(t, c, "heal", "web")[0].TaskArn)
	sims[0].crash(victim)
	eventually(t, "a replacement task", func() bool {
		tasks := serviceTasks(t, c, "heal", "web")
		return len(tasks) == 2 && !slices.ContainsFunc(tasks, func(tk types.Task) bool { return aws.ToString(tk.TaskArn) == victim })
	})
	svc := waitStable(t, c, "heal", "web")
	if svc.RunningCount != 2 || svc.Deployments[0].FailedTasks != 0 {
		t.Fatalf("after healing: running %d failedTasks %d", svc.RunningCount, svc.Deployments[0].FailedTasks)
	}
}

func TestServiceScalesAndExplainsPlacementFailures(t *testing.T) {
	_, c, _ := serviceCluster(t, "scale", 1)
	td := registerApp(t, c, "big", "berth-testapp:latest", 400)
	createService(t, c, "scale", "big", td, 2)
	waitStable(t, c, "scale", "big")
	// 1024 MiB holds two 400 MiB tasks, not three.
	must[*ecs.UpdateServiceOutput](t)(c.UpdateService(ctx(t), &ecs.UpdateServiceInput{
		Cluster: aws.String("scale"), Service: aws.String("big"), DesiredCount: aws.Int32(3)}))
	eventually(t, "a placement failure event", func() bool {
		return hasEventLike(describeService(t, c, "scale", "big"), "was unable to place a task because no container instance met all of its requirements. The closest matching container-instance")
	})
	svc := describeService(t, c, "scale", "big")
	if !hasEventLike(svc, "has insufficient memory available.") || svc.RunningCount != 2 {
		t.Fatalf("running %d events %s", svc.RunningCount, eventText(svc))
	}
	// Scaling in stops a task and the service is stable again.
	must[*ecs.UpdateServiceOutput](t)(c.UpdateService(ctx(t), &ecs.UpdateServiceInput{
		Cluster: aws.String("scale"), Service: aws.String("big"), DesiredCount: aws.Int32(1)}))
	svc = waitStable(t, c, "scale", "big")
	if svc.RunningCount != 1 || !hasEventLike(svc, "has stopped 1 running tasks:") {
		t.Fatalf("running %d events %s", svc.RunningCount, eventText(svc))
	}
}

func TestServiceRollingUpdate(t *testing.T) {
	_, c, _ := serviceCluster(t, "roll", 2)
	v1 := registerApp(t, c, "web", "berth-testapp:v1", 64)
	v2 := registerApp(t, c, "web", "berth-testapp:v2", 64)
	createService(t, c, "roll", "web", v1, 3)
	waitStable(t, c, "roll", "web")
	up := must[*ecs.UpdateServiceOutput](t)(c.UpdateService(ctx(t), &ecs.UpdateServiceInput{
		Cluster: aws.String("roll"), Service: aws.String("web"), TaskDefinition: aws.String(v2)}))
	if len(up.Service.Deployments) != 2 || aws.ToString(up.Service.Deployments[0].Status) != "PRIMARY" {
		t.Fatalf("deployments after update = %+v", up.Service.Deployments)
	}
	svc := waitStable(t, c, "roll", "web")
	if aws.ToString(svc.TaskDefinition) != v2 || len(svc.Deployments) != 1 || svc.Deployments[0].RolloutState != types.DeploymentRolloutStateCompleted {
		t.Fatalf("service after rollout: td %s deployments %+v", aws.ToString(svc.TaskDefinition), svc.Deployments)
	}
	for _, tk := range serviceTasks(t, c, "roll", "web") {
		if aws.ToString(tk.TaskDefinitionArn) != v2 {
			t.Fatalf("task %s still runs %s", aws.ToString(tk.TaskArn), aws.ToString(tk.TaskDefinitionArn))
		}
	}
	deps := must[*ecs.ListServiceDeploymentsOutput](t)(c.ListServiceDeployments(ctx(t), &ecs.ListServiceDeploymentsInput{
		Cluster: aws.String("roll"), Service: aws.String("web")})).ServiceDeployments
	if len(deps) != 2 {
		t.Fatalf("service deployments = %+v", deps)
	}
	for _, d := range deps {
		if d.Status != types.ServiceDeploymentStatusSuccessful {
			t.Fatalf("service deployment %s is %s, want SUCCESSFUL", aws.ToString(d.ServiceDeploymentArn), d.Status)
		}
	}
}

func TestServiceCircuitBreakerRollsBack(t *testing.T) {
	_, c, sims := serviceCluster(t, "cb", 2)
	good := registerApp(t, c, "web", "berth-testapp:good", 64)
	bad := registerApp(t, c, "web", "berth-testapp:exits", 64)
	for _, s := range sims {
		s.SetFail(func(dt agentapi.DesiredTask) bool {
			return dt.Definition.ContainerDefinitions[0].Image == "berth-testapp:exits"
		})
	}
	must[*ecs.CreateServiceOutput](t)(c.CreateService(ctx(t), &ecs.CreateServiceInput{
		Cluster: aws.String("cb"), ServiceName: aws.String("web"), TaskDefinition: aws.String(good), DesiredCount: aws.Int32(2),
		DeploymentConfiguration: &types.DeploymentConfiguration{
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true},
		},
	}))
	waitStable(t, c, "cb", "web")
	must[*ecs.UpdateServiceOutput](t)(c.UpdateService(ctx(t), &ecs.UpdateServiceInput{
		Cluster: aws.String("cb"), Service: aws.String("web"), TaskDefinition: aws.String(bad)}))
	eventually(t, "the circuit breaker", func() bool {
		return hasEventLike(describeService(t, c, "cb", "web"), "deployment failed: tasks failed to start.")
	})
	svc := waitStable(t, c, "cb", "web")
	if aws.ToString(svc.TaskDefinition) != good || !hasEventLike(svc, "rolling back to deployment") {
		t.Fatalf("after rollback: td %s events %s", aws.ToString(svc.TaskDefinition), eventText(svc))
	}
	deps := must[*ecs.ListServiceDeploymentsOutput](t)(c.ListServiceDeployments(ctx(t), &ecs.ListServiceDeploymentsInput{
		Cluster: aws.String("cb"), Service: aws.String("web")})).ServiceDeployments
	statuses := map[types.ServiceDeploymentStatus]int{}
	for _, d := range deps {
		statuses[d.Status]++
	}
	if statuses[types.ServiceDeploymentStatusRollbackSuccessful] != 1 || statuses[types.ServiceDeploymentStatusSuccessful] != 1 {
		t.Fatalf("service deployment statuses = %v", statuses)
	}
}

func TestServiceDrainMovesTasks(t *testing.T) {
	_, c, sims := serviceCluster(t, "drain", 2)
	td := registerApp(t, c, "web", "berth-testapp:latest", 64)
	createService(t, c, "drain", "web", td, 4)
	waitStable(t, c, "drain", "web")
	drained := sims[0].arn(nil, "drain")
	must[*ecs.UpdateContainerInstancesStateOutput](t)(c.UpdateContainerInstancesState(ctx(t), &ecs.UpdateContainerInstancesStateInput{
		Cluster: aws.String("drain"), ContainerInstances: []string{drained}, Status: types.ContainerInstanceStatusDraining}))
	eventually(t, "tasks to leave the draining instance", func() bool {
		tasks := serviceTasks(t, c, "drain", "web")
		return len(tasks) == 4 && !slices.ContainsFunc(tasks, func(tk types.Task) bool { return aws.ToString(tk.ContainerInstanceArn) == drained })
	})
	svc := waitStable(t, c, "drain", "web")
	if svc.RunningCount != 4 {
		t.Fatalf("running %d", svc.RunningCount)
	}
}

func TestDaemonServiceFollowsInstances(t *testing.T) {
	b, c, sims := serviceCluster(t, "dmn", 2)
	td := registerApp(t, c, "agent", "berth-testapp:latest", 32)
	must[*ecs.CreateServiceOutput](t)(c.CreateService(ctx(t), &ecs.CreateServiceInput{
		Cluster: aws.String("dmn"), ServiceName: aws.String("logs"), TaskDefinition: aws.String(td),
		SchedulingStrategy: types.SchedulingStrategyDaemon,
	}))
	svc := waitStable(t, c, "dmn", "logs")
	if svc.DesiredCount != 2 || svc.RunningCount != 2 {
		t.Fatalf("daemon desired %d running %d", svc.DesiredCount, svc.RunningCount)
	}
	third := startSimAgent(t, b, "dmn", 1024, 1024, nil)
	eventually(t, "a daemon task on the new instance", func() bool {
		return slices.ContainsFunc(serviceTasks(t, c, "dmn", "logs"), func(tk types.Task) bool {
			return aws.ToString(tk.ContainerInstanceArn) == third.arn(b, "dmn") && aws.ToString(tk.LastStatus) == "RUNNING"
		})
	})
	must[*ecs.UpdateContainerInstancesStateOutput](t)(c.UpdateContainerInstancesState(ctx(t), &ecs.UpdateContainerInstancesStateInput{
		Cluster: aws.String("dmn"), ContainerInstances: []string{sims[0].arn(b, "dmn")}, Status: types.ContainerInstanceStatusDraining}))
	eventually(t, "the daemon task to leave the draining instance", func() bool {
		tasks := serviceTasks(t, c, "dmn", "logs")
		return len(tasks) == 2 && !slices.ContainsFunc(tasks, func(tk types.Task) bool { return aws.ToString(tk.ContainerInstanceArn) == sims[0].arn(b, "dmn") })
	})
	svc = waitStable(t, c, "dmn", "logs")
	if svc.DesiredCount != 2 {
		t.Fatalf("daemon desired %d after drain, want 2", svc.DesiredCount)
	}
}

func TestDeleteServiceDrainsToInactive(t *testing.T) {
	_, c, _ := serviceCluster(t, "del", 1)
	td := registerApp(t, c, "web", "berth-testapp:latest", 64)
	createService(t, c, "del", "web", td, 2)
	waitStable(t, c, "del", "web")
	out := must[*ecs.DeleteServiceOutput](t)(c.DeleteService(ctx(t), &ecs.DeleteServiceInput{
		Cluster: aws.String("del"), Service: aws.String("web"), Force: aws.Bool(true)}))
	if aws.ToString(out.Service.Status) != "DRAINING" {
		t.Fatalf("status after delete = %s", aws.ToString(out.Service.Status))
	}
	w := ecs.NewServicesInactiveWaiter(c, func(o *ecs.ServicesInactiveWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
	})
	if err := w.Wait(ctx(t), &ecs.DescribeServicesInput{Cluster: aws.String("del"), Services: []string{"web"}}, 30*time.Second); err != nil {
		t.Fatalf("services-inactive: %v", err)
	}
	if n := len(serviceTasks(t, c, "del", "web")); n != 0 {
		t.Fatalf("%d tasks left running", n)
	}
	// The name can be used again.
	createService(t, c, "del", "web", td, 1)
	waitStable(t, c, "del", "web")
}

// TestServiceSurvivesControlPlaneRestart restarts the control plane under a
// steady service and in the middle of a rollout, with real agents over the
// fake runtime: afterwards the service has exactly its tasks, none doubled
// and none lost.
func TestServiceSurvivesControlPlaneRestart(t *testing.T) {
	cl := testcluster.Start(t)
	c := cl.ECS()
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("rs")}))
	for range 2 {
		cl.AddAgent("rs", fake.New(fake.Options{Images: []string{"app:1", "app:2"}}))
	}
	v1 := registerApp(t, c, "web", "app:1", 64)
	v2 := registerApp(t, c, "web", "app:2", 64)
	createService(t, c, "rs", "web", v1, 4)
	waitStable(t, c, "rs", "web")
	arns := func(status types.DesiredStatus) []string {
		out := must[*ecs.ListTasksOutput](t)(c.ListTasks(ctx(t), &ecs.ListTasksInput{Cluster: aws.String("rs"), ServiceName: aws.String("web"), DesiredStatus: status}))
		return slices.Sorted(slices.Values(out.TaskArns))
	}
	before := arns(types.DesiredStatusRunning)
	cl.RestartControlPlane()
	waitStable(t, c, "rs", "web")
	if after := arns(types.DesiredStatusRunning); !slices.Equal(before, after) {
		t.Fatalf("tasks changed across a restart of a steady service:\nbefore %v\nafter  %v", before, after)
	}
	must[*ecs.UpdateServiceOutput](t)(c.UpdateService(ctx(t), &ecs.UpdateServiceInput{
		Cluster: aws.String("rs"), Service: aws.String("web"), TaskDefinition: aws.String(v2)}))
	cl.RestartControlPlane()
	svc := waitStable(t, c, "rs", "web")
	running := arns(types.DesiredStatusRunning)
	if len(running) != 4 || svc.RunningCount != 4 {
		t.Fatalf("after a restart mid-rollout: %d tasks desired RUNNING, runningCount %d", len(running), svc.RunningCount)
	}
	for _, tk := range serviceTasks(t, c, "rs", "web") {
		if aws.ToString(tk.TaskDefinitionArn) != v2 {
			t.Fatalf("task %s runs %s", aws.ToString(tk.TaskArn), aws.ToString(tk.TaskDefinitionArn))
		}
	}
	if stopped := arns(types.DesiredStatusStopped); len(stopped) != 4 || !slices.Equal(stopped, before) {
		t.Fatalf("stopped tasks = %v, want exactly the 4 of v1", stopped)
	}
}

// TestStopServiceDeploymentRollsBack stops a rollout that cannot finish
// (its tasks never leave PENDING) and gets the last completed revision back.
func TestStopServiceDeploymentRollsBack(t *testing.T) {
	_, c, sims := serviceCluster(t, "stop", 1)
	v1 := registerApp(t, c, "web", "berth-testapp:v1", 64)
	v2 := registerApp(t, c, "web", "berth-testapp:slow", 64)
	sims[0].HoldIf(func(dt agentapi.DesiredTask) bool {
		return dt.Definition.ContainerDefinitions[0].Image == "berth-testapp:slow"
	})
	createService(t, c, "stop", "web", v1, 2)
	waitStable(t, c, "stop", "web")
	up := must[*ecs.UpdateServiceOutput](t)(c.UpdateService(ctx(t), &ecs.UpdateServiceInput{
		Cluster: aws.String("stop"), Service: aws.String("web"), TaskDefinition: aws.String(v2)}))
	arn := aws.ToString(up.Service.CurrentServiceDeployment)
	eventually(t, "the new tasks to be pending", func() bool { return describeService(t, c, "stop", "web").PendingCount == 2 })
	must[*ecs.StopServiceDeploymentOutput](t)(c.StopServiceDeployment(ctx(t), &ecs.StopServiceDeploymentInput{
		ServiceDeploymentArn: aws.String(arn), StopType: types.StopServiceDeploymentStopTypeRollback}))
	svc := waitStable(t, c, "stop", "web")
	if aws.ToString(svc.TaskDefinition) != v1 || svc.RunningCount != 2 || svc.PendingCount != 0 {
		t.Fatalf("after the rollback: td %s running %d pending %d", aws.ToString(svc.TaskDefinition), svc.RunningCount, svc.PendingCount)
	}
	d := must[*ecs.DescribeServiceDeploymentsOutput](t)(c.DescribeServiceDeployments(ctx(t), &ecs.DescribeServiceDeploymentsInput{
		ServiceDeploymentArns: []string{arn}})).ServiceDeployments
	if len(d) != 1 || d[0].Status != types.ServiceDeploymentStatusRollbackSuccessful || d[0].Rollback == nil {
		t.Fatalf("service deployment = %+v", d)
	}
}
