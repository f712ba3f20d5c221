// Package fake is an in-memory runtime.Runtime for unit tests of the code
// that drives containers (the agent's task runner). Nothing runs: containers
// are records that move through the engine's states, and the test scripts
// what the engine would do on its own.
//
//	          Create            Start               Exit / OOM / Stop
//	(none) ----------> created -------> running --------------------> exited
//	                                       ^                             |
//	                                       +------------ Start ----------+
//	  Remove from any state: the record is gone (a running one is killed).
//
// The test drives what a real engine decides by itself: Exit makes a
// container exit with a code, OOM makes the kernel kill it, SetHealth changes
// its health status, AppendLog writes to its output. Each transition
// publishes the events a Docker Engine would (start; kill, die, stop;
// oom; health_status; destroy) to Events subscribers.
//
// Faults are injected per method (FailNext: the next call fails) or per
// method and target (Fail, FailPull: every call on that image, container or
// volume fails until cleared). HoldPull makes pulls of an image block until
// the test releases them, with no clock involved. Every call is recorded
// (Calls) for assertions. Host ports asked as 0 are assigned from a counter,
// so a test knows which port a container gets.
//
// A Runtime is safe for concurrent use.
package fake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

// Method names a runtime.Runtime method, for fault injection and call records.
type Method string

// The methods of runtime.Runtime.
const (
	MethodPull         Method = "Pull"
	MethodImagePresent Method = "ImagePresent"
	MethodCreate       Method = "Create"
	MethodStart        Method = "Start"
	MethodStop         Method = "Stop"
	MethodRemove       Method = "Remove"
	MethodInspect      Method = "Inspect"
	MethodList         Method = "List"
	MethodStats        Method = "Stats"
	MethodLogs         Method = "Logs"
	MethodEvents       Method = "Events"
	MethodCreateVolume Method = "CreateVolume"
	MethodRemoveVolume Method = "RemoveVolume"
	MethodInfo         Method = "Info"
)

// Call records one call made to the Runtime.
type Call struct {
	Method Method
	// Target is what the call is about: the image for Pull and ImagePresent,
	// the container name for Create, the container id or name as given for
	// the other container methods, the volume name for the volume methods;
	// empty for List, Events and Info.
	Target string
	// Spec is the spec given to Create.
	Spec runtime.ContainerSpec
	// Labels are the labels given to List, Events and CreateVolume.
	Labels map[string]string
	// Timeout is the timeout given to Stop.
	Timeout time.Duration
	// Auth is the auth given to Pull.
	Auth *runtime.RegistryAuth
	// Err is what the call returned (for Events, the error sent at once, if any).
	Err error
}

// Options configures a Runtime. The zero value is usable.
type Options struct {
	// Now is the clock for container and event times; nil means time.Now.
	Now func() time.Time
	// Images are present from the start.
	Images []string
	// FirstHostPort is the first host port given to a binding that asks for
	// port 0; the next ones follow in order, never reused. 0 means 32768.
	FirstHostPort uint16
	// Host is what Info answers; the zero value means a 4-CPU, 8 GiB
	// linux/amd64 host.
	Host runtime.HostInfo
}

// Validate fills defaults.
func (o *Options) Validate() error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FirstHostPort == 0 {
		o.FirstHostPort = 32768
	}
	if o.Host == (runtime.HostInfo{}) {
		o.Host = runtime.HostInfo{CPUs: 4, MemoryBytes: 8 << 30, EngineVersion: "fake", OS: "linux", Arch: "amd64", Hostname: "fake-host"}
	}
	return nil
}

// Runtime is the in-memory runtime. Create it with New.
type Runtime struct {
	now func() time.Time
	// host is immutable after New.
	host runtime.HostInfo

	mu         sync.Mutex
	images     map[string]bool
	containers map[string]*container // by id
	names      map[string]string     // name -> id
	volumes    map[string]Volume
	seq        int // containers created so far
	nextPort   uint16
	calls      []Call
	failNext   map[Method][]error
	fail       map[failKey]error
	pullGates  map[string]*Gate
	subs       map[*subscriber]struct{}
}

