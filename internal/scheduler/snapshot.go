package scheduler

import (
	"strings"
)

// Snapshot is the scheduler's working view of a cluster: the container
// instances as the caller saw them, plus every placement made on the
// snapshot since. Each Place or PlaceOn call sees the resources, ports and
// task groups that earlier calls (and earlier tasks of the same call) took,
// so one snapshot can place a whole service's tasks, call after call.
//
// A Snapshot never changes the caller's instances, does no I/O, reads no
// clock and uses no global randomness: the same instances, calls and seeds
// give the same placements. It is not safe for concurrent use.
type Snapshot struct {
	inst   []Instance
	cpu    []int64  // remaining CPU units, after this snapshot's placements
	mem    []int64  // remaining memory, MiB
	idKey  []uint64 // the first 8 bytes of the ID, big-endian: orders most IDs without comparing strings
	ext    []int32  // 1 + index into extras, or 0 if nothing was placed on the instance
	extras []extra
	active int // ACTIVE instances

	hashes  []uint64                // FNV-1a of the IDs, for random; built on first use
	groups  map[string][]int32      // tasks of a group per instance; built on first use
	attrs   map[string]*attrCol     // spread buckets per attribute; built on first use
	byID    map[string]int          // for PlaceOn; built on first use
	memos   map[*Expression][]uint8 // answers of expressions without task:group: 0 unknown, 1 true, 2 false
	cand    []int32                 // scratch: the candidates of the current call
	entries []entry                 // scratch: the ranking heaps of the current call
	view    view                    // scratch for evaluating expressions without allocating
}

// extra is what this snapshot has placed on one instance.
type extra struct {
	ports  []uint32 // Port.code of the static host ports taken
	placed []string // groups of the tasks placed
}

// attrCol maps each instance to a bucket of an attribute's values: bucket
// 0 holds the instances without the attribute.
type attrCol struct {
	bucket  []int32
	buckets int
}

// NewSnapshot returns a snapshot of the instances. It keeps the slice (and
// the maps and slices inside the instances) without copying them: the caller
// must not change them while the snapshot is in use.
func NewSnapshot(instances []Instance) *Snapshot {
	n := len(instances)
	s := &Snapshot{
		inst:  instances,
		cpu:   make([]int64, n),
		mem:   make([]int64, n),
		ext:   make([]int32, n),
		idKey: make([]uint64, n),
	}
	for i := range instances {
		var k uint64
		id := instances[i].ID
		for j := range 8 {
			k <<= 8
			if j < len(id) {
				k |= uint64(id[j])
			}
		}
		s.idKey[i] = k
		s.cpu[i] = int64(instances[i].RemainingCPU)
		s.mem[i] = int64(instances[i].RemainingMemory)
		if instances[i].Status == StatusActive {
			s.active++
		}
	}
	return s
}

// Place places count tasks of t on the snapshot's ACTIVE instances and
// records them in the snapshot. seed drives the random strategy; the same
// snapshot state, task and seed always give the same result.
//
// For each task in turn, the candidates are the ACTIVE instances that pass
// every filter, in this order (the first one an instance fails is its
// reason):
//
//	AGENT                connected agent
//	ATTRIBUTE            t.RequiredAttributes present (with their values)
//	MemberOf ...         every memberOf expression true
//	DistinctInstance ... no task of t.Group on the instance
//	RESOURCE:CPU         enough CPU units left
//	RESOURCE:MEMORY      enough memory left
//	RESOURCE:PORTS       t.Ports free, and at most MaxReservedPorts in all
//
// The task goes to the candidate that the strategy rules rank first. When no
// candidate is left, that task and the rest of count are not placed, and the
// result lists each ACTIVE instance with the reason it refused. DRAINING and
// other instances are never candidates and never listed.
//
// Errors: ErrNoInstances when the snapshot has no ACTIVE instance; an error
// wrapping errdefs.ErrInvalidArgument when count or t is malformed.
func (s *Snapshot) Place(t Task, count int, seed uint64) (Result, error) {
	if count < 1 {
		return Result{}, invalid("The count of tasks to place must be at least 1, not %d.", count)
	}
	ct, err := s.compile(&t, seed, true)
	if err != nil {
		return Result{}, err
	}
	if s.active == 0 {
		return Result{}, ErrNoInstances
	}
	cand := s.cand[:0]
	for i := range s.inst {
		if s.inst[i].Status == StatusActive && s.check(i, ct) == stageOK {
			cand = append(cand, int32(i))
		}
	}
	s.cand = cand
	res := Result{Placements: make([]Placement, 0, min(count, len(cand)))}
	p := s.newPicker(ct, cand)
	for k := range count {
		i, ok := p.next(uint64(k))
		if !ok {
			s.explain(ct, &res)
			break
		}
		s.commit(i, ct)
		res.Placements = append(res.Placements, s.placement(i))
		// Only the chosen instance changed, so only it can stop being a
		// candidate.
		p.chosen(i, s.check(i, ct) == stageOK)
	}
	return res, nil
}

