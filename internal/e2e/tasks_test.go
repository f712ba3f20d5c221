package e2e

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/controlplane"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func describeTask(t testing.TB, c *ecs.Client, cluster, arn string) types.Task {
	t.Helper()
	out := must[*ecs.DescribeTasksOutput](t)(c.DescribeTasks(ctx(t), &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{arn}}))
	if len(out.Tasks) != 1 {
		t.Fatalf("describe %s: %+v", arn, out.Failures)
	}
	return out.Tasks[0]
}

func remaining(ci types.ContainerInstance) (cpu, mem int32) {
	for _, r := range ci.RemainingResources {
		switch aws.ToString(r.Name) {
		case "CPU":
			cpu = r.IntegerValue
		case "MEMORY":
			mem = r.IntegerValue
		}
	}
	return cpu, mem
}

// TestTaskLifecycleWithAgentProtocol runs a task through the whole control
// plane and the agent protocol: placement, reservation, the agent's reports,
// StopTask and the release of resources.
func TestTaskLifecycleWithAgentProtocol(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("life")}))
	agent := startSimAgent(t, b, "life", 2048, 4096, map[string]string{"ecs.os-type": "linux", "ecs.cpu-architecture": "x86_64"})
	inst := agent.arn(b, "life")

	ci := must[*ecs.DescribeContainerInstancesOutput](t)(c.DescribeContainerInstances(ctx(t), &ecs.DescribeContainerInstancesInput{Cluster: aws.String("life"), ContainerInstances: []string{inst}})).ContainerInstances[0]
	if !ci.AgentConnected || aws.ToString(ci.Status) != "ACTIVE" {
		t.Fatalf("registered instance: connected=%v status=%s", ci.AgentConnected, aws.ToString(ci.Status))
	}
	if cpu, mem := remaining(ci); cpu != 2048 || mem != 4096 {
		t.Fatalf("remaining before: cpu %d mem %d", cpu, mem)
	}

	td := web("life-web")
	td.ContainerDefinitions[0].Cpu = 512
	td.ContainerDefinitions[0].PortMappings[0].HostPort = aws.Int32(8080)
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), td))
	run := must[*ecs.RunTaskOutput](t)(c.RunTask(ctx(t), &ecs.RunTaskInput{
		Cluster: aws.String("life"), TaskDefinition: aws.String("life-web"), StartedBy: aws.String("tester"),
		Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("web"), Command: []string{"serve"}}}},
		Tags:      []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}},
	}))
	if len(run.Tasks) != 1 || len(run.Failures) != 0 {
		t.Fatalf("run-task: %+v failures %+v", run.Tasks, run.Failures)
	}
	task := run.Tasks[0]
	arn := aws.ToString(task.TaskArn)
	if !strings.HasPrefix(arn, "arn:aws:ecs:us-east-1:000000000000:task/life/") || len(arn[strings.LastIndex(arn, "/")+1:]) != 32 {
		t.Fatalf("task ARN %q", arn)
	}
	if aws.ToString(task.DesiredStatus) != "RUNNING" || aws.ToString(task.ContainerInstanceArn) != inst || task.LaunchType != types.LaunchTypeEc2 ||
		aws.ToString(task.Group) != "family:life-web" || aws.ToString(task.StartedBy) != "tester" || task.CreatedAt == nil {
		t.Fatalf("new task: %+v", task)
	}
	eventually(t, "task RUNNING", func() bool { return aws.ToString(describeTask(t, c, "life", arn).LastStatus) == "RUNNING" })
	running := describeTask(t, c, "life", arn)
	if running.StartedAt == nil || aws.ToString(running.Containers[0].LastStatus) != "RUNNING" || aws.ToString(running.Containers[0].RuntimeId) != "sim-web" {
		t.Fatalf("running task: %+v", running)
	}
	ci = must[*ecs.DescribeContainerInstancesOutput](t)(c.DescribeContainerInstances(ctx(t), &ecs.DescribeContainerInstancesInput{Cluster: aws.String("life"), ContainerInstances: []string{inst}})).ContainerInstances[0]
	if cpu, mem := remaining(ci); cpu != 2048-512 || mem != 4096-128 || ci.RunningTasksCount != 1 {
		t.Fatalf("remaining while running: cpu %d mem %d running %d", cpu, mem, ci.RunningTasksCount)
	}
	// The static host port is now taken: a second copy cannot be placed.
	again := must[*ecs.RunTaskOutput](t)(c.RunTask(ctx(t), &ecs.RunTaskInput{Cluster: aws.String("life"), TaskDefinition: aws.String("life-web")}))
	if len(again.Tasks) != 0 || len(again.Failures) == 0 || aws.ToString(again.Failures[0].Reason) != "RESOURCE:PORTS" {
		t.Fatalf("second task on a taken port: %+v %+v", again.Tasks, again.Failures)
	}
	list := must[*ecs.ListTasksOutput](t)(c.ListTasks(ctx(t), &ecs.ListTasksInput{Cluster: aws.String("life")}))
	if len(list.TaskArns) != 1 || list.TaskArns[0] != arn {
		t.Fatalf("list-tasks: %v", list.TaskArns)
	}
	for _, in := range []*ecs.ListTasksInput{
		{Cluster: aws.String("life"), StartedBy: aws.String("tester")},
		{Cluster: aws.String("life"), Family: aws.String("life-web")},
		{Cluster: aws.String("life"), ContainerInstance: aws.String(inst)},
	} {
		if l := must[*ecs.ListTasksOutput](t)(c.ListTasks(ctx(t), in)); len(l.TaskArns) != 1 {
			t.Fatalf("list-tasks %+v: %v", in, l.TaskArns)
		}
	}

	stop := must[*ecs.StopTaskOutput](t)(c.StopTask(ctx(t), &ecs.StopTaskInput{Cluster: aws.String("life"), Task: aws.String(arn), Reason: aws.String("done testing")}))
	if aws.ToString(stop.Task.DesiredStatus) != "STOPPED" || aws.ToString(stop.Task.StoppedReason) != "done testing" || stop.Task.StopCode != types.TaskStopCodeUserInitiated {
		t.Fatalf("stop-task: %+v", stop.Task)
	}
	eventually(t, "task STOPPED", func() bool { return aws.ToString(describeTask(t, c, "life", arn).LastStatus) == "STOPPED" })
	stopped := describeTask(t, c, "life", arn)
	if stopped.StoppedAt == nil || stopped.Containers[0].ExitCode == nil || *stopped.Containers[0].ExitCode != 0 || stopped.StopCode != types.TaskStopCodeUserInitiated {
		t.Fatalf("stopped task: %+v", stopped)
	}
	ci = must[*ecs.DescribeContainerInstancesOutput](t)(c.DescribeContainerInstances(ctx(t), &ecs.DescribeContainerInstancesInput{Cluster: aws.String("life"), ContainerInstances: []string{inst}})).ContainerInstances[0]
	if cpu, mem := remaining(ci); cpu != 2048 || mem != 4096 || ci.RunningTasksCount != 0 {
		t.Fatalf("remaining after stop: cpu %d mem %d running %d", cpu, mem, ci.RunningTasksCount)
	}
	if l := must[*ecs.ListTasksOutput](t)(c.ListTasks(ctx(t), &ecs.ListTasksInput{Cluster: aws.String("life"), DesiredStatus: types.DesiredStatusStopped})); len(l.TaskArns) != 1 {
		t.Fatalf("list-tasks STOPPED: %v", l.TaskArns)
	}
	// A stale report changes nothing.
	if out := agent.report(agentapi.TaskReport{TaskArn: arn, Seq: 1, LastStatus: "RUNNING"}); out.Applied != 0 {
		t.Fatalf("stale report applied")
	}
	if got := aws.ToString(describeTask(t, c, "life", arn).LastStatus); got != "STOPPED" {
		t.Fatalf("stale report moved the task to %s", got)
	}
}

