package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// The property tests generate random clusters and tasks from a seed, place
// tasks call after call on one snapshot, and check every result against a
// model kept by the test: what each instance has left, and the groups on it.

var (
	propExprs = []string{
		"attribute:ecs.availability-zone in [a, b]",
		"attribute:stack == prod",
		"attribute:ecs.instance-type =~ t2.*",
		"not(task:group == g)",
		"task:group exists or attribute:stack != dev",
		"runningTasksCount <= 2 and agentConnected == true",
		"attribute:size > 4",
	}
	propStrategies = [][]Strategy{
		nil,
		{{Type: Random}},
		{{Binpack, "cpu"}},
		{{Binpack, "memory"}},
		{{Spread, "instanceId"}},
		ServiceDefaultStrategy(),
		{{Spread, "attribute:stack"}, {Binpack, "memory"}, {Type: Random}},
	}
	propPorts = []Port{{Number: 80}, {Number: 443}, {Number: 8080}, {Number: 53, Protocol: "udp"}}
)

// propParsed are propExprs parsed once.
var propParsed = func() []Constraint {
	var out []Constraint
	for _, e := range propExprs {
		c, err := ParseConstraint("memberOf", e)
		if err != nil {
			panic(err)
		}
		out = append(out, c)
	}
	return out
}()

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func randomCluster(r *rand.Rand) []Instance {
	n := 1 + r.IntN(25)
	var out []Instance
	for i := range n {
		in := Instance{
			ID:                fmt.Sprintf("ci-%03d", r.IntN(1000)*1000+i),
			Status:            StatusActive,
			AgentConnected:    r.IntN(10) > 0,
			RunningTasksCount: r.IntN(4),
			RemainingCPU:      r.IntN(4097),
			RemainingMemory:   r.IntN(4097),
			Attributes:        map[string]string{},
		}
		in.ARN = "arn:" + in.ID
		switch r.IntN(10) {
		case 0:
			in.Status = StatusDraining
		case 1:
			in.Status = "INACTIVE"
		}
		if r.IntN(4) > 0 {
			in.Attributes["ecs.availability-zone"] = pick(r, []string{"a", "b", "c"})
		}
		if r.IntN(2) > 0 {
			in.Attributes["ecs.instance-type"] = pick(r, []string{"t2.small", "m5.large"})
		}
		if r.IntN(2) > 0 {
			in.Attributes["stack"] = pick(r, []string{"prod", "dev"})
		}
		in.Attributes["size"] = fmt.Sprint(r.IntN(10))
		for _, p := range propPorts {
			if r.IntN(5) == 0 {
				in.UsedPorts = append(in.UsedPorts, p)
			}
		}
		for range r.IntN(3) {
			in.Tasks = append(in.Tasks, PlacedTask{Group: pick(r, []string{"g", "h", "service:x"})})
		}
		out = append(out, in)
	}
	return out
}

func randomTask(t *testing.T, r *rand.Rand) Task {
	task := Task{
		Group:    pick(r, []string{"g", "h", "service:x"}),
		CPU:      r.IntN(3) * r.IntN(1025),
		Memory:   r.IntN(3) * r.IntN(1025),
		Strategy: pick(r, propStrategies),
	}
	for _, p := range propPorts {
		if r.IntN(6) == 0 {
			task.Ports = append(task.Ports, p)
		}
	}
	if r.IntN(4) == 0 {
		task.RequiredAttributes = append(task.RequiredAttributes, Attribute{Name: "ecs.instance-type"})
	}
	if r.IntN(3) == 0 {
		task.Constraints = append(task.Constraints, Constraint{Type: DistinctInstance})
	}
	for range r.IntN(3) {
		// Reuse parsed constraints across calls, as the service controller
		// does, so that the snapshot's memo of answers is exercised; one
		// in four is parsed afresh.
		if r.IntN(4) == 0 {
			task.Constraints = append(task.Constraints, memberOf(t, pick(r, propExprs)))
		} else {
			task.Constraints = append(task.Constraints, pick(r, propParsed))
		}
	}
	return task
}

// model is the test's own account of a snapshot.
type model struct {
	inst   []Instance
	cpu    []int
	mem    []int
	ports  []map[Port]bool
	groups [][]string
}

