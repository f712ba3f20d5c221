package scheduler

// Ranking: the strategy rules order the candidates by a composite key, one
// component per rule (lower first), then by instance ID. Each task of a call
// goes to the first candidate in that order. Two ways to find it, with the
// same answer:
//
//   - heaps: when placing a task changes only the key of the instance it
//     went to (binpack, spread by instanceId), one min-heap of candidates
//     gives the first in O(log n) per task after O(n) to build. A leading
//     spread by attribute changes the key of a whole bucket at once, so it
//     gets one heap per bucket and the pick is the first of the heap of
//     the emptiest bucket.
//   - scan: every candidate for every task. Random needs it, as its keys
//     are drawn afresh for each task; so does a spread by attribute after
//     the first rule.

type levelKind uint8

const (
	levelCPU levelKind = iota + 1
	levelMemory
	levelSpreadInstance
	levelSpreadAttr
	levelRandom
)

// level is one strategy rule prepared for ranking.
type level struct {
	kind   levelKind
	counts []int32 // levelSpreadInstance: group tasks per instance
	col    *attrCol
	bcount []int32 // levelSpreadAttr: group tasks per bucket
	seed   uint64
	salt   uint64 // levelRandom: derived from seed and the task's index in the call
}

// keys is a composite key: one component per strategy rule.
type keys [MaxStrategies]int64

func (s *Snapshot) key(l *level, i int32) int64 {
	switch l.kind {
	case levelCPU:
		return s.cpu[i]
	case levelMemory:
		return s.mem[i]
	case levelSpreadInstance:
		return int64(l.counts[i])
	case levelSpreadAttr:
		return int64(l.bcount[l.col.bucket[i]])
	}
	return int64(mix(s.hashes[i]^l.salt) >> 1)
}

func (s *Snapshot) keysOf(levels []level, i int32, k *keys) {
	for l := range levels {
		k[l] = s.key(&levels[l], i)
	}
}

// mix is splitmix64's finaliser: a bijection that scatters nearby inputs.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// idLess orders instances by ID, then by position for equal IDs.
func (s *Snapshot) idLess(a, b int32) bool {
	if ka, kb := s.idKey[a], s.idKey[b]; ka != kb {
		return ka < kb
	}
	ida, idb := s.inst[a].ID, s.inst[b].ID
	return ida < idb || ida == idb && a < b
}

// picker chooses the instance for each task of one Place call.
type picker struct {
	s      *Snapshot
	levels []level

	// scan
	cand []int32
	last int // the position in cand of the last pick

	// heaps
	heaps  [][]entry // one per bucket of spread, or just one
	spread *level    // the leading spread-by-attribute rule, or nil
	sub    []level   // the rules the heaps order by: levels without spread
	cur    int       // the heap of the last pick
}

type entry struct {
	i   int32
	key keys
}

func (s *Snapshot) newPicker(ct *compiled, cand []int32) picker {
	p := picker{s: s, levels: ct.levels, cand: cand}
	// Heaps work when placing a task changes only the chosen instance's
	// key, or a whole bucket's (a leading spread by attribute, handled by
	// one heap per bucket). Random keys change for everyone with every
	// task, and a later spread by attribute reorders instances across
	// heaps: those scan.
	for l, lv := range ct.levels {
		if lv.kind == levelRandom || lv.kind == levelSpreadAttr && l > 0 {
			return p
		}
	}
	p.sub = ct.levels
	n := 1
	if len(ct.levels) > 0 && ct.levels[0].kind == levelSpreadAttr {
		p.spread, p.sub, n = &ct.levels[0], ct.levels[1:], ct.levels[0].col.buckets
	}
	// The heaps share one scratch slice, a range of it per bucket.
	bucket := func(i int32) int {
		if p.spread == nil {
			return 0
		}
		return int(p.spread.col.bucket[i])
	}
	ends := make([]int, n)
	for _, i := range cand {
		ends[bucket(i)]++
	}
	for b := 1; b < n; b++ {
		ends[b] += ends[b-1]
	}
	if cap(s.entries) < len(cand) {
		s.entries = make([]entry, len(cand))
	}
	all := s.entries[:len(cand)]
	p.heaps = make([][]entry, n)
	for b := range p.heaps {
		start := 0
		if b > 0 {
			start = ends[b-1]
		}
		p.heaps[b] = all[start:start:ends[b]]
	}
	for _, i := range cand {
		b := bucket(i)
		e := entry{i: i}
		s.keysOf(p.sub, i, &e.key)
		p.heaps[b] = append(p.heaps[b], e)
	}
	for _, h := range p.heaps {
		for j := len(h)/2 - 1; j >= 0; j-- {
			p.down(h, j)
		}
	}
	return p
}

