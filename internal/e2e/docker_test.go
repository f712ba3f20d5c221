package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/controlplane"
	"github.com/berthdev/berth/internal/runtime"
	"github.com/berthdev/berth/internal/runtime/docker"
	"github.com/berthdev/berth/internal/testcluster"
	"github.com/berthdev/berth/internal/testimage"
)

// dockerCluster starts a control plane with one agent over the real Docker
// Engine, and returns the test image to run. Without Docker the test is
// skipped outside CI and fails in CI (testimage.Require).
func dockerCluster(t *testing.T) (*testcluster.Cluster, *testcluster.Agent, *docker.Runtime, string) {
	t.Helper()
	image := testimage.Require(t)
	rt, err := docker.New(docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	c := testcluster.Start(t)
	must[*ecs.CreateClusterOutput](t)(c.ECS().CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("dock")}))
	a := c.AddAgent("dock", rt)
	t.Cleanup(func() { removeTaskContainers(t, rt, c) })
	return c, a, rt, image
}

// removeTaskContainers removes the containers this test's agents made
// (only theirs: other tests may share the engine).
func removeTaskContainers(t *testing.T, rt runtime.Runtime, c *testcluster.Cluster) {
	for _, a := range c.Agents() {
		cs, err := rt.List(ctx(t), map[string]string{"dev.berth.container-instance": a.InstanceID()})
		if err != nil {
			return
		}
		for _, ct := range cs {
			_ = rt.Remove(ctx(t), ct.ID)
		}
	}
}

func waitTaskStatus(t *testing.T, c *ecs.Client, arn, status string) types.Task {
	t.Helper()
	var task types.Task
	eventually(t, "task "+status, func() bool {
		task = describeTask(t, c, "dock", arn)
		if aws.ToString(task.LastStatus) == "STOPPED" && status != "STOPPED" {
			t.Fatalf("task stopped while waiting for %s: %s %s", status, task.StopCode, aws.ToString(task.StoppedReason))
		}
		return aws.ToString(task.LastStatus) == status
	})
	return task
}

func runOne(t *testing.T, c *ecs.Client, in *ecs.RunTaskInput) string {
	t.Helper()
	in.Cluster = aws.String("dock")
	out := must[*ecs.RunTaskOutput](t)(c.RunTask(ctx(t), in))
	if len(out.Tasks) != 1 {
		t.Fatalf("run-task: %+v", out.Failures)
	}
	return aws.ToString(out.Tasks[0].TaskArn)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	var body string
	eventually(t, "GET "+url, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	return body
}

func containerOf(task types.Task, name string) types.Container {
	for _, c := range task.Containers {
		if aws.ToString(c.Name) == name {
			return c
		}
	}
	return types.Container{}
}

// TestDockerMultiContainerTask runs an app and a sidecar that waits for the
// app to be HEALTHY, reaches the app on its dynamic host port, and stops the
// task.
func TestDockerMultiContainerTask(t *testing.T) {
	cl, _, rt, image := dockerCluster(t)
	c := cl.ECS()
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("pair"),
		ContainerDefinitions: []types.ContainerDefinition{
			{
				Name: aws.String("app"), Image: aws.String(image), Memory: aws.Int32(64),
				Command:      []string{"serve", "-port", "8080", "-name", "app"},
				PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080)}},
				HealthCheck: &types.HealthCheck{Command: []string{"CMD", "/app", "check", "http://localhost:8080/health"},
					Interval: aws.Int32(5), Timeout: aws.Int32(2), Retries: aws.Int32(3)},
			},
			{
				Name: aws.String("sidecar"), Image: aws.String(image), Memory: aws.Int32(32), Essential: aws.Bool(false),
				Command:   []string{"sleep"},
				DependsOn: []types.ContainerDependency{{ContainerName: aws.String("app"), Condition: types.ContainerConditionHealthy}},
			},
		},
	}))
	arn := runOne(t, c, &ecs.RunTaskInput{TaskDefinition: aws.String("pair")})
	task := waitTaskStatus(t, c, arn, "RUNNING")
	app, side := containerOf(task, "app"), containerOf(task, "sidecar")
	if len(app.NetworkBindings) != 1 || aws.ToInt32(app.NetworkBindings[0].HostPort) == 0 {
		t.Fatalf("app network bindings: %+v", app.NetworkBindings)
	}
	port := aws.ToInt32(app.NetworkBindings[0].HostPort)
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); !strings.Contains(body, `"name":"app"`) {
		t.Fatalf("app answered %q", body)
	}
	// The sidecar started only once the app was healthy.
	appState := must[runtime.ContainerState](t)(rt.Inspect(ctx(t), aws.ToString(app.RuntimeId)))
	sideState := must[runtime.ContainerState](t)(rt.Inspect(ctx(t), aws.ToString(side.RuntimeId)))
	if appState.Health != runtime.HealthHealthy || !sideState.StartedAt.After(appState.StartedAt.Add(time.Second)) {
		t.Fatalf("sidecar started at %v, app at %v with health %q", sideState.StartedAt, appState.StartedAt, appState.Health)
	}
	if app.HealthStatus != types.HealthStatusHealthy || task.HealthStatus != types.HealthStatusHealthy {
		t.Fatalf("health: app %s task %s", app.HealthStatus, task.HealthStatus)
	}
	// Docker labels as ECS sets them.
	for k, want := range map[string]string{
		"com.amazonaws.ecs.cluster": "dock", "com.amazonaws.ecs.task-arn": arn, "com.amazonaws.ecs.container-name": "app",
		"com.amazonaws.ecs.task-definition-family": "pair", "com.amazonaws.ecs.task-definition-version": "1",
	} {
		if appState.Labels[k] != want {
			t.Fatalf("label %s = %q, want %q", k, appState.Labels[k], want)
		}
	}
	must[*ecs.StopTaskOutput](t)(c.StopTask(ctx(t), &ecs.StopTaskInput{Cluster: aws.String("dock"), Task: aws.String(arn), Reason: aws.String("test over")}))
	stopped := waitTaskStatus(t, c, arn, "STOPPED")
	if stopped.StopCode != types.TaskStopCodeUserInitiated || aws.ToString(stopped.StoppedReason) != "test over" || stopped.StoppedAt == nil || stopped.ExecutionStoppedAt == nil {
		t.Fatalf("stopped task: %s %q", stopped.StopCode, aws.ToString(stopped.StoppedReason))
	}
	for _, ct := range stopped.Containers {
		if aws.ToString(ct.LastStatus) != "STOPPED" || ct.ExitCode == nil || *ct.ExitCode != 0 {
			t.Fatalf("container %s after stop: %s exit %v", aws.ToString(ct.Name), aws.ToString(ct.LastStatus), ct.ExitCode)
		}
	}
}