func newModel(instances []Instance) *model {
	m := &model{inst: instances}
	for _, in := range instances {
		m.cpu = append(m.cpu, in.RemainingCPU)
		m.mem = append(m.mem, in.RemainingMemory)
		ps := map[Port]bool{}
		for _, p := range in.UsedPorts {
			ps[p.normal()] = true
		}
		m.ports = append(m.ports, ps)
		var gs []string
		for _, tk := range in.Tasks {
			gs = append(gs, tk.Group)
		}
		m.groups = append(m.groups, gs)
	}
	return m
}

func (p Port) normal() Port {
	if p.Protocol == "" {
		p.Protocol = "tcp"
	}
	return p
}

// refusal returns the reason instance i refuses the task, or "" if it
// takes it: the model's own reading of the filters.
func (m *model) refusal(i int, task Task) string {
	in := m.inst[i]
	if !in.AgentConnected {
		return ReasonAgent
	}
	for _, a := range task.RequiredAttributes {
		if v, ok := in.Attributes[a.Name]; !ok || a.Value != "" && a.Value != v {
			return ReasonAttribute
		}
	}
	now := in
	now.Tasks = nil
	for _, g := range m.groups[i] {
		now.Tasks = append(now.Tasks, PlacedTask{Group: g})
	}
	for _, c := range task.Constraints {
		if c.Type == MemberOf && !c.Expression.Match(&now) {
			return ReasonMemberOf
		}
	}
	for _, c := range task.Constraints {
		if c.Type == DistinctInstance && slices.Contains(m.groups[i], task.Group) {
			return ReasonDistinctInstance
		}
	}
	if task.CPU > m.cpu[i] {
		return ReasonCPU
	}
	if task.Memory > m.mem[i] {
		return ReasonMemory
	}
	if len(m.ports[i])+len(task.Ports) > MaxReservedPorts {
		return ReasonPorts
	}
	for _, p := range task.Ports {
		if m.ports[i][p.normal()] {
			return ReasonPorts
		}
	}
	return ""
}

func (m *model) take(i int, task Task) {
	m.cpu[i] -= task.CPU
	m.mem[i] -= task.Memory
	for _, p := range task.Ports {
		m.ports[i][p.normal()] = true
	}
	m.groups[i] = append(m.groups[i], task.Group)
}

func (m *model) count(i int, group string) int {
	n := 0
	for _, g := range m.groups[i] {
		if g == group {
			n++
		}
	}
	return n
}

func TestPlacementProperties(t *testing.T) {
	for seed := range uint64(1500) {
		r := rand.New(rand.NewPCG(seed, 0xbe7))
		instances := randomCluster(r)
		var calls []Task
		var counts []int
		for range 1 + r.IntN(6) {
			calls = append(calls, randomTask(t, r))
			counts = append(counts, 1+r.IntN(10))
		}
		results := checkCalls(t, seed, instances, calls, counts)
		// The same instances, calls and seeds place the same way again.
		if again := checkCalls(t, seed, instances, calls, counts); fmt.Sprint(again) != fmt.Sprint(results) {
			t.Fatalf("seed %d: a second run placed differently:\n%v\n%v", seed, results, again)
		}
		if t.Failed() {
			return
		}
	}
}