// next returns the candidate the rules rank first for the k-th task of the
// call, and false if there is none.
func (p *picker) next(k uint64) (int, bool) {
	if p.heaps == nil {
		if len(p.cand) == 0 {
			return 0, false
		}
		p.last = p.scan(k)
		return int(p.cand[p.last]), true
	}
	best := -1
	for b, h := range p.heaps {
		if len(h) > 0 && (best < 0 || p.heapLess(b, best)) {
			best = b
		}
	}
	if best < 0 {
		return 0, false
	}
	p.cur = best
	return int(p.heaps[best][0].i), true
}

// heapLess orders two non-empty heaps by their bucket's count, then by
// their first entries.
func (p *picker) heapLess(a, b int) bool {
	if p.spread != nil {
		if ca, cb := p.spread.bcount[a], p.spread.bcount[b]; ca != cb {
			return ca < cb
		}
	}
	return p.less(&p.heaps[a][0], &p.heaps[b][0])
}

// chosen records that a task went to instance i, the last pick, and whether
// i still takes another.
func (p *picker) chosen(i int, fits bool) {
	if p.heaps == nil {
		if !fits {
			p.cand[p.last] = p.cand[len(p.cand)-1]
			p.cand = p.cand[:len(p.cand)-1]
		}
		return
	}
	h := p.heaps[p.cur]
	if fits {
		p.s.keysOf(p.sub, int32(i), &h[0].key)
	} else {
		h[0] = h[len(h)-1]
		h = h[:len(h)-1]
		p.heaps[p.cur] = h
	}
	if len(h) > 0 {
		p.down(h, 0)
	}
}

func (p *picker) less(a, b *entry) bool {
	for l := range p.sub {
		if a.key[l] != b.key[l] {
			return a.key[l] < b.key[l]
		}
	}
	return p.s.idLess(a.i, b.i)
}

// down moves h[j] down to its place in the min-heap h.
func (p *picker) down(h []entry, j int) {
	for {
		c := 2*j + 1
		if c >= len(h) {
			return
		}
		if r := c + 1; r < len(h) && p.less(&h[r], &h[c]) {
			c = r
		}
		if !p.less(&h[c], &h[j]) {
			return
		}
		h[j], h[c] = h[c], h[j]
		j = c
	}
}

// scan returns the position in p.cand of the candidate ranked first for the
// k-th task: the lowest key of the first rule, ties broken by the next
// rules, then by instance ID.
func (p *picker) scan(k uint64) int {
	s, levels, cand := p.s, p.levels, p.cand
	for l := range levels {
		if levels[l].kind == levelRandom {
			levels[l].salt = mix(levels[l].seed + (k+1)*0x9e3779b97f4a7c15)
		}
	}
	var bestKey keys
	bj, b := 0, cand[0]
	s.keysOf(levels, b, &bestKey)
	for j := 1; j < len(cand); j++ {
		c := cand[j]
		decided, better := false, false
		for l := range levels {
			v := s.key(&levels[l], c)
			if v == bestKey[l] {
				continue
			}
			decided = true
			if v < bestKey[l] {
				better = true
				bestKey[l] = v
				for m := l + 1; m < len(levels); m++ {
					bestKey[m] = s.key(&levels[m], c)
				}
			}
			break
		}
		if !decided {
			better = s.idLess(c, b)
		}
		if better {
			bj, b = j, c
		}
	}
	return bj
}