var _ runtime.Runtime = (*Runtime)(nil)

// failKey is a method and its target.
type failKey struct {
	method Method
	target string
}

// Volume is a volume the Runtime holds.
type Volume struct {
	Name, Driver    string
	Options, Labels map[string]string
}

// New returns an empty Runtime holding opts.Images.
func New(opts Options) *Runtime {
	opts.Validate()
	r := &Runtime{
		now:        opts.Now,
		host:       opts.Host,
		images:     map[string]bool{},
		containers: map[string]*container{},
		names:      map[string]string{},
		volumes:    map[string]Volume{},
		nextPort:   opts.FirstHostPort,
		failNext:   map[Method][]error{},
		fail:       map[failKey]error{},
		pullGates:  map[string]*Gate{},
		subs:       map[*subscriber]struct{}{},
	}
	for _, img := range opts.Images {
		r.images[img] = true
	}
	return r
}

// AddImage makes images present, as if pulled.
func (r *Runtime) AddImage(images ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, img := range images {
		r.images[img] = true
	}
}

// RemoveImage makes an image absent.
func (r *Runtime) RemoveImage(image string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.images, image)
}

// FailNext makes the next call of m fail with err, before it has any
// effect. Several FailNext calls queue several failures, used in order.
func (r *Runtime) FailNext(m Method, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failNext[m] = append(r.failNext[m], err)
}

// Fail makes every call of m on target fail with err, before it has any
// effect, until Fail is called again with a nil err. target is an image
// (Pull, ImagePresent, Create: the spec's image), a container id or name
// (the container methods; Create: the spec's name) or a volume name.
func (r *Runtime) Fail(m Method, target string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.fail, failKey{m, target})
		return
	}
	r.fail[failKey{m, target}] = err
}

// FailPull makes every Pull of image fail with err (nil clears it).
func (r *Runtime) FailPull(image string, err error) {
	r.Fail(MethodPull, image, err)
}

// Calls returns every call made so far, in order.
func (r *Runtime) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// CallsTo returns the calls made to m so far, in order.
func (r *Runtime) CallsTo(m Method) []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Call
	for _, c := range r.calls {
		if c.Method == m {
			out = append(out, c)
		}
	}
	return out
}