func TestRunTaskPlacementFailures(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("full")}))
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), web("big")))
	startSimAgent(t, b, "full", 1024, 512, map[string]string{"ecs.os-type": "linux"})

	cases := []struct {
		name   string
		in     *ecs.RunTaskInput
		reason string
	}{
		{"memory", &ecs.RunTaskInput{TaskDefinition: aws.String("big"), Overrides: &types.TaskOverride{Memory: aws.String("1024")}}, "RESOURCE:MEMORY"},
		{"cpu", &ecs.RunTaskInput{TaskDefinition: aws.String("big"), Overrides: &types.TaskOverride{Cpu: aws.String("4096")}}, "RESOURCE:CPU"},
		{"memberOf", &ecs.RunTaskInput{TaskDefinition: aws.String("big"), PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:ecs.os-type == windows")}}}, "MemberOf placement constraint unsatisfied."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Cluster = aws.String("full")
			out := must[*ecs.RunTaskOutput](t)(c.RunTask(ctx(t), tc.in))
			if len(out.Tasks) != 0 || len(out.Failures) == 0 || aws.ToString(out.Failures[0].Reason) != tc.reason {
				t.Fatalf("tasks %d failures %+v, want %s", len(out.Tasks), out.Failures, tc.reason)
			}
		})
	}
	// Several tasks in one call share the instance's resources: 512 MiB
	// holds four 128 MiB tasks, not five.
	out := must[*ecs.RunTaskOutput](t)(c.RunTask(ctx(t), &ecs.RunTaskInput{Cluster: aws.String("full"), TaskDefinition: aws.String("big"), Count: aws.Int32(5)}))
	if len(out.Tasks) != 4 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "RESOURCE:MEMORY" {
		t.Fatalf("count 5 on room for 4: %d tasks, failures %+v", len(out.Tasks), out.Failures)
	}
	// A disconnected agent gets nothing.
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("gone")}))
	must[*ecs.RegisterContainerInstanceOutput](t)(c.RegisterContainerInstance(ctx(t), &ecs.RegisterContainerInstanceInput{
		Cluster:        aws.String("gone"),
		TotalResources: []types.Resource{{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: 1024}, {Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: 1024}},
	}))
	out = must[*ecs.RunTaskOutput](t)(c.RunTask(ctx(t), &ecs.RunTaskInput{Cluster: aws.String("gone"), TaskDefinition: aws.String("big")}))
	if len(out.Failures) == 0 || aws.ToString(out.Failures[0].Reason) != "AGENT" {
		t.Fatalf("disconnected agent: %+v", out.Failures)
	}
	// A cluster without instances is refused as ECS refuses it.
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("empty")}))
	_, err := c.RunTask(ctx(t), &ecs.RunTaskInput{Cluster: aws.String("empty"), TaskDefinition: aws.String("big")})
	if e := wantErr[*types.InvalidParameterException](t, err); e.ErrorMessage() != "No Container Instances were found in your cluster." {
		t.Fatalf("empty cluster: %q", e.ErrorMessage())
	}
	// Refusals of the request itself.
	for _, in := range []*ecs.RunTaskInput{
		{Cluster: aws.String("full"), TaskDefinition: aws.String("big"), Count: aws.Int32(11)},
		{Cluster: aws.String("full"), TaskDefinition: aws.String("big"), LaunchType: types.LaunchTypeFargate},
		{Cluster: aws.String("full"), TaskDefinition: aws.String("big"), PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:x ==")}}},
		{Cluster: aws.String("full"), TaskDefinition: aws.String("big"), Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("nope")}}}},
	} {
		_, err := c.RunTask(ctx(t), in)
		wantErr[*types.InvalidParameterException](t, err)
	}
	_, err = c.RunTask(ctx(t), &ecs.RunTaskInput{Cluster: aws.String("full"), TaskDefinition: aws.String("nope")})
	wantErr[*types.ClientException](t, err)
	_, err = c.RunTask(ctx(t), &ecs.RunTaskInput{Cluster: aws.String("nope"), TaskDefinition: aws.String("big")})
	wantErr[*types.ClusterNotFoundException](t, err)
}

