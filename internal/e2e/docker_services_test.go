package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestDockerServiceLifecycle runs a service on real Docker with two agents,
// driven by the AWS CLI and the SDK: it becomes stable (the CLI's own
// services-stable waiter), heals a killed container, rolls to a new
// revision, fails a bad revision with the circuit breaker and rolls back,
// and moves its tasks off a drained instance.
func TestDockerServiceLifecycle(t *testing.T) {
	cl, _, rt, image := dockerCluster(t)
	cl.AddAgent("dock", rt)
	b := &berth{cp: cl.CP, endpoint: cl.CP.Endpoint(), key: cl.CP.Key()}
	cli := newCLI(t, b)
	c := cl.ECS()
	td := func(version string, command string) string {
		out := cli.ok("ecs", "register-task-definition", "--family", "svc-web", "--container-definitions",
			`[{"name":"app","image":"`+image+`","memory":32,"command":[`+command+`],"environment":[{"name":"VERSION","value":"`+version+`"}],"portMappings":[{"containerPort":8080}]}]`)
		return path(out, "taskDefinition", "taskDefinitionArn").(string)
	}
	v1 := td("1", `"serve","-port","8080"`)

	// Create a service of 3 and wait with the CLI's waiter.
	cli.ok("ecs", "create-service", "--cluster", "dock", "--service-name", "web", "--task-definition", v1, "--desired-count", "3",
		"--deployment-configuration", "deploymentCircuitBreaker={enable=true,rollback=true}")
	cli.ok("ecs", "wait", "services-stable", "--cluster", "dock", "--services", "web")
	tasks := serviceTasks(t, c, "dock", "web")
	if len(tasks) != 3 {
		t.Fatalf("%d tasks after services-stable, want 3", len(tasks))
	}
	for _, tk := range tasks {
		port := tk.Containers[0].NetworkBindings[0].HostPort
		httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/health", aws.ToInt32(port)))
	}

	// Kill one container: the service replaces its task.
	victim := tasks[0]
	if err := rt.Stop(ctx(t), aws.ToString(victim.Containers[0].RuntimeId), 0); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	eventually(t, "a replacement task RUNNING", func() bool {
		ts := serviceTasks(t, c, "dock", "web")
		running := 0
		for _, tk := range ts {
			if aws.ToString(tk.TaskArn) == aws.ToString(victim.TaskArn) {
				return false
			}
			if aws.ToString(tk.LastStatus) == "RUNNING" {
				running++
			}
		}
		return running == 3
	})
	t.Logf("killed container replaced by a RUNNING task in %v", time.Since(killed).Round(time.Millisecond))
	waitStable(t, c, "dock", "web")

	// Roll to a new revision.
	v2 := td("2", `"serve","-port","8080"`)
	must[*ecs.UpdateServiceOutput](t)(c.UpdateService(ctx(t), &ecs.UpdateServiceInput{
		Cluster: aws.String("dock"), Service: aws.String("web"), TaskDefinition: aws.String(v2)}))
	svc := waitStable(t, c, "dock", "web")
	if aws.ToString(svc.TaskDefinition) != v2 || svc.Deployments[0].RolloutState != types.DeploymentRolloutStateCompleted {
		t.Fatalf("after the rollout: %s %+v", aws.ToString(svc.TaskDefinition), svc.Deployments)
	}
	for _, tk := range serviceTasks(t, c, "dock", "web") {
		if aws.ToString(tk.TaskDefinitionArn) != v2 {
			t.Fatalf("task still on %s", aws.ToString(tk.TaskDefinitionArn))
		}
	}

	// A revision whose container exits at once: the circuit breaker fails
	// the deployment and rolls back to v2.
	bad := td("3", `"exit","1"`)
	must[*ecs.UpdateServiceOutput](t)(c.UpdateService(ctx(t), &ecs.UpdateServiceInput{
		Cluster: aws.String("dock"), Service: aws.String("web"), TaskDefinition: aws.String(bad)}))
	eventually(t, "the circuit breaker to trip", func() bool {
		return hasEventLike(describeService(t, c, "dock", "web"), "deployment failed: tasks failed to start.")
	})
	svc = waitStable(t, c, "dock", "web")
	if aws.ToString(svc.TaskDefinition) != v2 || !hasEventLike(svc, "rolling back to deployment") {
		t.Fatalf("after the rollback: td %s events %s", aws.ToString(svc.TaskDefinition), eventText(svc))
	}

	// Drain the first instance: its tasks move to the second.
	drained := cl.Agents()[0].InstanceARN()
	must[*ecs.UpdateContainerInstancesStateOutput](t)(c.UpdateContainerInstancesState(ctx(t), &ecs.UpdateContainerInstancesStateInput{
		Cluster: aws.String("dock"), ContainerInstances: []string{drained}, Status: types.ContainerInstanceStatusDraining}))
	eventually(t, "tasks to leave the drained instance", func() bool {
		ts := serviceTasks(t, c, "dock", "web")
		return len(ts) == 3 && !slices.ContainsFunc(ts, func(tk types.Task) bool { return aws.ToString(tk.ContainerInstanceArn) == drained })
	})
	waitStable(t, c, "dock", "web")
	cli.ok("ecs", "delete-service", "--cluster", "dock", "--service", "web", "--force")
	cli.ok("ecs", "wait", "services-inactive", "--cluster", "dock", "--services", "web")
}

// TestDockerDaemonService runs one task per instance and follows a new one.
func TestDockerDaemonService(t *testing.T) {
	cl, _, rt, image := dockerCluster(t)
	c := cl.ECS()
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family:               aws.String("daemon"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("d"), Image: aws.String(image), Memory: aws.Int32(16), Command: []string{"sleep"}}},
	}))
	must[*ecs.CreateServiceOutput](t)(c.CreateService(ctx(t), &ecs.CreateServiceInput{
		Cluster: aws.String("dock"), ServiceName: aws.String("d"), TaskDefinition: aws.String("daemon"),
		SchedulingStrategy: types.SchedulingStrategyDaemon,
	}))
	if svc := waitStable(t, c, "dock", "d"); svc.RunningCount != 1 {
		t.Fatalf("running %d on one instance", svc.RunningCount)
	}
	second := cl.AddAgent("dock", rt)
	eventually(t, "a daemon task on the new instance", func() bool {
		return slices.ContainsFunc(serviceTasks(t, c, "dock", "d"), func(tk types.Task) bool {
			return aws.ToString(tk.ContainerInstanceArn) == second.InstanceARN() && aws.ToString(tk.LastStatus) == "RUNNING"
		})
	})
	if svc := waitStable(t, c, "dock", "d"); svc.DesiredCount != 2 || svc.RunningCount != 2 {
		t.Fatalf("daemon desired %d running %d", svc.DesiredCount, svc.RunningCount)
	}
	must[*ecs.DeleteServiceOutput](t)(c.DeleteService(ctx(t), &ecs.DeleteServiceInput{Cluster: aws.String("dock"), Service: aws.String("d")}))
	eventually(t, "daemon tasks to stop", func() bool { return len(serviceTasks(t, c, "dock", "d")) == 0 })
}