// TestDockerEssentialExit: an essential container that exits stops its
// task; a non-essential one does not.
func TestDockerEssentialExit(t *testing.T) {
	cl, _, _, image := dockerCluster(t)
	c := cl.ECS()
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("exits"),
		ContainerDefinitions: []types.ContainerDefinition{
			{Name: aws.String("main"), Image: aws.String(image), Memory: aws.Int32(32), Command: []string{"sleep"}},
			{Name: aws.String("helper"), Image: aws.String(image), Memory: aws.Int32(32), Essential: aws.Bool(false), Command: []string{"exit", "4"}},
		},
	}))
	arn := runOne(t, c, &ecs.RunTaskInput{TaskDefinition: aws.String("exits")})
	var task types.Task
	// The helper may exit before the task reaches RUNNING; the task must get
	// there anyway and stay there.
	eventually(t, "task RUNNING with the helper exited", func() bool {
		task = describeTask(t, c, "dock", arn)
		return containerOf(task, "helper").ExitCode != nil && aws.ToString(task.LastStatus) == "RUNNING"
	})
	if aws.ToString(task.LastStatus) != "RUNNING" || aws.ToInt32(containerOf(task, "helper").ExitCode) != 4 {
		t.Fatalf("after a non-essential exit: task %s, helper exit %v", aws.ToString(task.LastStatus), containerOf(task, "helper").ExitCode)
	}
	// Now make the essential one exit, through an override of its command.
	arn2 := runOne(t, c, &ecs.RunTaskInput{TaskDefinition: aws.String("exits"), Overrides: &types.TaskOverride{
		ContainerOverrides: []types.ContainerOverride{{Name: aws.String("main"), Command: []string{"exit", "3", "-after", "300ms"}}},
	}})
	stopped := waitTaskStatus(t, c, arn2, "STOPPED")
	if stopped.StopCode != types.TaskStopCodeEssentialContainerExited || aws.ToString(stopped.StoppedReason) != "Essential container in task exited" ||
		aws.ToInt32(containerOf(stopped, "main").ExitCode) != 3 {
		t.Fatalf("essential exit: %s %q main exit %v", stopped.StopCode, aws.ToString(stopped.StoppedReason), containerOf(stopped, "main").ExitCode)
	}
}