func TestContainerInstanceAPIs(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("ci")}))
	a1 := startSimAgent(t, b, "ci", 1024, 1024, map[string]string{"ecs.os-type": "linux", "zone": "a"})
	a2 := startSimAgent(t, b, "ci", 1024, 1024, map[string]string{"ecs.os-type": "linux", "zone": "b"})
	list := must[*ecs.ListContainerInstancesOutput](t)(c.ListContainerInstances(ctx(t), &ecs.ListContainerInstancesInput{Cluster: aws.String("ci")}))
	if len(list.ContainerInstanceArns) != 2 {
		t.Fatalf("list: %v", list.ContainerInstanceArns)
	}
	filtered := must[*ecs.ListContainerInstancesOutput](t)(c.ListContainerInstances(ctx(t), &ecs.ListContainerInstancesInput{Cluster: aws.String("ci"), Filter: aws.String("attribute:zone == b")}))
	if len(filtered.ContainerInstanceArns) != 1 || filtered.ContainerInstanceArns[0] != a2.arn(b, "ci") {
		t.Fatalf("filtered: %v", filtered.ContainerInstanceArns)
	}
	upd := must[*ecs.UpdateContainerInstancesStateOutput](t)(c.UpdateContainerInstancesState(ctx(t), &ecs.UpdateContainerInstancesStateInput{
		Cluster: aws.String("ci"), ContainerInstances: []string{a1.ID, "nope"}, Status: types.ContainerInstanceStatusDraining,
	}))
	if len(upd.ContainerInstances) != 1 || aws.ToString(upd.ContainerInstances[0].Status) != "DRAINING" || len(upd.Failures) != 1 || aws.ToString(upd.Failures[0].Reason) != "MISSING" {
		t.Fatalf("update state: %+v %+v", upd.ContainerInstances, upd.Failures)
	}
	draining := must[*ecs.ListContainerInstancesOutput](t)(c.ListContainerInstances(ctx(t), &ecs.ListContainerInstancesInput{Cluster: aws.String("ci"), Status: types.ContainerInstanceStatusDraining}))
	if len(draining.ContainerInstanceArns) != 1 || draining.ContainerInstanceArns[0] != a1.arn(b, "ci") {
		t.Fatalf("draining list: %v", draining.ContainerInstanceArns)
	}
	// A DRAINING instance gets no new tasks.
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), web("ci-web")))
	run := must[*ecs.RunTaskOutput](t)(c.RunTask(ctx(t), &ecs.RunTaskInput{Cluster: aws.String("ci"), TaskDefinition: aws.String("ci-web"), Count: aws.Int32(3)}))
	for _, task := range run.Tasks {
		if aws.ToString(task.ContainerInstanceArn) != a2.arn(b, "ci") {
			t.Fatalf("task placed on the draining instance")
		}
	}
	// StartTask on a named instance.
	st := must[*ecs.StartTaskOutput](t)(c.StartTask(ctx(t), &ecs.StartTaskInput{Cluster: aws.String("ci"), TaskDefinition: aws.String("ci-web"), ContainerInstances: []string{a2.ID}}))
	if len(st.Tasks) != 1 || aws.ToString(st.Tasks[0].ContainerInstanceArn) != a2.arn(b, "ci") {
		t.Fatalf("start-task: %+v %+v", st.Tasks, st.Failures)
	}
	// Deregistering an instance with tasks needs force.
	_, err := c.DeregisterContainerInstance(ctx(t), &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("ci"), ContainerInstance: aws.String(a2.ID)})
	wantErr[*types.InvalidParameterException](t, err)
	dereg := must[*ecs.DeregisterContainerInstanceOutput](t)(c.DeregisterContainerInstance(ctx(t), &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("ci"), ContainerInstance: aws.String(a2.ID), Force: aws.Bool(true)}))
	if aws.ToString(dereg.ContainerInstance.Status) != "INACTIVE" {
		t.Fatalf("deregistered status %s", aws.ToString(dereg.ContainerInstance.Status))
	}
	// Deregistration is final: the instance stays describable as INACTIVE,
	// leaves the listing, and its agent cannot register it again.
	desc := must[*ecs.DescribeContainerInstancesOutput](t)(c.DescribeContainerInstances(ctx(t), &ecs.DescribeContainerInstancesInput{Cluster: aws.String("ci"), ContainerInstances: []string{a2.ID}}))
	if len(desc.ContainerInstances) != 1 || aws.ToString(desc.ContainerInstances[0].Status) != "INACTIVE" || desc.ContainerInstances[0].AgentConnected {
		t.Fatalf("describe deregistered: %+v", desc)
	}
	if l := must[*ecs.ListContainerInstancesOutput](t)(c.ListContainerInstances(ctx(t), &ecs.ListContainerInstancesInput{Cluster: aws.String("ci")})); len(l.ContainerInstanceArns) != 1 {
		t.Fatalf("list after deregistration: %v", l.ContainerInstanceArns)
	}
	_, err = a2.Client.Register(ctx(t), agentapi.RegisterRequest{Cluster: "ci", InstanceID: a2.ID, CPU: 1024, MemoryMiB: 1024})
	if !errors.Is(err, agentapi.ErrDeregistered) {
		t.Fatalf("re-registering a deregistered instance: %v", err)
	}
	if d := must[*ecs.DescribeClustersOutput](t)(c.DescribeClusters(ctx(t), &ecs.DescribeClustersInput{Clusters: []string{"ci"}})); d.Clusters[0].RegisteredContainerInstancesCount != 1 {
		t.Fatalf("cluster counts the deregistered instance: %d", d.Clusters[0].RegisteredContainerInstancesCount)
	}
	for _, task := range append(run.Tasks, st.Tasks...) {
		if got := describeTask(t, c, "ci", aws.ToString(task.TaskArn)); aws.ToString(got.LastStatus) != "STOPPED" {
			t.Fatalf("task of a force-deregistered instance is %s", aws.ToString(got.LastStatus))
		}
	}
}