// PlaceOn places one task of t on each named instance, in order, as
// StartTask does: the same filters as Place (give t only the constraints
// that should apply), but t.Strategy is only validated, not used. Names the snapshot does not know fail
// with ReasonMissing, DRAINING instances with ReasonDraining and instances
// in any other status but ACTIVE with ReasonInactive. Errors wrap
// errdefs.ErrInvalidArgument when t is malformed.
func (s *Snapshot) PlaceOn(instanceIDs []string, t Task) (Result, error) {
	ct, err := s.compile(&t, 0, false)
	if err != nil {
		return Result{}, err
	}
	if s.byID == nil {
		s.byID = make(map[string]int, len(s.inst))
		for i := range s.inst {
			s.byID[s.inst[i].ID] = i
		}
	}
	var res Result
	for _, id := range instanceIDs {
		i, ok := s.byID[id]
		var f Failure
		switch {
		case !ok:
			f = Failure{InstanceID: id, Reason: ReasonMissing,
				Detail: "Container instance " + id + " is not registered in the cluster."}
		case s.inst[i].Status == StatusDraining:
			f = Failure{InstanceID: id, InstanceARN: s.inst[i].ARN, Reason: ReasonDraining,
				Detail: "Container instance " + id + " is DRAINING and takes no new tasks."}
		case s.inst[i].Status != StatusActive:
			f = Failure{InstanceID: id, InstanceARN: s.inst[i].ARN, Reason: ReasonInactive,
				Detail: "Container instance " + id + " is " + s.inst[i].Status + ", not ACTIVE."}
		default:
			st := s.check(i, ct)
			if st == stageOK {
				s.commit(i, ct)
				res.Placements = append(res.Placements, s.placement(i))
				continue
			}
			var gap int64
			f, gap = s.failure(i, st, ct)
			res.noteClosest(st, gap, len(res.Failures))
		}
		res.Failures = append(res.Failures, f)
	}
	return res, nil
}

// Place places count tasks of t on instances: NewSnapshot(instances).Place.
// Use a Snapshot directly to place more tasks against the same instances.
func Place(instances []Instance, t Task, count int, seed uint64) (Result, error) {
	return NewSnapshot(instances).Place(t, count, seed)
}

func (s *Snapshot) placement(i int) Placement {
	return Placement{InstanceID: s.inst[i].ID, InstanceARN: s.inst[i].ARN, Index: i}
}

// compiled is a Task checked and prepared for one call.
type compiled struct {
	t        *Task
	cpu, mem int64
	ports    []uint32
	memberOf []*Expression
	memos    [][]uint8 // per memberOf expression: the snapshot's memo, or nil
	distinct bool
	counts   []int32 // tasks of t.Group per instance, when distinctInstance or spread needs them
	levels   []level
}

// compile checks t and prepares it for one call: the filters' inputs and,
// when rank is set, the strategy rules. Nothing is prepared (or built in
// the snapshot) unless the whole task is valid.
func (s *Snapshot) compile(t *Task, seed uint64, rank bool) (*compiled, error) {
	if err := validate(t); err != nil {
		return nil, err
	}
	ct := &compiled{t: t, cpu: int64(t.CPU), mem: int64(t.Memory)}
	for _, p := range t.Ports {
		ct.ports = append(ct.ports, p.code())
	}
	for _, c := range t.Constraints {
		if c.Type == DistinctInstance {
			ct.distinct = true
			ct.counts = s.groupCounts(t.Group)
		} else {
			ct.memberOf = append(ct.memberOf, c.Expression)
			ct.memos = append(ct.memos, s.memo(c.Expression))
		}
	}
	if !rank {
		return ct, nil
	}
	strategy := t.Strategy
	if len(strategy) == 0 {
		strategy = RunTaskDefaultStrategy()
	}
	for _, st := range strategy {
		var l level
		switch {
		case st.Type == Binpack && st.Field == FieldCPU:
			l.kind = levelCPU
		case st.Type == Binpack:
			l.kind = levelMemory
		case st.Type == Random:
			l.kind, l.seed = levelRandom, seed
			s.buildHashes()
		case st.Field == FieldInstanceID || st.Field == "host":
			l.kind, l.counts = levelSpreadInstance, s.groupCounts(t.Group)
		default:
			counts := s.groupCounts(t.Group)
			l.kind, l.col = levelSpreadAttr, s.attrColumn(strings.TrimPrefix(st.Field, "attribute:"))
			l.bcount = make([]int32, l.col.buckets)
			for i, b := range l.col.bucket {
				l.bcount[b] += counts[i]
			}
		}
		ct.levels = append(ct.levels, l)
	}
	return ct, nil
}