// TestDockerOverridesAndMetadata checks environment overrides and the task
// metadata endpoint v4 from inside a container.
func TestDockerOverridesAndMetadata(t *testing.T) {
	cl, _, rt, image := dockerCluster(t)
	c := cl.ECS()
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("meta"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String(image), Memory: aws.Int32(32), Command: []string{"serve", "-port", "8080"},
			Environment:  []types.KeyValuePair{{Name: aws.String("COLOR"), Value: aws.String("blue")}},
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080)}},
		}},
	}))
	arn := runOne(t, c, &ecs.RunTaskInput{TaskDefinition: aws.String("meta"), Overrides: &types.TaskOverride{
		ContainerOverrides: []types.ContainerOverride{{Name: aws.String("app"), Environment: []types.KeyValuePair{{Name: aws.String("COLOR"), Value: aws.String("green")}}}},
	}})
	task := waitTaskStatus(t, c, arn, "RUNNING")
	port := aws.ToInt32(containerOf(task, "app").NetworkBindings[0].HostPort)
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/env?k=COLOR", port)); strings.TrimSpace(got) != "green" {
		t.Fatalf("COLOR = %q, want the override", got)
	}
	uri := strings.TrimSpace(httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/env?k=ECS_CONTAINER_METADATA_URI_V4", port)))
	if uri == "" {
		t.Fatal("ECS_CONTAINER_METADATA_URI_V4 is not set in the container")
	}
	// A one-shot container of the same task family prints the metadata it reads.
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("meta-reader"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("reader"), Image: aws.String(image), Memory: aws.Int32(32), Command: []string{"metadata"},
		}},
	}))
	reader := runOne(t, c, &ecs.RunTaskInput{TaskDefinition: aws.String("meta-reader")})
	done := waitTaskStatus(t, c, reader, "STOPPED")
	rc := containerOf(done, "reader")
	if aws.ToInt32(rc.ExitCode) != 0 {
		t.Fatalf("metadata reader exited %v: %s", rc.ExitCode, aws.ToString(done.StoppedReason))
	}
	logs := must[io.ReadCloser](t)(rt.Logs(ctx(t), aws.ToString(rc.RuntimeId), false))
	out, _ := io.ReadAll(logs)
	logs.Close()
	var sawContainer, sawTask bool
	for _, line := range strings.Split(string(out), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if m["Name"] == "reader" && m["DockerId"] == aws.ToString(rc.RuntimeId) {
			sawContainer = true
		}
		if m["TaskARN"] == reader && m["Family"] == "meta-reader" && m["Cluster"] != nil {
			sawTask = true
		}
	}
	if !sawContainer || !sawTask {
		t.Fatalf("metadata v4 from inside the container:\n%s", out)
	}
}

// TestDockerAwsvpc: an awsvpc task gets its own address, reported as its ENI.
func TestDockerAwsvpc(t *testing.T) {
	cl, _, _, image := dockerCluster(t)
	c := cl.ECS()
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("vpc"), NetworkMode: types.NetworkModeAwsvpc,
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String(image), Memory: aws.Int32(32), Command: []string{"serve", "-port", "8080"},
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080)}},
		}},
	}))
	netcfg := &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-berth"}}}
	ips := map[string]bool{}
	for i := 0; i < 2; i++ {
		arn := runOne(t, c, &ecs.RunTaskInput{TaskDefinition: aws.String("vpc"), NetworkConfiguration: netcfg})
		task := waitTaskStatus(t, c, arn, "RUNNING")
		ip := ""
		for _, at := range task.Attachments {
			for _, d := range at.Details {
				if aws.ToString(d.Name) == "privateIPv4Address" {
					ip = aws.ToString(d.Value)
				}
			}
		}
		if ip == "" || ips[ip] {
			t.Fatalf("awsvpc task %d address %q (seen %v); attachments %+v", i, ip, ips, task.Attachments)
		}
		ips[ip] = true
		// Both tasks listen on 8080 of their own address.
		if body := httpGet(t, "http://"+ip+":8080/"); !strings.Contains(body, ip) {
			t.Fatalf("task at %s answered %q", ip, body)
		}
	}
}

