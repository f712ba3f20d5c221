package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/berthdev/berth/internal/runtime"
)

// subscriber is one Events stream. Events are queued without bound, so
// publishing never blocks on a slow reader.
type subscriber struct {
	labels map[string]string
	mu     sync.Mutex
	queue  []runtime.Event
	err    error // ends the stream once the queue is drained
	wake   chan struct{}
}

// push queues an event or, with a non-nil err, the stream's end.
func (s *subscriber) push(ev *runtime.Event, err error) {
	s.mu.Lock()
	if ev != nil {
		s.queue = append(s.queue, *ev)
	}
	if err != nil && s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// publish sends a container event to the subscribers whose labels match;
// edit fills action-specific fields. The caller holds r.mu, which orders
// events the same for every subscriber.
func (r *Runtime) publish(c *container, action string, edit func(*runtime.Event)) {
	ev := runtime.Event{ContainerID: c.id, Action: action, Labels: c.spec.Labels, Time: r.now()}
	if edit != nil {
		edit(&ev)
	}
	for s := range r.subs {
		if hasLabels(c.spec.Labels, s.labels) {
			e := ev
			e.Labels = maps.Clone(ev.Labels)
			s.push(&e, nil)
		}
	}
}

// Events streams the events of containers carrying all the given labels
// until ctx ends, then closes both channels without an error. BreakEvents
// ends the streams with an error instead; an injected fault is sent on the
// error channel at once.
func (r *Runtime) Events(ctx context.Context, labels map[string]string) (<-chan runtime.Event, <-chan error) {
	out := make(chan runtime.Event)
	errc := make(chan error, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.begin(ctx, Call{Method: MethodEvents, Labels: maps.Clone(labels)}); err != nil {
		errc <- err
		close(errc)
		close(out)
		return out, errc
	}
	s := &subscriber{labels: maps.Clone(labels), wake: make(chan struct{}, 1)}
	r.subs[s] = struct{}{}
	go func() {
		defer close(errc)
		defer close(out)
		defer func() {
			r.mu.Lock()
			delete(r.subs, s)
			r.mu.Unlock()
		}()
		for {
			s.mu.Lock()
			queue, err := s.queue, s.err
			s.queue = nil
			s.mu.Unlock()
			for _, ev := range queue {
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
			if len(queue) > 0 {
				continue
			}
			if err != nil {
				errc <- err
				return
			}
			select {
			case <-s.wake:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, errc
}

// BreakEvents ends every open Events stream with err, after the events
// already queued, as when the engine's connection drops.
func (r *Runtime) BreakEvents(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.subs {
		s.push(nil, err)
	}
}

// Subscribers returns the number of open Events streams, so that a test
// can wait until the code under test listens before acting.
func (r *Runtime) Subscribers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.subs)
}

// Stats returns the document set with SetStats, or a default one with
// memory_stats (limit: the container's memory limit or the host's memory).
func (r *Runtime) Stats(ctx context.Context, id string) (json.RawMessage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, lookupErr := r.lookup(id)
	i, err := r.begin(ctx, Call{Method: MethodStats, Target: id}, targets(id, c)...)
	if err != nil {
		return nil, err
	}
	if lookupErr != nil {
		return nil, r.end(i, fmt.Errorf("stats: %w", lookupErr))
	}
	if c.stats != nil {
		return slices.Clone(c.stats), nil
	}
	limit := c.spec.MemoryLimit
	if limit == 0 {
		limit = r.host.MemoryBytes
	}
	return defaultStats(r.now(), limit, c.state.Running), nil
}

// Logs returns the container's output so far (see AppendLog). With follow,
// the stream then waits for more until the container stops or is removed,
// ctx ends or the reader is closed.
func (r *Runtime) Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, lookupErr := r.lookup(id)
	i, err := r.begin(ctx, Call{Method: MethodLogs, Target: id}, targets(id, c)...)
	if err != nil {
		return nil, err
	}
	if lookupErr != nil {
		return nil, r.end(i, fmt.Errorf("logs: %w", lookupErr))
	}
	pr, pw := io.Pipe()
	lr := &logReader{PipeReader: pr, done: make(chan struct{})}
	go func() {
		sent := 0
		for {
			r.mu.Lock()
			chunk := slices.Clone(c.logs[sent:])
			more := follow && c.state.Running && !c.removed
			changed := c.changed
			r.mu.Unlock()
			if len(chunk) > 0 {
				if _, err := pw.Write(chunk); err != nil {
					return // the reader closed
				}
				sent += len(chunk)
				continue
			}
			if !more {
				pw.Close()
				return
			}
			select {
			case <-changed:
			case <-lr.done:
				return
			case <-ctx.Done():
				pw.CloseWithError(ctx.Err())
				return
			}
		}
	}()
	return lr, nil
}

// logReader stops the goroutine feeding it when closed.
type logReader struct {
	*io.PipeReader
	once sync.Once
	done chan struct{}
}

func (l *logReader) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.PipeReader.Close()
}
