package scheduler

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/errdefs"
)

// node returns an ACTIVE, connected instance with the given resources.
func node(id string, cpu, mem int, opts ...func(*Instance)) Instance {
	in := Instance{ID: id, ARN: "arn:aws:ecs:us-east-1:000000000000:container-instance/test/" + id,
		Status: StatusActive, AgentConnected: true, RemainingCPU: cpu, RemainingMemory: mem}
	for _, o := range opts {
		o(&in)
	}
	return in
}

func status(s string) func(*Instance) { return func(in *Instance) { in.Status = s } }
func disconnected(in *Instance)       { in.AgentConnected = false }
func attrs(kv ...string) func(*Instance) {
	return func(in *Instance) {
		in.Attributes = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			in.Attributes[kv[i]] = kv[i+1]
		}
	}
}
func tasks(groups ...string) func(*Instance) {
	return func(in *Instance) {
		for _, g := range groups {
			in.Tasks = append(in.Tasks, PlacedTask{Group: g})
		}
	}
}
func ports(ps ...Port) func(*Instance) {
	return func(in *Instance) { in.UsedPorts = append(in.UsedPorts, ps...) }
}

func memberOf(t *testing.T, expr string) Constraint {
	t.Helper()
	c, err := ParseConstraint("memberOf", expr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func placedIDs(r Result) []string {
	var ids []string
	for _, p := range r.Placements {
		ids = append(ids, p.InstanceID)
	}
	return ids
}

func failureLines(r Result) []string {
	var out []string
	for _, f := range r.Failures {
		out = append(out, f.InstanceID+" "+f.Reason+" | "+f.Detail)
	}
	return out
}

// TestFilters checks each filter's reason and detail, the order in which
// filters run (an instance reports the first it fails), and the closest
// instance named by Explain.
func TestFilters(t *testing.T) {
	distinct := Constraint{Type: DistinctInstance}
	for _, tc := range []struct {
		name      string
		instances []Instance
		task      Task
		count     int
		placed    []string
		failures  []string
		explain   string
	}{
		{
			name:      "fits",
			instances: []Instance{node("a", 1024, 2048)},
			task:      Task{Group: "family:web", CPU: 1024, Memory: 2048},
			count:     1,
			placed:    []string{"a"},
		},
		{
			name: "draining and inactive instances are neither candidates nor failures",
			instances: []Instance{node("d", 4096, 4096, status(StatusDraining)), node("x", 4096, 4096, status("INACTIVE")),
				node("a", 128, 4096)},
			task:     Task{Group: "family:web", CPU: 256},
			count:    1,
			failures: []string{"a RESOURCE:CPU | Container instance a has 128 CPU units available; the task needs 256."},
			explain:  "no container instance met all of its requirements. The closest matching container-instance a has insufficient CPU units available.",
		},
		{
			name:      "agent",
			instances: []Instance{node("a", 4096, 4096, disconnected)},
			task:      Task{Group: "family:web", CPU: 1},
			count:     1,
			failures:  []string{"a AGENT | The agent of container instance a is disconnected."},
			explain:   `no container instance met all of its requirements. The closest matching container-instance a encountered error "AGENT".`,
		},
		{
			name: "required attributes",
			instances: []Instance{
				node("a", 4096, 4096, attrs("ecs.os-type", "windows")),
				node("b", 4096, 4096, attrs("ecs.os-type", "linux")),
			},
			task: Task{Group: "family:web", RequiredAttributes: []Attribute{
				{Name: "ecs.os-type", Value: "linux"}, {Name: "com.amazonaws.ecs.capability.logging-driver.awslogs"}}},
			count: 1,
			failures: []string{
				`a ATTRIBUTE | Container instance a has attribute "ecs.os-type" = "windows"; the task requires "linux".`,
				`b ATTRIBUTE | Container instance b does not have the attribute "com.amazonaws.ecs.capability.logging-driver.awslogs" that the task requires.`,
			},
			explain: "no container instance met all of its requirements. The closest matching container-instance a is missing an attribute required by your task.",
		},
		{
			name: "memberOf",
			instances: []Instance{
				node("a", 4096, 4096, attrs("ecs.instance-type", "m5.large")),
				node("b", 4096, 4096, attrs("ecs.instance-type", "t2.small")),
			},
			task:   Task{Group: "family:web", Constraints: []Constraint{memberOf(t, "attribute:ecs.instance-type =~ t2.*")}},
			count:  2,
			placed: []string{"b", "b"},
		},
		{
			name:      "memberOf unsatisfied",
			instances: []Instance{node("a", 4096, 4096, attrs("ecs.instance-type", "m5.large"))},
			task:      Task{Group: "family:web", Constraints: []Constraint{memberOf(t, "attribute:ecs.instance-type =~ t2.*")}},
			count:     1,
			failures:  []string{`a MemberOf placement constraint unsatisfied. | Container instance a does not satisfy the memberOf expression "attribute:ecs.instance-type =~ t2.*".`},
			explain:   `no container instance met all of its requirements. The closest matching container-instance a encountered error "MemberOf placement constraint unsatisfied.".`,
		},
		{
			name:      "memberOf sees the tasks placed in the same call",
			instances: []Instance{node("a", 4096, 4096), node("b", 4096, 4096)},
			task: Task{Group: "family:web", Strategy: []Strategy{{Type: Binpack, Field: "cpu"}},
				Constraints: []Constraint{memberOf(t, "not(task:group == family:web)")}},
			count:  3,
			placed: []string{"a", "b"},
			failures: []string{
				`a MemberOf placement constraint unsatisfied. | Container instance a does not satisfy the memberOf expression "not(task:group == family:web)".`,
				`b MemberOf placement constraint unsatisfied. | Container instance b does not satisfy the memberOf expression "not(task:group == family:web)".`,
			},
			explain: `no container instance met all of its requirements. The closest matching container-instance a encountered error "MemberOf placement constraint unsatisfied.".`,
		},
		{
			name:      "distinctInstance counts running tasks of the group",
			instances: []Instance{node("a", 4096, 4096, tasks("family:web")), node("b", 4096, 4096, tasks("family:other"))},
			task:      Task{Group: "family:web", Constraints: []Constraint{distinct}},
			count:     2,
			placed:    []string{"b"},
			failures: []string{
				`a DistinctInstance placement constraint unsatisfied. | Container instance a already has a task of group "family:web", and the task must run on a distinct instance.`,
				`b DistinctInstance placement constraint unsatisfied. | Container instance b already has a task of group "family:web", and the task must run on a distinct instance.`,
			},
			explain: `no container instance met all of its requirements. The closest matching container-instance a encountered error "DistinctInstance placement constraint unsatisfied.".`,
		},
		{
			name:      "memory",
			instances: []Instance{node("a", 4096, 256), node("b", 4096, 500)},
			task:      Task{Group: "family:web", Memory: 512},
			count:     1,
			failures: []string{
				"a RESOURCE:MEMORY | Container instance a has 256 MiB of memory available; the task needs 512 MiB.",
				"b RESOURCE:MEMORY | Container instance b has 500 MiB of memory available; the task needs 512 MiB.",
			},
			explain: "no container instance met all of its requirements. The closest matching container-instance b has insufficient memory available.",
		},
		{
			name:      "the tasks of one call use up memory",
			instances: []Instance{node("a", 4096, 1024), node("b", 4096, 600)},
			task:      Task{Group: "family:web", Memory: 512, Strategy: []Strategy{{Type: Binpack, Field: "memory"}}},
			count:     4,
			placed:    []string{"b", "a", "a"},
			failures: []string{
				"a RESOURCE:MEMORY | Container instance a has 0 MiB of memory available; the task needs 512 MiB.",
				"b RESOURCE:MEMORY | Container instance b has 88 MiB of memory available; the task needs 512 MiB.",
			},
			explain: "no container instance met all of its requirements. The closest matching container-instance b has insufficient memory available.",
		},
		{
			name:      "ports, as in ECS's RunTask of count 2 on one instance",
			instances: []Instance{node("a", 4096, 4096)},
			task:      Task{Group: "family:web", Ports: []Port{{Number: 8080}}},
			count:     2,
			placed:    []string{"a"},
			failures:  []string{"a RESOURCE:PORTS | Container instance a is already using host port tcp/8080, which the task needs."},
			explain:   "no container instance met all of its requirements. The closest matching container-instance a is already using a port required by your task.",
		},
		{
			name: "ports held by tasks and the agent; udp and tcp do not conflict",
			instances: []Instance{
				node("a", 4096, 4096, ports(Port{Number: 53, Protocol: "tcp"})),
				node("b", 4096, 4096, ports(Port{Number: 53, Protocol: "udp"})),
			},
			task:     Task{Group: "family:dns", Ports: []Port{{Number: 53, Protocol: "udp"}, {Number: 80}}},
			count:    2,
			placed:   []string{"a"},
			failures: []string{"a RESOURCE:PORTS | Container instance a is already using host port udp/53, tcp/80, which the task needs.", "b RESOURCE:PORTS | Container instance b is already using host port udp/53, which the task needs."},
			explain:  "no container instance met all of its requirements. The closest matching container-instance b is already using a port required by your task.",
		},
		{
			name:      "the limit of reserved ports",
			instances: []Instance{node("a", 4096, 4096, ports(portRange(1000, 99)...))},
			task:      Task{Group: "family:web", Ports: []Port{{Number: 80}, {Number: 81}}},
			count:     1,
			failures:  []string{"a RESOURCE:PORTS | Container instance a reserves 99 host ports; the task's 2 more would exceed the limit of 100."},
			explain:   "no container instance met all of its requirements. The closest matching container-instance a is already using a port required by your task.",
		},
		{
			name: "each instance reports the first filter it fails; the closest passed the most",
			instances: []Instance{
				node("cpu", 10, 10, attrs("gpu", "yes")),
				node("agent", 10, 10, disconnected, attrs("gpu", "yes")),
				node("attr", 10, 10),
				node("mem", 4096, 10, attrs("gpu", "yes")),
			},
			task:  Task{Group: "family:web", CPU: 1024, Memory: 1024, RequiredAttributes: []Attribute{{Name: "gpu"}}},
			count: 1,
			failures: []string{
				"cpu RESOURCE:CPU | Container instance cpu has 10 CPU units available; the task needs 1024.",
				"agent AGENT | The agent of container instance agent is disconnected.",
				`attr ATTRIBUTE | Container instance attr does not have the attribute "gpu" that the task requires.`,
				"mem RESOURCE:MEMORY | Container instance mem has 10 MiB of memory available; the task needs 1024 MiB.",
			},
			explain: "no container instance met all of its requirements. The closest matching container-instance mem has insufficient memory available.",
		},
		{
			name:      "a task without CPU fits an instance with none left",
			instances: []Instance{node("a", 0, 512)},
			task:      Task{Group: "family:web", Memory: 512},
			count:     1,
			placed:    []string{"a"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Place(tc.instances, tc.task, tc.count, 1)
			if err != nil {
				t.Fatal(err)
			}
			if got := placedIDs(res); !slices.Equal(got, tc.placed) {
				t.Errorf("placed on %v, want %v", got, tc.placed)
			}
			if got := failureLines(res); !slices.Equal(got, tc.failures) {
				t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.failures, "\n"))
			}
			if got := res.Explain(); got != tc.explain {
				t.Errorf("Explain() = %q\nwant        %q", got, tc.explain)
			}
			for _, f := range res.Failures {
				if want := "arn:aws:ecs:us-east-1:000000000000:container-instance/test/" + f.InstanceID; f.InstanceARN != want {
					t.Errorf("failure ARN %q, want %q", f.InstanceARN, want)
				}
			}
		})
	}
}