// TestDockerAgentRestartReadopts stops the agent while a task runs, starts
// it again on the same state, and checks the task's container was neither
// lost nor duplicated, and the task still stops cleanly.
func TestDockerAgentRestartReadopts(t *testing.T) {
	cl, a, rt, image := dockerCluster(t)
	c := cl.ECS()
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family:               aws.String("long"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(image), Memory: aws.Int32(32), Command: []string{"sleep"}}},
	}))
	arn := runOne(t, c, &ecs.RunTaskInput{TaskDefinition: aws.String("long")})
	before := containerOf(waitTaskStatus(t, c, arn, "RUNNING"), "app")
	id := a.InstanceID()
	a.Stop()
	// While the agent is away, its container keeps running and the instance
	// shows the agent disconnected.
	eventually(t, "agent disconnected", func() bool {
		ci := must[*ecs.DescribeContainerInstancesOutput](t)(c.DescribeContainerInstances(ctx(t), &ecs.DescribeContainerInstancesInput{Cluster: aws.String("dock"), ContainerInstances: []string{id}}))
		return len(ci.ContainerInstances) == 1 && !ci.ContainerInstances[0].AgentConnected
	})
	if st := must[runtime.ContainerState](t)(rt.Inspect(ctx(t), aws.ToString(before.RuntimeId))); !st.Running {
		t.Fatal("the task's container stopped with its agent")
	}
	a.Start()
	if a.InstanceID() != id {
		t.Fatalf("restarted agent registered as %s, was %s", a.InstanceID(), id)
	}
	after := containerOf(waitTaskStatus(t, c, arn, "RUNNING"), "app")
	cs := must[[]runtime.ContainerState](t)(rt.List(ctx(t), map[string]string{"com.amazonaws.ecs.task-arn": arn}))
	if len(cs) != 1 || cs[0].ID != aws.ToString(before.RuntimeId) || aws.ToString(after.RuntimeId) != cs[0].ID {
		t.Fatalf("after restart: %d containers for the task, runtime id %s then %s", len(cs), aws.ToString(before.RuntimeId), aws.ToString(after.RuntimeId))
	}
	must[*ecs.StopTaskOutput](t)(c.StopTask(ctx(t), &ecs.StopTaskInput{Cluster: aws.String("dock"), Task: aws.String(arn)}))
	waitTaskStatus(t, c, arn, "STOPPED")
}

// TestDockerControlPlaneRestart restarts the control plane under a running
// task: the agent reconnects, the task is still reported RUNNING, and new
// tasks run.
func TestDockerControlPlaneRestart(t *testing.T) {
	cl, a, _, image := dockerCluster(t)
	c := cl.ECS()
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family:               aws.String("steady"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(image), Memory: aws.Int32(32), Command: []string{"sleep"}}},
	}))
	arn := runOne(t, c, &ecs.RunTaskInput{TaskDefinition: aws.String("steady")})
	before := containerOf(waitTaskStatus(t, c, arn, "RUNNING"), "app")
	cl.RestartControlPlane()
	c = cl.ECS()
	eventually(t, "agent reconnected", func() bool {
		ci := must[*ecs.DescribeContainerInstancesOutput](t)(c.DescribeContainerInstances(ctx(t), &ecs.DescribeContainerInstancesInput{Cluster: aws.String("dock"), ContainerInstances: []string{a.InstanceID()}}))
		return len(ci.ContainerInstances) == 1 && ci.ContainerInstances[0].AgentConnected
	})
	if got := containerOf(describeTask(t, c, "dock", arn), "app"); aws.ToString(got.RuntimeId) != aws.ToString(before.RuntimeId) || aws.ToString(got.LastStatus) != "RUNNING" {
		t.Fatalf("after the restart the task shows %s on %s", aws.ToString(got.LastStatus), aws.ToString(got.RuntimeId))
	}
	arn2 := runOne(t, c, &ecs.RunTaskInput{TaskDefinition: aws.String("steady")})
	waitTaskStatus(t, c, arn2, "RUNNING")
}

// startAgentProcess runs `berth agent` as a child process.
func startAgentProcess(t *testing.T, bin string, b *berth, cluster, stateDir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "agent", "--server", b.endpoint, "--cluster", cluster, "--state-dir", stateDir,
		"--metadata-listen", "0.0.0.0:0", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "BERTH_JOIN_TOKEN="+b.cp.JoinToken())
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	})
	return cmd
}