func checkCalls(t *testing.T, seed uint64, instances []Instance, calls []Task, counts []int) []Result {
	snap := NewSnapshot(instances)
	m := newModel(instances)
	active := 0
	for _, in := range instances {
		if in.Status == StatusActive {
			active++
		}
	}
	var results []Result
	for c, task := range calls {
		res, err := snap.Place(task, counts[c], seed+uint64(c))
		if active == 0 {
			if err != ErrNoInstances {
				t.Errorf("seed %d call %d: no ACTIVE instance, got %v", seed, c, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("seed %d call %d: %v", seed, c, err)
		}
		results = append(results, res)
		for _, p := range res.Placements {
			i := p.Index
			in := instances[i]
			if in.ID != p.InstanceID || in.ARN != p.InstanceARN {
				t.Fatalf("seed %d: placement %+v does not match instance %d", seed, p, i)
			}
			if in.Status != StatusActive {
				t.Errorf("seed %d: placed on %s, which is %s", seed, in.ID, in.Status)
			}
			if why := m.refusal(i, task); why != "" {
				t.Errorf("seed %d call %d: placed on %s, which refuses with %s", seed, c, in.ID, why)
			}
			checkRanking(t, seed, m, task, i)
			m.take(i, task)
			// The invariants, restated on the model after the placement.
			if task.CPU > 0 && m.cpu[i] < 0 || task.Memory > 0 && m.mem[i] < 0 {
				t.Errorf("seed %d: %s oversubscribed: cpu %d, memory %d left", seed, in.ID, m.cpu[i], m.mem[i])
			}
			if slices.ContainsFunc(task.Constraints, func(c Constraint) bool { return c.Type == DistinctInstance }) &&
				m.count(i, task.Group) > 1 {
				t.Errorf("seed %d: distinctInstance broken: %s has %d tasks of %s", seed, in.ID, m.count(i, task.Group), task.Group)
			}
		}
		if len(res.Placements) == counts[c] {
			if len(res.Failures) != 0 || res.Explain() != "" {
				t.Errorf("seed %d call %d: all placed, yet failures %v", seed, c, res.Failures)
			}
			continue
		}
		// Not all placed: every ACTIVE instance refuses, for the reason the
		// model finds, and the closest one passed the most filters.
		var want []string
		for i, in := range instances {
			if in.Status != StatusActive {
				continue
			}
			why := m.refusal(i, task)
			if why == "" {
				t.Errorf("seed %d call %d: %d of %d placed, but %s could take one", seed, c, len(res.Placements), counts[c], in.ID)
			}
			want = append(want, in.ID+" "+why)
		}
		var got []string
		for _, f := range res.Failures {
			got = append(got, f.InstanceID+" "+f.Reason)
			if f.Detail == "" {
				t.Errorf("seed %d: failure %+v has no detail", seed, f)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("seed %d call %d: failures %v, want %v", seed, c, got, want)
		}
		closest, ok := res.Closest()
		if !ok {
			t.Fatalf("seed %d: failures without a closest instance", seed)
		}
		for _, f := range res.Failures {
			if slices.Index(stageReasons[:], f.Reason) > slices.Index(stageReasons[:], closest.Reason) {
				t.Errorf("seed %d: closest %+v, but %+v passed more filters", seed, closest, f)
			}
		}
	}
	return results
}

// checkRanking checks that no candidate ranks strictly before the chosen
// instance i, by the model's own reading of the strategy rules up to the
// first random one (whose order the model cannot know).
func checkRanking(t *testing.T, seed uint64, m *model, task Task, i int) {
	strategy := task.Strategy
	if len(strategy) == 0 {
		strategy = RunTaskDefaultStrategy()
	}
	if n := slices.IndexFunc(strategy, func(s Strategy) bool { return s.Type == Random }); n >= 0 {
		strategy = strategy[:n]
	}
	key := func(j int) []int {
		var k []int
		for _, st := range strategy {
			switch {
			case st.Field == "cpu":
				k = append(k, m.cpu[j])
			case st.Field == "memory":
				k = append(k, m.mem[j])
			case st.Field == "instanceId":
				k = append(k, m.count(j, task.Group))
			default: // spread over an attribute: the group's tasks in j's bucket
				name := st.Field[len("attribute:"):]
				v, ok := m.inst[j].Attributes[name]
				n := 0
				for x := range m.inst {
					if w, has := m.inst[x].Attributes[name]; has == ok && w == v {
						n += m.count(x, task.Group)
					}
				}
				k = append(k, n)
			}
		}
		return k
	}
	chosen := key(i)
	for j, in := range m.inst {
		if in.Status != StatusActive || m.refusal(j, task) != "" {
			continue
		}
		c := slices.Compare(key(j), chosen)
		if c < 0 || c == 0 && len(strategy) == len(task.Strategy) && len(task.Strategy) > 0 && in.ID < m.inst[i].ID {
			t.Errorf("seed %d: %v chose %s (keys %v), but %s (keys %v) ranks first",
				seed, task.Strategy, m.inst[i].ID, chosen, in.ID, key(j))
		}
	}
}
