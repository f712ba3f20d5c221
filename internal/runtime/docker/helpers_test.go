package docker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
	"github.com/berthdev/berth/internal/runtime/docker"
	"github.com/berthdev/berth/internal/testimage"
)

// testLabel marks every object these tests create.
const testLabel = "dev.berth.test"

// harness is one test's view of the engine: a runtime, the test image and
// a label unique to the test, so that List and Events see only its own
// containers.
type harness struct {
	t     *testing.T
	rt    *docker.Runtime
	image string
	id    string // unique per test
	ctx   context.Context
}

// newHarness returns a harness for t, skipping t when Docker is unreachable
// outside CI. The test runs in parallel with the package's other tests.
func newHarness(t *testing.T) *harness {
	t.Helper()
	image := testimage.Require(t)
	t.Parallel()
	rt, err := docker.New(docker.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	b := make([]byte, 4)
	rand.Read(b)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return &harness{t: t, rt: rt, image: image, id: hex.EncodeToString(b), ctx: ctx}
}

// sub returns the harness for subtest t of the harness's test: objects it
// creates are cleaned up, and failures reported, on t. The subtest runs in
// parallel with its siblings.
func (h *harness) sub(t *testing.T) *harness {
	t.Parallel()
	c := *h
	c.t = t
	return &c
}

// labels are the labels of this test's containers.
func (h *harness) labels() map[string]string {
	return map[string]string{testLabel: h.id}
}

// name returns a container or volume name unique to this test.
func (h *harness) name(suffix string) string {
	clean := regexp.MustCompile(`[^a-zA-Z0-9_.-]+`).ReplaceAllString(h.t.Name(), "-")
	if len(clean) > 40 {
		clean = clean[:40]
	}
	return fmt.Sprintf("berth-test-%s-%s-%s", h.id, strings.ToLower(clean), suffix)
}

// spec returns a spec for the test image running the test application with
// args, named after the test and labelled with its label.
func (h *harness) spec(suffix string, args ...string) runtime.ContainerSpec {
	return runtime.ContainerSpec{
		Name:   h.name(suffix),
		Image:  h.image,
		Cmd:    args,
		Labels: h.labels(),
	}
}

// create creates a container and removes it when the test ends.
func (h *harness) create(spec runtime.ContainerSpec) string {
	h.t.Helper()
	id, err := h.rt.Create(h.ctx, spec)
	if err != nil {
		h.t.Fatalf("Create %s: %v", spec.Name, err)
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := h.rt.Remove(ctx, id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			h.t.Errorf("cleanup: %v", err)
		}
	})
	return id
}

// run creates and starts a container.
func (h *harness) run(spec runtime.ContainerSpec) string {
	h.t.Helper()
	id := h.create(spec)
	if err := h.rt.Start(h.ctx, id); err != nil {
		h.t.Fatalf("Start %s: %v", spec.Name, err)
	}
	return id
}

// volume creates a named volume and removes it when the test ends (after the
// containers created later, which use it).
func (h *harness) volume(suffix string) string {
	h.t.Helper()
	name := h.name(suffix)
	if err := h.rt.CreateVolume(h.ctx, name, "", nil, h.labels()); err != nil {
		h.t.Fatalf("CreateVolume: %v", err)
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := h.rt.RemoveVolume(ctx, name); err != nil {
			h.t.Errorf("cleanup: %v", err)
		}
	})
	return name
}

// waitFor polls cond until it holds or the deadline passes. Polling with a
// deadline, rather than sleeping for a fixed time, keeps the tests fast and
// deterministic.
func (h *harness) waitFor(what string, timeout time.Duration, cond func() (bool, error)) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			h.t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		select {
		case <-tick.C:
		case <-h.ctx.Done():
			h.t.Fatalf("waiting for %s: %v", what, h.ctx.Err())
		}
	}
}

// waitState polls Inspect until pred holds and returns that state.
func (h *harness) waitState(id, what string, timeout time.Duration, pred func(runtime.ContainerState) bool) runtime.ContainerState {
	h.t.Helper()
	var st runtime.ContainerState
	h.waitFor(what, timeout, func() (bool, error) {
		var err error
		st, err = h.rt.Inspect(h.ctx, id)
		return err == nil && pred(st), err
	})
	return st
}

// waitExit waits for a container to exit and returns its final state.
func (h *harness) waitExit(id string) runtime.ContainerState {
	h.t.Helper()
	return h.waitState(id, "container "+id[:12]+" to exit", 20*time.Second, func(s runtime.ContainerState) bool {
		return s.Status == "exited" || s.Status == "dead"
	})
}

// logs returns everything the container has written so far.
func (h *harness) logs(id string) string {
	h.t.Helper()
	rc, err := h.rt.Logs(h.ctx, id, false)
	if err != nil {
		h.t.Fatalf("Logs: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		h.t.Fatalf("Logs: %v", err)
	}
	return string(b)
}

// waitLog waits until the container's output contains text: the test
// application prints a line when it is ready.
func (h *harness) waitLog(id, text string) {
	h.t.Helper()
	h.waitFor(fmt.Sprintf("%q in the logs of %s", text, id[:12]), 20*time.Second, func() (bool, error) {
		return strings.Contains(h.logs(id), text), nil
	})
}

// runToExit runs a container to completion and returns its final state and
// output.
func (h *harness) runToExit(spec runtime.ContainerSpec) (runtime.ContainerState, string) {
	h.t.Helper()
	id := h.run(spec)
	st := h.waitExit(id)
	return st, h.logs(id)
}