// validate checks a task, as the API could have built it, before placement.
func validate(t *Task) error {
	if t.CPU < 0 || t.Memory < 0 {
		return invalid("A task cannot reserve negative resources (cpu %d, memory %d).", t.CPU, t.Memory)
	}
	for i, p := range t.Ports {
		k, err := p.key()
		if err != nil {
			return err
		}
		for _, q := range t.Ports[:i] {
			if q.code() == k {
				return invalid("The task needs host port %s twice.", portString(k))
			}
		}
	}
	for _, a := range t.RequiredAttributes {
		if a.Name == "" {
			return invalid("A required attribute has no name.")
		}
	}
	if len(t.Constraints) > MaxConstraints {
		return invalid("A task can have at most %d placement constraints, not %d.", MaxConstraints, len(t.Constraints))
	}
	for _, c := range t.Constraints {
		if (c.Type != DistinctInstance || c.Expression != nil) && (c.Type != MemberOf || c.Expression == nil) {
			return invalid("Invalid placement constraint of type %q: use ParseConstraint.", string(c.Type))
		}
	}
	if len(t.Strategy) > MaxStrategies {
		return invalid("A task can have at most %d placement strategy rules, not %d.", MaxStrategies, len(t.Strategy))
	}
	for _, st := range t.Strategy {
		if err := st.validate(); err != nil {
			return err
		}
	}
	return nil
}

// memo returns the snapshot's memo of e's answers, or nil if e reads
// task:group, whose answer changes as tasks are placed. Every other subject
// is a fixed input of the snapshot. Callers that parse a constraint once
// and reuse it across calls pay for each instance's answer once.
func (s *Snapshot) memo(e *Expression) []uint8 {
	if e.taskGroup {
		return nil
	}
	if m, ok := s.memos[e]; ok {
		return m
	}
	if s.memos == nil {
		s.memos = make(map[*Expression][]uint8)
	}
	m := make([]uint8, len(s.inst))
	s.memos[e] = m
	return m
}

// groupCounts returns the number of tasks of group g on each instance,
// kept up to date by commit from then on.
func (s *Snapshot) groupCounts(g string) []int32 {
	if c, ok := s.groups[g]; ok {
		return c
	}
	c := make([]int32, len(s.inst))
	for i := range s.inst {
		for j := range s.inst[i].Tasks {
			if s.inst[i].Tasks[j].Group == g {
				c[i]++
			}
		}
		if e := s.ext[i]; e != 0 {
			for _, pg := range s.extras[e-1].placed {
				if pg == g {
					c[i]++
				}
			}
		}
	}
	if s.groups == nil {
		s.groups = make(map[string][]int32)
	}
	s.groups[g] = c
	return c
}

func (s *Snapshot) attrColumn(name string) *attrCol {
	if c := s.attrs[name]; c != nil {
		return c
	}
	c := &attrCol{bucket: make([]int32, len(s.inst)), buckets: 1}
	ids := make(map[string]int32)
	for i := range s.inst {
		v, ok := s.inst[i].Attributes[name]
		if !ok {
			continue // bucket 0
		}
		id, seen := ids[v]
		if !seen {
			id = int32(c.buckets)
			ids[v] = id
			c.buckets++
		}
		c.bucket[i] = id
	}
	if s.attrs == nil {
		s.attrs = make(map[string]*attrCol)
	}
	s.attrs[name] = c
	return c
}

func (s *Snapshot) buildHashes() {
	if s.hashes != nil {
		return
	}
	s.hashes = make([]uint64, len(s.inst))
	for i := range s.inst {
		h := uint64(14695981039346656037) // FNV-1a
		id := s.inst[i].ID
		for j := 0; j < len(id); j++ {
			h ^= uint64(id[j])
			h *= 1099511628211
		}
		s.hashes[i] = h
	}
}

func (s *Snapshot) extraOf(i int) *extra {
	if s.ext[i] == 0 {
		s.extras = append(s.extras, extra{})
		s.ext[i] = int32(len(s.extras))
	}
	return &s.extras[s.ext[i]-1]
}

// commit records one task of ct on instance i.
func (s *Snapshot) commit(i int, ct *compiled) {
	s.cpu[i] -= ct.cpu
	s.mem[i] -= ct.mem
	e := s.extraOf(i)
	e.ports = append(e.ports, ct.ports...)
	e.placed = append(e.placed, ct.t.Group)
	if c := s.groups[ct.t.Group]; c != nil {
		c[i]++ // also the counts of distinctInstance and spread(instanceId)
	}
	for l := range ct.levels {
		if lv := &ct.levels[l]; lv.kind == levelSpreadAttr {
			lv.bcount[lv.col.bucket[i]]++
		}
	}
}

// Eligible reports whether in belongs among the instances a DAEMON service
// runs on for t: ACTIVE, with t's required attributes, and meeting its
// memberOf constraints. Resources, ports, the agent's connection and
// distinctInstance are left out: they decide whether a placement succeeds
// now, not whether the instance should have the task.
func Eligible(in *Instance, t Task) bool {
	if in.Status != StatusActive {
		return false
	}
	one := *in
	one.AgentConnected = true
	s := NewSnapshot([]Instance{one})
	ct, err := s.compile(&t, 0, false)
	if err != nil {
		return false
	}
	st := s.check(0, ct)
	return st == stageOK || st >= stageDistinct
}
