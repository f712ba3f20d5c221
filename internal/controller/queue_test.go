package controller

import (
	"context"
	"testing"
	"time"
)

func TestWorkQueueOrderAndDedup(t *testing.T) {
	var q workQueue
	q.init()
	now := time.Now()
	q.add("c/late", now.Add(-time.Second))
	q.add("c/early", now.Add(-3*time.Second))
	q.add("c/late", now.Add(-5*time.Second)) // moved earlier: runs first, once
	q.add("c/early", now)                    // later than queued: ignored
	if q.len() != 2 {
		t.Fatalf("len = %d, want 2", q.len())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, want := range []string{"c/late", "c/early"} {
		if got, ok := q.next(ctx); !ok || got != want {
			t.Fatalf("next = %q, %v; want %q", got, ok, want)
		}
	}
	// Nothing left: next waits for a key that comes due.
	q.add("c/soon", time.Now().Add(50*time.Millisecond))
	start := time.Now()
	if got, ok := q.next(ctx); !ok || got != "c/soon" || time.Since(start) < 40*time.Millisecond {
		t.Fatalf("next = %q after %v, want c/soon once due", got, time.Since(start))
	}
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if _, ok := q.next(short); ok {
		t.Fatal("an empty queue returned a key")
	}
}
