package scheduler_test

import (
	"fmt"
	"strings"

	"github.com/berthdev/berth/internal/scheduler"
)

// RunTask with count 3, a static port and a memberOf constraint on a
// two-instance cluster: two tasks are placed, the third finds no port.
func ExamplePlace() {
	instances := []scheduler.Instance{
		{ID: "a1", ARN: "arn:aws:ecs:us-east-1:000000000000:container-instance/demo/a1",
			Status: scheduler.StatusActive, AgentConnected: true, RemainingCPU: 2048, RemainingMemory: 4096,
			Attributes: map[string]string{"ecs.instance-type": "t3.large", "ecs.availability-zone": "us-east-1a"}},
		{ID: "b2", ARN: "arn:aws:ecs:us-east-1:000000000000:container-instance/demo/b2",
			Status: scheduler.StatusActive, AgentConnected: true, RemainingCPU: 2048, RemainingMemory: 4096,
			Attributes: map[string]string{"ecs.instance-type": "t3.large", "ecs.availability-zone": "us-east-1b"}},
		{ID: "c3", ARN: "arn:aws:ecs:us-east-1:000000000000:container-instance/demo/c3",
			Status: scheduler.StatusDraining, AgentConnected: true, RemainingCPU: 4096, RemainingMemory: 8192},
	}
	c, err := scheduler.ParseConstraint("memberOf", "attribute:ecs.instance-type =~ t3.*")
	if err != nil {
		panic(err)
	}
	spread, _ := scheduler.ParseStrategy("spread", "attribute:ecs.availability-zone")
	task := scheduler.Task{
		Group:       "family:web",
		CPU:         256,
		Memory:      512,
		Ports:       []scheduler.Port{{Number: 80, Protocol: "tcp"}},
		Constraints: []scheduler.Constraint{c},
		Strategy:    []scheduler.Strategy{spread},
	}
	res, err := scheduler.Place(instances, task, 3, 1)
	if err != nil {
		panic(err)
	}
	for _, p := range res.Placements {
		fmt.Println("placed on", p.InstanceID)
	}
	for _, f := range res.Failures {
		fmt.Println(f.Reason, f.InstanceARN)
		fmt.Println("  ", f.Detail)
	}
	fmt.Println(res.Explain())
	// Output:
	// placed on a1
	// placed on b2
	// RESOURCE:PORTS arn:aws:ecs:us-east-1:000000000000:container-instance/demo/a1
	//    Container instance a1 is already using host port tcp/80, which the task needs.
	// RESOURCE:PORTS arn:aws:ecs:us-east-1:000000000000:container-instance/demo/b2
	//    Container instance b2 is already using host port tcp/80, which the task needs.
	// no container instance met all of its requirements. The closest matching container-instance a1 is already using a port required by your task.
}

// A bad memberOf expression is refused before anything is placed, with a
// message for InvalidParameterException.
func ExampleParseExpression() {
	e, err := scheduler.ParseExpression("attribute:ecs.instance-type =~ t2.* AND NOT(task:group == database)")
	fmt.Println(e, err)
	_, err = scheduler.ParseExpression("attribute:ecs.instance-type in t2.small")
	fmt.Println(err)
	// Output:
	// attribute:ecs.instance-type =~ t2.* and not(task:group == database) <nil>
	// Invalid placement constraint expression "attribute:ecs.instance-type in t2.small": expected '[' to start the argument list of in, found "t2.small" at offset 31.
}

// The service controller keeps one snapshot: each call sees what the
// previous calls placed.
func ExampleSnapshot() {
	snap := scheduler.NewSnapshot([]scheduler.Instance{
		{ID: "a1", Status: scheduler.StatusActive, AgentConnected: true, RemainingCPU: 1024, RemainingMemory: 1024,
			Attributes: map[string]string{"ecs.availability-zone": "us-east-1a"}},
		{ID: "b2", Status: scheduler.StatusActive, AgentConnected: true, RemainingCPU: 1024, RemainingMemory: 1024,
			Attributes: map[string]string{"ecs.availability-zone": "us-east-1b"}},
	})
	task := scheduler.Task{Group: "service:api", CPU: 512, Memory: 512, Strategy: scheduler.ServiceDefaultStrategy()}
	for range 3 {
		res, err := snap.Place(task, 2, 0)
		if err != nil {
			panic(err)
		}
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%d placed. %s", len(res.Placements), res.Explain())))
	}
	// Output:
	// 2 placed.
	// 2 placed.
	// 0 placed. no container instance met all of its requirements. The closest matching container-instance a1 has insufficient CPU units available.
}