func portRange(from, n int) []Port {
	var ps []Port
	for i := range n {
		ps = append(ps, Port{Number: from + i})
	}
	return ps
}

func TestNoInstances(t *testing.T) {
	for _, instances := range [][]Instance{nil, {node("d", 1024, 1024, status(StatusDraining))}} {
		_, err := Place(instances, Task{Group: "family:web"}, 1, 0)
		if !errors.Is(err, ErrNoInstances) || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Place on %d non-active instances: %v", len(instances), err)
		}
		if err != nil && err.Error() != "No Container Instances were found in your cluster." {
			t.Errorf("message %q", err.Error())
		}
	}
}

func TestPlaceRejectsMalformedTasks(t *testing.T) {
	instances := []Instance{node("a", 1024, 1024)}
	for _, tc := range []struct {
		task  Task
		count int
		msg   string
	}{
		{Task{}, 0, "count of tasks to place must be at least 1"},
		{Task{CPU: -1}, 1, "negative resources"},
		{Task{Ports: []Port{{Number: 0}}}, 1, "out of the range"},
		{Task{Ports: []Port{{Number: 80, Protocol: "sctp"}}}, 1, "want tcp or udp"},
		{Task{Ports: []Port{{Number: 80}, {Number: 80, Protocol: "tcp"}}}, 1, "host port tcp/80 twice"},
		{Task{RequiredAttributes: []Attribute{{Value: "x"}}}, 1, "has no name"},
		{Task{Constraints: []Constraint{{Type: MemberOf}}}, 1, "use ParseConstraint"},
		{Task{Constraints: make([]Constraint, 11)}, 1, "at most 10 placement constraints"},
		{Task{Strategy: make([]Strategy, 6)}, 1, "at most 5 placement strategy rules"},
		{Task{Strategy: []Strategy{{Type: Binpack, Field: "gpu"}}}, 1, "binpack"},
	} {
		_, err := Place(instances, tc.task, tc.count, 0)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Place(%+v, %d) = %v, want %q", tc.task, tc.count, err, tc.msg)
		}
	}
}

