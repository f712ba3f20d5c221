package agent

import (
	"sync"
	"time"
)

// testClock is the real clock shifted by an offset that the test advances;
// timers fire at their deadline on either account, so a test can jump over
// a long delay (startTimeout, CleanupDelay) without waiting for it.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
	timers map[*testTimer]bool
}

func newTestClock(offset time.Duration) *testClock {
	return &testClock{offset: offset, timers: map[*testTimer]bool{}}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) NewTimer(d time.Duration) Timer {
	t := &testTimer{clock: c, c: make(chan time.Time, 1), d: d}
	c.mu.Lock()
	t.deadline = time.Now().Add(c.offset + d)
	c.timers[t] = true
	c.mu.Unlock()
	t.real = time.AfterFunc(d, t.fire)
	return t
}

// Advance moves the clock forward, firing the timers now due.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	now := time.Now().Add(c.offset)
	var due []*testTimer
	for t := range c.timers {
		if !now.Before(t.deadline) {
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		t.fire()
	}
}

// pending reports whether a timer set for between lo and hi waits.
func (c *testClock) pending(lo, hi time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for t := range c.timers {
		if t.d >= lo && t.d <= hi {
			return true
		}
	}
	return false
}

type testTimer struct {
	clock    *testClock
	c        chan time.Time
	d        time.Duration
	deadline time.Time
	real     *time.Timer
	once     sync.Once
}

func (t *testTimer) C() <-chan time.Time { return t.c }

func (t *testTimer) fire() {
	t.once.Do(func() {
		t.clock.mu.Lock()
		delete(t.clock.timers, t)
		t.clock.mu.Unlock()
		t.c <- t.deadline
	})
}

func (t *testTimer) Stop() bool {
	t.real.Stop()
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	active := t.clock.timers[t]
	delete(t.clock.timers, t)
	return active
}
