package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func az(zone string) func(*Instance) {
	return func(in *Instance) {
		if in.Attributes == nil {
			in.Attributes = map[string]string{}
		}
		in.Attributes["ecs.availability-zone"] = zone
	}
}

func TestStrategies(t *testing.T) {
	for _, tc := range []struct {
		name      string
		instances []Instance
		task      Task
		count     int
		placed    []string
	}{
		{
			name:      "binpack cpu fills the fullest instance that fits",
			instances: []Instance{node("a", 4096, 4096), node("b", 1024, 4096), node("c", 256, 4096), node("d", 2048, 4096)},
			task:      Task{Group: "g", CPU: 512, Strategy: []Strategy{{Binpack, "cpu"}}},
			count:     5,
			placed:    []string{"b", "b", "d", "d", "d"},
		},
		{
			name:      "binpack memory",
			instances: []Instance{node("a", 0, 1000), node("b", 0, 700), node("c", 0, 300)},
			task:      Task{Group: "g", Memory: 300, Strategy: []Strategy{{Binpack, "memory"}}},
			count:     5,
			placed:    []string{"c", "b", "b", "a", "a"},
		},
		{
			name: "binpack ties go to the lowest instance ID",
			instances: []Instance{node("c", 1024, 1024), node("a", 1024, 1024),
				node("b", 1024, 1024)},
			task:   Task{Group: "g", CPU: 512, Strategy: []Strategy{{Binpack, "cpu"}}},
			count:  4,
			placed: []string{"a", "a", "b", "b"},
		},
		{
			name: "spread instanceId evens out the group's tasks",
			instances: []Instance{node("a", 9999, 9999, tasks("g", "g", "other", "other")),
				node("b", 9999, 9999, tasks("g")), node("c", 9999, 9999)},
			task:   Task{Group: "g", Strategy: []Strategy{{Spread, "instanceId"}}},
			count:  5,
			placed: []string{"c", "b", "c", "a", "b"},
		},
		{
			name: "spread by attribute balances zones, not instances",
			instances: []Instance{
				node("a1", 9999, 9999, az("a")), node("a2", 9999, 9999, az("a")), node("a3", 9999, 9999, az("a")),
				node("b1", 9999, 9999, az("b"), tasks("g")),
				node("c1", 9999, 9999, az("c")),
			},
			task:   Task{Group: "g", Strategy: []Strategy{{Spread, "attribute:ecs.availability-zone"}}},
			count:  5,
			placed: []string{"a1", "c1", "a1", "b1", "c1"},
		},
		{
			name: "the service default spreads zones, then instances in a zone",
			instances: []Instance{
				node("a1", 9999, 9999, az("a")), node("a2", 9999, 9999, az("a")),
				node("b1", 9999, 9999, az("b"), tasks("g")), node("b2", 9999, 9999, az("b")),
			},
			task:   Task{Group: "g", Strategy: ServiceDefaultStrategy()},
			count:  5,
			placed: []string{"a1", "a2", "b2", "a1", "b1"},
		},
		{
			name: "spread zones, then binpack memory inside a zone",
			instances: []Instance{
				node("a1", 0, 4096, az("a")), node("a2", 0, 1024, az("a")),
				node("b1", 0, 2048, az("b")), node("b2", 0, 4096, az("b")),
			},
			task: Task{Group: "g", Memory: 512, Strategy: []Strategy{
				{Spread, "attribute:ecs.availability-zone"}, {Binpack, "memory"}}},
			count:  4,
			placed: []string{"a2", "b1", "a2", "b1"},
		},
		{
			name: "instances without the attribute share one bucket",
			instances: []Instance{
				node("x1", 9999, 9999), node("x2", 9999, 9999),
				node("a1", 9999, 9999, az("a")),
			},
			task:   Task{Group: "g", Strategy: []Strategy{{Spread, "attribute:ecs.availability-zone"}, {Spread, "instanceId"}}},
			count:  4,
			placed: []string{"a1", "x1", "x2", "a1"},
		},
		{
			name:      "spread honours host as instanceId",
			instances: []Instance{node("a", 9999, 9999, tasks("g")), node("b", 9999, 9999)},
			task:      Task{Group: "g", Strategy: []Strategy{{Spread, "host"}}},
			count:     2,
			placed:    []string{"b", "a"},
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
		})
	}
}

func cluster(n int) []Instance {
	var out []Instance
	for i := range n {
		out = append(out, node(fmt.Sprintf("i%02d", i), 100000, 100000, az([]string{"a", "b", "c"}[i%3])))
	}
	return out
}

func TestRandomIsDeterministicAndUniform(t *testing.T) {
	instances := cluster(10)
	task := Task{Group: "g", CPU: 1, Strategy: []Strategy{{Type: Random}}}
	first, _ := Place(instances, task, 10, 42)
	again, _ := Place(instances, task, 10, 42)
	if !slices.Equal(placedIDs(first), placedIDs(again)) {
		t.Fatalf("same seed, different placements: %v and %v", placedIDs(first), placedIDs(again))
	}
	other, _ := Place(instances, task, 10, 43)
	if slices.Equal(placedIDs(first), placedIDs(other)) {
		t.Errorf("seeds 42 and 43 gave the same ten placements %v", placedIDs(first))
	}
	// Several tasks of one call are drawn independently.
	if seen := map[string]bool{}; true {
		for _, id := range placedIDs(first) {
			seen[id] = true
		}
		if len(seen) < 4 {
			t.Errorf("ten random placements used only %d instances: %v", len(seen), placedIDs(first))
		}
	}
	// Each instance gets about a tenth of 20,000 placements over many seeds.
	hits := map[string]int{}
	for seed := range uint64(2000) {
		res, _ := Place(instances, task, 10, seed)
		for _, id := range placedIDs(res) {
			hits[id]++
		}
	}
	for id, n := range hits {
		if n < 1700 || n > 2300 {
			t.Errorf("instance %s got %d of 20000 random placements", id, n)
		}
	}
	// Without a strategy, Place uses RunTask's default: random.
	task.Strategy = nil
	def, _ := Place(instances, task, 10, 42)
	if !slices.Equal(placedIDs(first), placedIDs(def)) {
		t.Errorf("default strategy %v, random %v", placedIDs(def), placedIDs(first))
	}
}

// TestPlacementIgnoresInstanceOrder: ties are broken by instance ID and
// random keys are derived from the ID, so the order of the snapshot's
// instances does not matter.
func TestPlacementIgnoresInstanceOrder(t *testing.T) {
	instances := cluster(30)
	for i := range instances {
		instances[i].RemainingCPU = 1000 + 100*(i%4)
		instances[i].Tasks = []PlacedTask{{Group: []string{"g", "h"}[i%2]}}
	}
	for _, strategy := range [][]Strategy{
		{{Type: Random}},
		{{Binpack, "cpu"}},
		{{Spread, "instanceId"}},
		ServiceDefaultStrategy(),
		{{Spread, "attribute:ecs.availability-zone"}, {Type: Random}},
	} {
		task := Task{Group: "g", CPU: 300, Strategy: strategy}
		want, _ := Place(instances, task, 10, 9)
		r := rand.New(rand.NewPCG(1, 2))
		for range 5 {
			shuffled := slices.Clone(instances)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			got, _ := Place(shuffled, task, 10, 9)
			if !slices.Equal(placedIDs(got), placedIDs(want)) {
				t.Errorf("%v: %v after shuffling, %v before", strategy, placedIDs(got), placedIDs(want))
			}
		}
	}
}
