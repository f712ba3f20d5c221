package scheduler

import (
	"fmt"
	"testing"
)

// BenchmarkPlace places 50,000 tasks on 5,000 instances in calls of count
// 10, and reports placements per second (placements/s):
//
//	go test -run '^$' -bench '^BenchmarkPlace$' ./internal/scheduler
//
// "snapshot" keeps one Snapshot for all calls, as the service controller
// does. "oneshot" builds a new snapshot per call from instances the loop
// updates after each call, as RunTask does with what it reads from the
// store. Each instance has 16384 CPU units and 65536 MiB, two custom
// attributes, an availability zone out of three and eight running tasks;
// a task needs 128 CPU units, 256 MiB and no static port, so all 50,000
// fit (binpack fills instances in turn, spread evens them out).
func BenchmarkPlace(b *testing.B) {
	strategies := []struct {
		name     string
		strategy []Strategy
	}{
		{"binpack", []Strategy{{Binpack, FieldMemory}}},
		{"spread", ServiceDefaultStrategy()},
		{"random", []Strategy{{Type: Random}}},
	}
	constraints := []struct {
		name        string
		constraints func(b *testing.B) []Constraint
	}{
		{"plain", func(*testing.B) []Constraint { return nil }},
		{"memberOf", func(b *testing.B) []Constraint {
			c, err := ParseConstraint("memberOf", "attribute:ecs.instance-type =~ m5.* and attribute:stack != dev")
			if err != nil {
				b.Fatal(err)
			}
			return []Constraint{c}
		}},
	}
	for _, mode := range []string{"snapshot", "oneshot"} {
		for _, st := range strategies {
			for _, cs := range constraints {
				b.Run(mode+"/"+st.name+"/"+cs.name, func(b *testing.B) {
					task := Task{Group: "service:web", CPU: 128, Memory: 256, Strategy: st.strategy, Constraints: cs.constraints(b)}
					placements := 0
					for b.Loop() {
						b.StopTimer()
						instances := benchCluster(5000)
						b.StartTimer()
						placements += placeMany(b, mode, instances, task, 50000, 10)
					}
					b.ReportMetric(float64(placements)/b.Elapsed().Seconds(), "placements/s")
				})
			}
		}
	}
}

func placeMany(b *testing.B, mode string, instances []Instance, task Task, total, per int) int {
	placed := 0
	var snap *Snapshot
	if mode == "snapshot" {
		snap = NewSnapshot(instances)
	}
	for call := 0; placed < total; call++ {
		s := snap
		if s == nil {
			s = NewSnapshot(instances)
		}
		res, err := s.Place(task, per, uint64(call))
		if err != nil || len(res.Placements) != per {
			b.Fatalf("call %d: %d placed, %v: %s", call, len(res.Placements), err, res.Explain())
		}
		if snap == nil { // what the caller writes back to the store
			for _, p := range res.Placements {
				in := &instances[p.Index]
				in.RemainingCPU -= task.CPU
				in.RemainingMemory -= task.Memory
				in.Tasks = append(in.Tasks, PlacedTask{Group: task.Group})
			}
		}
		placed += len(res.Placements)
	}
	return placed
}

func benchCluster(n int) []Instance {
	instances := make([]Instance, n)
	for i := range instances {
		instances[i] = Instance{
			ID:             fmt.Sprintf("%016x%016x", mix(uint64(i)), mix(uint64(i)+1<<40)), // like ECS: 32 hex digits
			Status:         StatusActive,
			AgentConnected: true,
			RemainingCPU:   16384,
			// Memory varies a little so binpack has an order to follow.
			RemainingMemory: 65536 - 256*(i%7),
			Attributes: map[string]string{
				"ecs.availability-zone": []string{"us-east-1a", "us-east-1b", "us-east-1c"}[i%3],
				"ecs.instance-type":     "m5.4xlarge",
				"stack":                 "prod",
			},
		}
		instances[i].ARN = "arn:aws:ecs:us-east-1:000000000000:container-instance/bench/" + instances[i].ID
		for j := range 8 {
			instances[i].Tasks = append(instances[i].Tasks, PlacedTask{Group: fmt.Sprintf("service:s%d", (i+j)%50)})
		}
	}
	return instances
}