// TestStoppedTasksAreReaped: a stopped task is describable for the
// retention period, then it is gone (MISSING), as in ECS.
func TestStoppedTasksAreReaped(t *testing.T) {
	b := startBerth(t, func(c *controlplane.Config) {
		c.TaskRetention, c.TaskReapInterval = 300*time.Millisecond, 50*time.Millisecond
	})
	c := b.ecsClient()
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("reap")}))
	startSimAgent(t, b, "reap", 1024, 1024, nil)
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), web("reap-web")))
	arn := aws.ToString(must[*ecs.RunTaskOutput](t)(c.RunTask(ctx(t), &ecs.RunTaskInput{Cluster: aws.String("reap"), TaskDefinition: aws.String("reap-web")})).Tasks[0].TaskArn)
	eventually(t, "RUNNING", func() bool { return aws.ToString(describeTask(t, c, "reap", arn).LastStatus) == "RUNNING" })
	must[*ecs.StopTaskOutput](t)(c.StopTask(ctx(t), &ecs.StopTaskInput{Cluster: aws.String("reap"), Task: aws.String(arn)}))
	eventually(t, "STOPPED", func() bool { return aws.ToString(describeTask(t, c, "reap", arn).LastStatus) == "STOPPED" })
	eventually(t, "reaped", func() bool {
		out := must[*ecs.DescribeTasksOutput](t)(c.DescribeTasks(ctx(t), &ecs.DescribeTasksInput{Cluster: aws.String("reap"), Tasks: []string{arn}}))
		return len(out.Failures) == 1 && aws.ToString(out.Failures[0].Reason) == "MISSING"
	})
	if l := must[*ecs.ListTasksOutput](t)(c.ListTasks(ctx(t), &ecs.ListTasksInput{Cluster: aws.String("reap"), DesiredStatus: types.DesiredStatusStopped})); len(l.TaskArns) != 0 {
		t.Fatalf("reaped task still listed: %v", l.TaskArns)
	}
}