func TestPlaceOn(t *testing.T) {
	snap := NewSnapshot([]Instance{
		node("a", 1024, 1024),
		node("b", 1024, 100),
		node("d", 1024, 1024, status(StatusDraining)),
		node("x", 1024, 1024, status("INACTIVE")),
		node("c", 1024, 1024, disconnected),
	})
	task := Task{Group: "family:web", CPU: 512, Memory: 512, Strategy: []Strategy{{Type: Binpack, Field: "gpu"}}}
	if _, err := snap.PlaceOn([]string{"a"}, task); err == nil {
		t.Error("PlaceOn accepted an invalid strategy")
	}
	task.Strategy = nil
	res, err := snap.PlaceOn([]string{"a", "a", "a", "b", "d", "x", "c", "nope"}, task)
	if err != nil {
		t.Fatal(err)
	}
	if got := placedIDs(res); !slices.Equal(got, []string{"a", "a"}) {
		t.Errorf("placed on %v", got)
	}
	want := []string{
		"a RESOURCE:CPU | Container instance a has 0 CPU units available; the task needs 512.",
		"b RESOURCE:MEMORY | Container instance b has 100 MiB of memory available; the task needs 512 MiB.",
		"d DRAINING | Container instance d is DRAINING and takes no new tasks.",
		"x INACTIVE | Container instance x is INACTIVE, not ACTIVE.",
		"c AGENT | The agent of container instance c is disconnected.",
		"nope MISSING | Container instance nope is not registered in the cluster.",
	}
	if got := failureLines(res); !slices.Equal(got, want) {
		t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if f, ok := res.Closest(); !ok || f.InstanceID != "b" {
		t.Errorf("closest = %+v, %v; want b (it lacks memory, a later filter than a's CPU)", f, ok)
	}
}

func TestSnapshotKeepsPlacementsAcrossCalls(t *testing.T) {
	instances := []Instance{node("a", 1024, 1024), node("b", 1024, 1024)}
	snap := NewSnapshot(instances)
	task := Task{Group: "service:web", CPU: 512, Memory: 512, Ports: []Port{{Number: 80}},
		Constraints: []Constraint{{Type: DistinctInstance}}}
	first, err := snap.Place(task, 1, 7)
	if err != nil || len(first.Placements) != 1 {
		t.Fatalf("first call: %+v, %v", first, err)
	}
	second, err := snap.Place(task, 1, 7)
	if err != nil || len(second.Placements) != 1 || second.Placements[0].InstanceID == first.Placements[0].InstanceID {
		t.Fatalf("second call: %+v, %v (first went to %s)", second, err, first.Placements[0].InstanceID)
	}
	third, err := snap.Place(task, 1, 7)
	if err != nil || len(third.Placements) != 0 || len(third.Failures) != 2 {
		t.Fatalf("third call: %+v, %v", third, err)
	}
	for _, f := range third.Failures {
		if f.Reason != ReasonDistinctInstance {
			t.Errorf("third call: %s refused with %s", f.InstanceID, f.Reason)
		}
	}
	// The caller's instances are untouched.
	if instances[0].RemainingCPU != 1024 || len(instances[0].Tasks) != 0 || len(instances[0].UsedPorts) != 0 {
		t.Errorf("the snapshot changed the caller's instance: %+v", instances[0])
	}
	// A task of another group still finds room where ports and resources allow.
	other, err := snap.Place(Task{Group: "family:batch", CPU: 512, Memory: 512}, 2, 7)
	if err != nil || len(other.Placements) != 2 {
		t.Fatalf("other group: %+v, %v", other, err)
	}
	if got := fmt.Sprint(placedIDs(other)); got != "[a b]" && got != "[b a]" {
		t.Errorf("other group placed on %s", got)
	}
}