// TestKill9AgentLosesNoContainer kills a real `berth agent` process with
// SIGKILL while its task runs, starts it again, and checks that the
// container was neither lost nor duplicated and the task still stops.
func TestKill9AgentLosesNoContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a berth agent process")
	}
	image := testimage.Require(t)
	rt, err := docker.New(docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	bin := buildBerth(t)
	b := startBerth(t, func(c *controlplane.Config) { c.AgentDisconnectGrace = time.Second })
	c := b.ecsClient()
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("kill")}))
	t.Cleanup(func() {
		cs, _ := rt.List(ctx(t), map[string]string{"com.amazonaws.ecs.cluster": "kill"})
		for _, ct := range cs {
			_ = rt.Remove(ctx(t), ct.ID)
		}
	})
	state := t.TempDir()
	proc := startAgentProcess(t, bin, b, "kill", state)
	var inst string
	eventually(t, "agent registered", func() bool {
		l := must[*ecs.ListContainerInstancesOutput](t)(c.ListContainerInstances(ctx(t), &ecs.ListContainerInstancesInput{Cluster: aws.String("kill")}))
		if len(l.ContainerInstanceArns) == 1 {
			inst = l.ContainerInstanceArns[0]
		}
		return inst != ""
	})
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family:               aws.String("k9"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(image), Memory: aws.Int32(32), Command: []string{"sleep"}}},
	}))
	out := must[*ecs.RunTaskOutput](t)(c.RunTask(ctx(t), &ecs.RunTaskInput{Cluster: aws.String("kill"), TaskDefinition: aws.String("k9")}))
	arn := aws.ToString(out.Tasks[0].TaskArn)
	var before types.Container
	eventually(t, "task RUNNING", func() bool {
		before = containerOf(describeTask(t, c, "kill", arn), "app")
		return aws.ToString(before.LastStatus) == "RUNNING"
	})
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	proc.Wait()
	if st := must[runtime.ContainerState](t)(rt.Inspect(ctx(t), aws.ToString(before.RuntimeId))); !st.Running {
		t.Fatal("the container died with its agent")
	}
	startAgentProcess(t, bin, b, "kill", state)
	eventually(t, "the same instance reconnected", func() bool {
		d := must[*ecs.DescribeContainerInstancesOutput](t)(c.DescribeContainerInstances(ctx(t), &ecs.DescribeContainerInstancesInput{Cluster: aws.String("kill"), ContainerInstances: []string{inst}}))
		return len(d.ContainerInstances) == 1 && d.ContainerInstances[0].AgentConnected
	})
	if l := must[*ecs.ListContainerInstancesOutput](t)(c.ListContainerInstances(ctx(t), &ecs.ListContainerInstancesInput{Cluster: aws.String("kill")})); len(l.ContainerInstanceArns) != 1 {
		t.Fatalf("the restarted agent registered a second instance: %v", l.ContainerInstanceArns)
	}
	cs := must[[]runtime.ContainerState](t)(rt.List(ctx(t), map[string]string{"com.amazonaws.ecs.task-arn": arn}))
	if len(cs) != 1 || cs[0].ID != aws.ToString(before.RuntimeId) || !cs[0].Running {
		t.Fatalf("after SIGKILL and restart the task has %d containers", len(cs))
	}
	must[*ecs.StopTaskOutput](t)(c.StopTask(ctx(t), &ecs.StopTaskInput{Cluster: aws.String("kill"), Task: aws.String(arn)}))
	eventually(t, "task STOPPED", func() bool { return aws.ToString(describeTask(t, c, "kill", arn).LastStatus) == "STOPPED" })
}