// Volumes returns the volumes, sorted by name.
func (r *Runtime) Volumes() []Volume {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Collect(maps.Values(r.volumes))
	slices.SortFunc(out, func(a, b Volume) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// begin records a call and returns the injected failure for it, if any.
// targets are the names the call's object goes by (id and name for a
// container). The caller holds r.mu.
func (r *Runtime) begin(ctx context.Context, c Call, targets ...string) (int, error) {
	r.calls = append(r.calls, c)
	i := len(r.calls) - 1
	if err := ctx.Err(); err != nil {
		return i, r.end(i, fmt.Errorf("%s: %w", c.Method, err))
	}
	if q := r.failNext[c.Method]; len(q) > 0 {
		r.failNext[c.Method] = q[1:]
		return i, r.end(i, q[0])
	}
	for _, t := range targets {
		if err, ok := r.fail[failKey{c.Method, t}]; ok {
			return i, r.end(i, err)
		}
	}
	return i, nil
}

// end records the result of call i and returns it. The caller holds r.mu.
func (r *Runtime) end(i int, err error) error {
	r.calls[i].Err = err
	return err
}

// Info describes the fake host (Options.Host).
func (r *Runtime) Info(ctx context.Context) (runtime.HostInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.begin(ctx, Call{Method: MethodInfo}); err != nil {
		return runtime.HostInfo{}, err
	}
	return r.host, nil
}

// ImagePresent reports whether the image was added, pulled or given in
// Options.Images.
func (r *Runtime) ImagePresent(ctx context.Context, image string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.begin(ctx, Call{Method: MethodImagePresent, Target: image}, image); err != nil {
		return false, err
	}
	return r.images[image], nil
}

// Gate holds pulls of one image until the test releases it.
type Gate struct {
	entered     chan struct{}
	enteredOnce sync.Once
	release     chan struct{}
	releaseOnce sync.Once
}

// Entered is closed once a Pull waits at the gate.
func (g *Gate) Entered() <-chan struct{} { return g.entered }

// Release lets every waiting and future Pull through. It may be called
// more than once.
func (g *Gate) Release() { g.releaseOnce.Do(func() { close(g.release) }) }

// HoldPull makes Pull of image wait, before it has any effect, until the
// returned gate is released or the call's ctx ends (then Pull returns the
// context's error). Faults injected for the Pull apply after the gate.
func (r *Runtime) HoldPull(image string) *Gate {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := &Gate{entered: make(chan struct{}), release: make(chan struct{})}
	r.pullGates[image] = g
	return g
}

// Pull makes the image present, unless it is already, waiting first at the
// image's gate if HoldPull set one.
func (r *Runtime) Pull(ctx context.Context, image string, auth *runtime.RegistryAuth) error {
	r.mu.Lock()
	g := r.pullGates[image]
	r.mu.Unlock()
	if g != nil {
		g.enteredOnce.Do(func() { close(g.entered) })
		select {
		case <-g.release:
		case <-ctx.Done():
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	var authCopy *runtime.RegistryAuth
	if auth != nil {
		a := *auth
		authCopy = &a
	}
	if _, err := r.begin(ctx, Call{Method: MethodPull, Target: image, Auth: authCopy}, image); err != nil {
		return err
	}
	r.images[image] = true
	return nil
}

// CreateVolume records a named volume; creating one that exists keeps it.
func (r *Runtime) CreateVolume(ctx context.Context, name, driver string, opts, labels map[string]string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.begin(ctx, Call{Method: MethodCreateVolume, Target: name, Labels: maps.Clone(labels)}, name); err != nil {
		return err
	}
	if _, ok := r.volumes[name]; !ok {
		if driver == "" {
			driver = "local"
		}
		r.volumes[name] = Volume{Name: name, Driver: driver, Options: maps.Clone(opts), Labels: maps.Clone(labels)}
	}
	return nil
}

// RemoveVolume deletes a named volume; a missing one is not an error, one
// mounted by an existing container is refused with
// errdefs.ErrFailedPrecondition.
func (r *Runtime) RemoveVolume(ctx context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, err := r.begin(ctx, Call{Method: MethodRemoveVolume, Target: name}, name)
	if err != nil {
		return err
	}
	for _, c := range r.containers {
		for _, m := range c.spec.Mounts {
			if m.Type != "bind" && m.Source == name {
				return r.end(i, fmt.Errorf("remove volume %q: used by container %s: %w", name, c.id, errdefs.ErrFailedPrecondition))
			}
		}
	}
	delete(r.volumes, name)
	return nil
}

// containerID returns the deterministic engine-style id of the nth container.
func containerID(n int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "fake-container-%d", n))
	return hex.EncodeToString(sum[:])
}

// defaultStats is the stats document of a container with no SetStats.
func defaultStats(read time.Time, memLimit int64, running bool) json.RawMessage {
	usage := 0
	if running {
		usage = 4 << 20
	}
	b, _ := json.Marshal(map[string]any{
		"read":         read.UTC().Format(time.RFC3339Nano),
		"memory_stats": map[string]any{"usage": usage, "limit": memLimit},
		"cpu_stats":    map[string]any{"cpu_usage": map[string]any{"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": 1},
		"precpu_stats": map[string]any{"cpu_usage": map[string]any{"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": 1},
	})
	return b
}
