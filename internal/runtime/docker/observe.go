package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

// Stats returns one sample of the engine's stats for a container, in the
// Docker stats JSON format. It is the engine's one-shot sample, answered at
// once: precpu_stats is empty (zero), so CPU utilisation needs two calls
// (the engine's own two-sample answer takes two seconds). A container that
// is not running gives a sample of zeros.
func (r *Runtime) Stats(ctx context.Context, id string) (json.RawMessage, error) {
	res, err := r.c.ContainerStats(ctx, id, client.ContainerStatsOptions{Stream: false})
	if err != nil {
		return nil, engineError(ctx, fmt.Sprintf("stats of container %q", id), err, errdefs.ErrFailedPrecondition)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, engineError(ctx, fmt.Sprintf("stats of container %q", id), err, errdefs.ErrFailedPrecondition)
	}
	if !json.Valid(body) {
		return nil, fmt.Errorf("stats of container %q: engine answered invalid JSON", id)
	}
	return json.RawMessage(body), nil
}

// Logs streams a container's stdout and stderr, demultiplexed into one
// stream in the order the engine delivers them. With follow, the stream
// stays open until the container stops, ctx ends or the reader is closed.
func (r *Runtime) Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	raw, err := r.c.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow})
	if err != nil {
		return nil, engineError(ctx, fmt.Sprintf("logs of container %q", id), err, errdefs.ErrFailedPrecondition)
	}
	// Containers never get a TTY, so the engine always multiplexes the two
	// streams with stdcopy frame headers.
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, raw)
		raw.Close()
		pw.CloseWithError(err)
	}()
	return &logReader{PipeReader: pr, raw: raw}, nil
}

// logReader closes the engine's stream along with the demultiplexed pipe,
// which unblocks the copying goroutine.
type logReader struct {
	*io.PipeReader
	raw io.Closer
}

func (l *logReader) Close() error {
	l.raw.Close()
	return l.PipeReader.Close()
}

// eventActions are the container actions Events reports.
var eventActions = []string{"start", "die", "oom", "stop", "kill", "destroy", "health_status"}

// eventAttributes are the attributes the engine adds to a container's
// labels in an event; they are not labels and are dropped.
var eventAttributes = []string{"image", "name", "exitCode", "signal"}

// Events streams start, die, oom, stop, kill, destroy and health_status
// events for containers carrying all the given labels, until ctx ends. Events
// that happen after Events returns are not missed (provided the engine's
// clock agrees with this host's). When ctx ends both channels close without
// an error; an engine failure is sent on the error channel first.
//
// An event's Labels are the container's labels (which include its image's
// labels). A die event carries the exit code; for a container killed by the
// OOM killer the oom event may come before or after its die event, and is
// more reliable than Inspect's OOMKilled (see Inspect).
func (r *Runtime) Events(ctx context.Context, labels map[string]string) (<-chan runtime.Event, <-chan error) {
	f := labelFilters(labels)
	f.Add("type", string(events.ContainerEventType))
	f.Add("event", eventActions...)
	// The engine flushes the response headers before it subscribes, so an
	// event right after the call could slip between the two. Asking for
	// events since now makes the engine replay those from its buffer.
	since := time.Now().UTC().Format(time.RFC3339Nano)
	res := r.c.Events(ctx, client.EventsListOptions{Since: since, Filters: f})

	out := make(chan runtime.Event)
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		defer close(out)
		for {
			select {
			case m := <-res.Messages:
				ev, ok := convertEvent(m)
				if !ok {
					continue
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			case err := <-res.Err:
				if ctx.Err() == nil && err != nil {
					errc <- engineError(ctx, "container events", err, errdefs.ErrFailedPrecondition)
				}
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, errc
}

// convertEvent turns an engine event into a runtime.Event.
func convertEvent(m events.Message) (runtime.Event, bool) {
	if m.Type != events.ContainerEventType {
		return runtime.Event{}, false
	}
	action, health, _ := strings.Cut(string(m.Action), ":")
	ev := runtime.Event{
		ContainerID: m.Actor.ID,
		Action:      action,
		Health:      strings.TrimSpace(health),
		Labels:      maps.Clone(m.Actor.Attributes),
		Time:        time.Unix(0, m.TimeNano),
	}
	if m.TimeNano == 0 {
		ev.Time = time.Unix(m.Time, 0)
	}
	if code, ok := m.Actor.Attributes["exitCode"]; ok {
		ev.ExitCode, _ = strconv.Atoi(code)
	}
	for _, k := range eventAttributes {
		delete(ev.Labels, k)
	}
	return ev, true
}