// TestAWSCLIRunsTasks drives a task on Docker with the AWS CLI only.
func TestAWSCLIRunsTasks(t *testing.T) {
	cl, _, _, image := dockerCluster(t)
	b := &berth{cp: cl.CP, endpoint: cl.CP.Endpoint(), key: cl.CP.Key()}
	c := newCLI(t, b)
	c.ok("ecs", "register-task-definition", "--family", "cli-run", "--container-definitions",
		`[{"name":"app","image":"`+image+`","memory":32,"command":["serve","-port","8080"],"portMappings":[{"containerPort":8080}]}]`)
	out := c.ok("ecs", "run-task", "--cluster", "dock", "--task-definition", "cli-run", "--started-by", "cli")
	arn, _ := path(out, "tasks", 0, "taskArn").(string)
	if arn == "" {
		t.Fatalf("run-task: %v", out)
	}
	var port float64
	eventually(t, "RUNNING through the CLI", func() bool {
		d := c.ok("ecs", "describe-tasks", "--cluster", "dock", "--tasks", arn)
		port, _ = path(d, "tasks", 0, "containers", 0, "networkBindings", 0, "hostPort").(float64)
		return path(d, "tasks", 0, "lastStatus") == "RUNNING"
	})
	httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/health", int(port)))
	l := c.ok("ecs", "list-tasks", "--cluster", "dock", "--started-by", "cli")
	if path(l, "taskArns", 0) != arn {
		t.Fatalf("list-tasks: %v", l)
	}
	ci := c.ok("ecs", "describe-container-instances", "--cluster", "dock", "--container-instances",
		path(c.ok("ecs", "list-container-instances", "--cluster", "dock"), "containerInstanceArns", 0).(string))
	if path(ci, "containerInstances", 0, "agentConnected") != true || path(ci, "containerInstances", 0, "runningTasksCount") != 1.0 {
		t.Fatalf("describe-container-instances: %v", ci)
	}
	c.ok("ecs", "stop-task", "--cluster", "dock", "--task", arn, "--reason", "cli done")
	// The CLI's own waiter must see it stop.
	c.ok("ecs", "wait", "tasks-stopped", "--cluster", "dock", "--tasks", arn)
	d := c.ok("ecs", "describe-tasks", "--cluster", "dock", "--tasks", arn)
	if path(d, "tasks", 0, "stopCode") != "UserInitiated" || path(d, "tasks", 0, "stoppedReason") != "cli done" {
		t.Fatalf("stopped through the CLI: %v", d)
	}
}

// TestDockerVolumesAndStopTimeout: containers share a task-scoped volume
// (one writes, one reads after it completes), and a container that ignores
// SIGTERM is killed after its stopTimeout.
func TestDockerVolumesAndStopTimeout(t *testing.T) {
	cl, _, rt, image := dockerCluster(t)
	c := cl.ECS()
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family:  aws.String("shared"),
		Volumes: []types.Volume{{Name: aws.String("scratch")}},
		ContainerDefinitions: []types.ContainerDefinition{
			{
				Name: aws.String("writer"), Image: aws.String(image), Memory: aws.Int32(32), Essential: aws.Bool(false),
				Command:     []string{"write", "/data/note", "hello from the writer"},
				MountPoints: []types.MountPoint{{SourceVolume: aws.String("scratch"), ContainerPath: aws.String("/data")}},
			},
			{
				Name: aws.String("reader"), Image: aws.String(image), Memory: aws.Int32(32), Essential: aws.Bool(false),
				Command:     []string{"cat", "/data/note"},
				MountPoints: []types.MountPoint{{SourceVolume: aws.String("scratch"), ContainerPath: aws.String("/data"), ReadOnly: aws.Bool(true)}},
				DependsOn:   []types.ContainerDependency{{ContainerName: aws.String("writer"), Condition: types.ContainerConditionSuccess}},
			},
			{
				Name: aws.String("stubborn"), Image: aws.String(image), Memory: aws.Int32(32),
				Command: []string{"ignore-term"}, StopTimeout: aws.Int32(2),
			},
		},
	}))
	arn := runOne(t, c, &ecs.RunTaskInput{TaskDefinition: aws.String("shared")})
	var task types.Task
	eventually(t, "reader done", func() bool {
		task = describeTask(t, c, "dock", arn)
		return containerOf(task, "reader").ExitCode != nil
	})
	reader := containerOf(task, "reader")
	if aws.ToInt32(reader.ExitCode) != 0 {
		t.Fatalf("reader exited %d", aws.ToInt32(reader.ExitCode))
	}
	logs := must[io.ReadCloser](t)(rt.Logs(ctx(t), aws.ToString(reader.RuntimeId), false))
	out, _ := io.ReadAll(logs)
	logs.Close()
	if !strings.Contains(string(out), "hello from the writer") {
		t.Fatalf("reader saw %q through the shared volume", out)
	}
	start := time.Now()
	must[*ecs.StopTaskOutput](t)(c.StopTask(ctx(t), &ecs.StopTaskInput{Cluster: aws.String("dock"), Task: aws.String(arn)}))
	stopped := waitTaskStatus(t, c, arn, "STOPPED")
	took := time.Since(start)
	if code := aws.ToInt32(containerOf(stopped, "stubborn").ExitCode); code != 137 {
		t.Fatalf("a container ignoring SIGTERM exited %d, want 137 (SIGKILL after stopTimeout)", code)
	}
	if took < 2*time.Second || took > 15*time.Second {
		t.Fatalf("stopping took %v with stopTimeout 2s", took)
	}
}
