package main

// Where Berth's time goes: the milestones of each task, taken from the
// agent's own log records, and the tables and files made of them.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Milestones of one task, from the bench (call, answer, described) and from
// the agent's log records (the others).
const (
	markCall      = "RunTask called"
	markAnswer    = "RunTask answered"
	markNew       = "agent has the task"
	markPending   = "PENDING"
	markCreated   = "container created"
	markStarted   = "container started"
	markRunning   = "agent: RUNNING"
	markDescribed = "DescribeTasks: RUNNING"
)

var markOrder = []string{markCall, markAnswer, markNew, markPending, markCreated, markStarted, markRunning, markDescribed}

// markSteps explains what happens between a milestone and the one before.
// Every agent step includes saving the task's state file (write, fsync,
// rename, fsync of the directory) and queueing its report.
var markSteps = map[string]string{
	markAnswer:    "SigV4, placement, store commit (fsync)",
	markNew:       "long poll woken, desired state read and sent",
	markPending:   "PROVISIONING, then the PROVISIONING step (nothing to provision in bridge mode)",
	markCreated:   "image present check (two image inspects), create",
	markStarted:   "start",
	markRunning:   "inspect (ports), ACTIVATING",
	markDescribed: "report, store commit, next DescribeTasks",
}

type marks map[string]time.Time

// recorder collects the agent's milestones per task from its log records.
type recorder struct {
	mu    sync.Mutex
	tasks map[string]marks
}

func newRecorder() *recorder { return &recorder{tasks: map[string]marks{}} }

func (r *recorder) mark(arn, name string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.tasks[arn]
	if m == nil {
		m = marks{}
		r.tasks[arn] = m
	}
	if _, ok := m[name]; !ok {
		m[name] = at
	}
}

func (r *recorder) take(arn string) marks {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.tasks[arn]
	delete(r.tasks, arn)
	if m == nil {
		m = marks{}
	}
	return m
}

// teeHandler feeds log records to the recorder and to a log handler.
type teeHandler struct {
	rec  *recorder
	next slog.Handler
}

func (h teeHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return taskHandler{teeHandler{h.rec, h.next.WithAttrs(as)}, attrValue(as, "task_arn")}
}

func (h teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{h.rec, h.next.WithGroup(name)}
}

func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	return taskHandler{h, ""}.Handle(ctx, r)
}

// taskHandler is a teeHandler that knows the task its logger is about.
type taskHandler struct {
	teeHandler
	arn string
}

func (h taskHandler) WithAttrs(as []slog.Attr) slog.Handler {
	arn := h.arn
	if a := attrValue(as, "task_arn"); a != "" {
		arn = a
	}
	return taskHandler{teeHandler{h.rec, h.next.WithAttrs(as)}, arn}
}

func (h taskHandler) Handle(ctx context.Context, r slog.Record) error {
	arn, to := h.arn, ""
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "task_arn":
			arn = a.Value.String()
		case "to":
			to = a.Value.String()
		}
		return true
	})
	if arn != "" {
		switch {
		case r.Message == "new task":
			h.rec.mark(arn, markNew, r.Time)
		case r.Message == "task transition" && to == "PENDING":
			h.rec.mark(arn, markPending, r.Time)
		case r.Message == "task transition" && to == "RUNNING":
			h.rec.mark(arn, markRunning, r.Time)
		case r.Message == "created container":
			h.rec.mark(arn, markCreated, r.Time)
		case r.Message == "started container":
			h.rec.mark(arn, markStarted, r.Time)
		}
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func attrValue(as []slog.Attr, key string) string {
	for _, a := range as {
		if a.Key == key {
			return a.Value.String()
		}
	}
	return ""
}

func printBreakdown(ms []marks) {
	fmt.Println("| milestone | step | step p50 | since call p50 | since call p99 |")
	fmt.Println("|---|---|---:|---:|---:|")
	for i, name := range markOrder[1:] {
		prev := markOrder[i]
		var step, since []time.Duration
		for _, m := range ms {
			t, ok := m[name]
			if !ok {
				continue
			}
			since = append(since, t.Sub(m[markCall]))
			if p, ok := m[prev]; ok {
				step = append(step, t.Sub(p))
			}
		}
		if len(since) == 0 {
			fmt.Printf("| %s | %s | - | - | - |\n", name, markSteps[name])
			continue
		}
		slices.Sort(step)
		slices.Sort(since)
		fmt.Printf("| %s | %s | %s | %s | %s |\n", name, markSteps[name], round(percentile(step, 0.50)), round(percentile(since, 0.50)), round(percentile(since, 0.99)))
	}
}

// writeTrace writes the milestones of every Berth task as CSV.
func writeTrace(path string, levels []int, results [][]result) error {
	var sb strings.Builder
	sb.WriteString("concurrency,task")
	for _, name := range markOrder[1:] {
		sb.WriteString("," + strconv.Quote(name))
	}
	sb.WriteString("\n")
	for i, res := range results {
		for j, m := range res[len(res)-1].marks {
			fmt.Fprintf(&sb, "%d,%d", levels[i], j)
			for _, name := range markOrder[1:] {
				sb.WriteString(",")
				if t, ok := m[name]; ok {
					fmt.Fprintf(&sb, "%.3f", float64(t.Sub(m[markCall]))/float64(time.Millisecond))
				}
			}
			sb.WriteString("\n")
		}
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}