// TestTaskAndInstanceFidelity checks the details a reviewer measured against
// ECS: id shapes, counts, remaining ports, PENDING listings, attributes on
// re-registration, and failure reasons that StopTask must keep.
func TestTaskAndInstanceFidelity(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("fid")}))
	agent := startSimAgent(t, b, "fid", 2048, 2048, map[string]string{"zone": "a"})
	td := web("fid-web")
	td.ContainerDefinitions[0].PortMappings[0].HostPort = aws.Int32(8080)
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), td))
	arn := aws.ToString(must[*ecs.RunTaskOutput](t)(c.RunTask(ctx(t), &ecs.RunTaskInput{Cluster: aws.String("fid"), TaskDefinition: aws.String("fid-web")})).Tasks[0].TaskArn)
	task := func() types.Task { return describeTask(t, c, "fid", arn) }
	eventually(t, "RUNNING", func() bool { return aws.ToString(task().LastStatus) == "RUNNING" })

	uuid := regexp.MustCompile(`/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if got := aws.ToString(task().Containers[0].ContainerArn); !uuid.MatchString(got) {
		t.Fatalf("container ARN %q does not end in a UUID", got)
	}
	ci := must[*ecs.DescribeContainerInstancesOutput](t)(c.DescribeContainerInstances(ctx(t), &ecs.DescribeContainerInstancesInput{Cluster: aws.String("fid"), ContainerInstances: []string{agent.ID}})).ContainerInstances[0]
	if !regexp.MustCompile(`^i-[0-9a-f]{17}$`).MatchString(aws.ToString(ci.Ec2InstanceId)) {
		t.Fatalf("ec2InstanceId %q", aws.ToString(ci.Ec2InstanceId))
	}
	var ports []string
	for _, r := range ci.RemainingResources {
		if aws.ToString(r.Name) == "PORTS" {
			ports = r.StringSetValue
		}
	}
	if !slicesContains(ports, "8080") || !slicesContains(ports, "22") {
		t.Fatalf("remaining PORTS %v should list the reserved port and the task's", ports)
	}
	cl := must[*ecs.DescribeClustersOutput](t)(c.DescribeClusters(ctx(t), &ecs.DescribeClustersInput{Clusters: []string{"fid"}, Include: []types.ClusterField{types.ClusterFieldStatistics}})).Clusters[0]
	if cl.RunningTasksCount != 1 || cl.PendingTasksCount != 0 || cl.RegisteredContainerInstancesCount != 1 {
		t.Fatalf("cluster counts: running %d pending %d instances %d", cl.RunningTasksCount, cl.PendingTasksCount, cl.RegisteredContainerInstancesCount)
	}
	if l := must[*ecs.ListTasksOutput](t)(c.ListTasks(ctx(t), &ecs.ListTasksInput{Cluster: aws.String("fid"), DesiredStatus: types.DesiredStatusPending})); len(l.TaskArns) != 0 {
		t.Fatalf("desiredStatus PENDING listed %v; ECS lists nothing", l.TaskArns)
	}

	// Re-registering replaces the agent's own attributes instead of piling
	// them up; attributes set with PutAttributes stay.
	must[*ecs.PutAttributesOutput](t)(c.PutAttributes(ctx(t), &ecs.PutAttributesInput{Cluster: aws.String("fid"), Attributes: []types.Attribute{{Name: aws.String("team"), Value: aws.String("x"), TargetId: aws.String(agent.arn(b, "fid"))}}}))
	for _, zone := range []string{"b", "c"} {
		if _, err := agent.Client.Register(ctx(t), agentapi.RegisterRequest{Cluster: "fid", InstanceID: agent.ID, InstanceSecret: agent.Secret, CPU: 2048, MemoryMiB: 2048, Attributes: map[string]string{"zone": zone}}); err != nil {
			t.Fatal(err)
		}
	}
	ci = must[*ecs.DescribeContainerInstancesOutput](t)(c.DescribeContainerInstances(ctx(t), &ecs.DescribeContainerInstancesInput{Cluster: aws.String("fid"), ContainerInstances: []string{agent.ID}})).ContainerInstances[0]
	var attrs []string
	for _, a := range ci.Attributes {
		attrs = append(attrs, aws.ToString(a.Name)+"="+aws.ToString(a.Value))
	}
	if fmt.Sprint(attrs) != "[zone=c team=x]" {
		t.Fatalf("attributes after re-registering: %v", attrs)
	}
	if cpu, mem := remaining(ci); cpu != 2048 || mem != 2048-128 {
		t.Fatalf("re-registration lost the task's reservation: cpu %d mem %d", cpu, mem)
	}

	// A task the agent reports failing is desired STOPPED at once, and a
	// later StopTask keeps the agent's reason.
	agent.Hold(arn) // the simulated agent stops answering for it
	agent.report(agentapi.TaskReport{TaskArn: arn, Seq: 1 << 40, LastStatus: "STOPPING", StopCode: "EssentialContainerExited", StoppedReason: "Essential container in task exited"})
	if got := task(); aws.ToString(got.DesiredStatus) != "STOPPED" {
		t.Fatalf("desired status after the agent reported a failure: %s", aws.ToString(got.DesiredStatus))
	}
	if l := must[*ecs.ListTasksOutput](t)(c.ListTasks(ctx(t), &ecs.ListTasksInput{Cluster: aws.String("fid")})); len(l.TaskArns) != 0 {
		t.Fatalf("a stopping task is still listed as desired RUNNING: %v", l.TaskArns)
	}
	must[*ecs.StopTaskOutput](t)(c.StopTask(ctx(t), &ecs.StopTaskInput{Cluster: aws.String("fid"), Task: aws.String(arn)}))
	if got := task(); got.StopCode != types.TaskStopCodeEssentialContainerExited || aws.ToString(got.StoppedReason) != "Essential container in task exited" {
		t.Fatalf("StopTask replaced the agent's reason: %s %q", got.StopCode, aws.ToString(got.StoppedReason))
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestRunTaskClientTokenIsIdempotent: a RunTask retried with the same
// clientToken (the SDK sets one and reuses it on retries) starts no second
// task; the same token with other parameters is refused.
func TestRunTaskClientTokenIsIdempotent(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("idem")}))
	startSimAgent(t, b, "idem", 4096, 4096, nil)
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), web("idem-web")))
	in := &ecs.RunTaskInput{Cluster: aws.String("idem"), TaskDefinition: aws.String("idem-web"), Count: aws.Int32(2), ClientToken: aws.String("retry-me-1")}
	first := must[*ecs.RunTaskOutput](t)(c.RunTask(ctx(t), in))
	again := must[*ecs.RunTaskOutput](t)(c.RunTask(ctx(t), in))
	if len(first.Tasks) != 2 || len(again.Tasks) != 2 || aws.ToString(first.Tasks[0].TaskArn) != aws.ToString(again.Tasks[0].TaskArn) || aws.ToString(first.Tasks[1].TaskArn) != aws.ToString(again.Tasks[1].TaskArn) {
		t.Fatalf("retry with the same clientToken: %d then %d tasks", len(first.Tasks), len(again.Tasks))
	}
	if l := must[*ecs.ListTasksOutput](t)(c.ListTasks(ctx(t), &ecs.ListTasksInput{Cluster: aws.String("idem")})); len(l.TaskArns) != 2 {
		t.Fatalf("%d tasks after a retried RunTask, want 2", len(l.TaskArns))
	}
	_, err := c.RunTask(ctx(t), &ecs.RunTaskInput{Cluster: aws.String("idem"), TaskDefinition: aws.String("idem-web"), Count: aws.Int32(1), ClientToken: aws.String("retry-me-1")})
	wantErr[*types.ClientException](t, err)
	// Without a token of its own, each call is a new request (the SDK makes one up).
	must[*ecs.RunTaskOutput](t)(c.RunTask(ctx(t), &ecs.RunTaskInput{Cluster: aws.String("idem"), TaskDefinition: aws.String("idem-web")}))
	if l := must[*ecs.ListTasksOutput](t)(c.ListTasks(ctx(t), &ecs.ListTasksInput{Cluster: aws.String("idem")})); len(l.TaskArns) != 3 {
		t.Fatalf("%d tasks, want 3", len(l.TaskArns))
	}
}

// TestInstanceSecretGuardsEachInstance: the join token lets a host register,
// but only the agent holding an instance's secret can poll, report or
// re-register as that instance.
func TestInstanceSecretGuardsEachInstance(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("sec")}))
	victim := startSimAgent(t, b, "sec", 1024, 1024, nil)
	intruder := &agentapi.Client{Endpoint: b.endpoint, Token: b.cp.JoinToken()}
	if _, err := intruder.Desired(ctx(t), victim.ID, 0, 0); !errors.Is(err, agentapi.ErrUnauthorized) {
		t.Fatalf("polling another instance's desired state: %v", err)
	}
	if _, err := intruder.Report(ctx(t), victim.ID, agentapi.Report{}); !errors.Is(err, agentapi.ErrUnauthorized) {
		t.Fatalf("reporting as another instance: %v", err)
	}
	_, err := intruder.Register(ctx(t), agentapi.RegisterRequest{Cluster: "sec", InstanceID: victim.ID, InstanceSecret: "guess", CPU: 1024, MemoryMiB: 1024})
	if !errors.Is(err, agentapi.ErrSecretMismatch) {
		t.Fatalf("taking over another instance: %v", err)
	}
	// The victim is unaffected, and its own client still works.
	if _, err := victim.Client.Desired(ctx(t), victim.ID, 0, 0); err != nil {
		t.Fatalf("the rightful agent: %v", err)
	}
}
