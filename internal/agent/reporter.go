package agent

import (
	"sync"

	"github.com/berthdev/berth/internal/agentapi"
)

// reporter queues task reports for the control plane. Only the newest
// report of a task is kept (a later state subsumes an earlier one, and its
// larger Seq makes the control plane apply it), so the queue holds at most
// one report per task; it is bounded besides, dropping the oldest entries,
// which the full resend after the next registration recovers.
type reporter struct {
	mu sync.Mutex
	// pending are the reports not yet acknowledged, by task ARN; order is
	// their first-enqueued order, for batching and eviction.
	pending map[string]agentapi.TaskReport
	order   []string
	// latest is the newest report of every known task, resent in full
	// after (re-)registration.
	latest map[string]agentapi.TaskReport
	max    int
	notify chan struct{}
	// dropped counts reports evicted because the queue was full.
	dropped int
	// observe, if set (by tests), sees every enqueued report.
	observe func(agentapi.TaskReport)
}

func newReporter(max int) *reporter {
	return &reporter{
		pending: map[string]agentapi.TaskReport{},
		latest:  map[string]agentapi.TaskReport{},
		max:     max,
		notify:  make(chan struct{}, 1),
	}
}

// enqueue queues a task's newest report.
func (r *reporter) enqueue(tr agentapi.TaskReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latest[tr.TaskArn] = tr
	if r.observe != nil {
		r.observe(tr)
	}
	r.put(tr)
	r.signal()
}

func (r *reporter) put(tr agentapi.TaskReport) {
	if _, ok := r.pending[tr.TaskArn]; !ok {
		r.order = append(r.order, tr.TaskArn)
	}
	r.pending[tr.TaskArn] = tr
	for len(r.order) > r.max {
		delete(r.pending, r.order[0])
		r.order = r.order[1:]
		r.dropped++
	}
}

func (r *reporter) signal() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// batch returns up to n pending reports, oldest first.
func (r *reporter) batch(n int) []agentapi.TaskReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]agentapi.TaskReport, 0, min(n, len(r.order)))
	for _, arn := range r.order {
		if len(out) == n {
			break
		}
		out = append(out, r.pending[arn])
	}
	return out
}

// ack removes the sent reports, unless a newer one replaced them meanwhile.
func (r *reporter) ack(sent []agentapi.TaskReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tr := range sent {
		if cur, ok := r.pending[tr.TaskArn]; ok && cur.Seq <= tr.Seq {
			delete(r.pending, tr.TaskArn)
		}
	}
	order := r.order[:0]
	for _, arn := range r.order {
		if _, ok := r.pending[arn]; ok {
			order = append(order, arn)
		}
	}
	r.order = order
}

// resendAll queues the newest report of every known task again, for a
// control plane that may have lost them.
func (r *reporter) resendAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tr := range r.latest {
		if cur, ok := r.pending[tr.TaskArn]; !ok || cur.Seq < tr.Seq {
			r.put(tr)
		}
	}
	r.signal()
}

// forget drops a task the agent no longer knows.
func (r *reporter) forget(taskArn string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.latest, taskArn)
}

// size returns the number of pending reports.
func (r *reporter) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}
