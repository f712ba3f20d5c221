package agent

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/runtime"
	"github.com/berthdev/berth/internal/runtime/fake"
)

// berthHost is the registry host the fake control plane announces.
const berthHost = "berth.test:4566"

func withImage(image string) func(*ecstypes.ContainerDefinition) {
	return func(c *ecstypes.ContainerDefinition) { c.Image = image }
}

// pullAuths returns the auth of every Pull of image, in order ("" for none,
// else user:password@server).
func pullAuths(rt *fake.Runtime, image string) []string {
	var out []string
	for _, c := range rt.CallsTo(fake.MethodPull) {
		if c.Target == image {
			out = append(out, authString(c.Auth))
		}
	}
	return out
}

func authString(a *runtime.RegistryAuth) string {
	if a == nil {
		return ""
	}
	return a.Username + ":" + a.Password + "@" + a.ServerAddress
}

func (cp *fakeControlPlane) credentialCalls() int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.credCalls
}

// runTask runs a task of one container on image and waits for status.
func runTask(cp *fakeControlPlane, image, status string) agentapi.TaskReport {
	cp.t.Helper()
	dt := desiredTask(container("app", withImage(image)))
	cp.addTask(dt)
	return cp.waitStatus(dt.TaskArn, status)
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBerthRegistryCredentials: images on the control plane's registry
// (its announced host, and the endpoint's host) are pulled with the login
// it hands out, fetched once for several pulls; other images get none; no
// password reaches the logs.
func TestBerthRegistryCredentials(t *testing.T) {
	cp := newFakeControlPlane(t)
	cp.set(func(cp *fakeControlPlane) { cp.registries = []string{berthHost} })
	endpointHost := strings.TrimPrefix(cp.srv.URL, "http://")
	rt := fake.New(fake.Options{})
	var logs lockedBuffer
	startAgent(t, cp, rt, t.TempDir(), func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	images := map[string]string{
		berthHost + "/team/app:1":    "AWS:tok-1@" + berthHost,
		endpointHost + "/team/app:2": "AWS:tok-1@" + endpointHost,
		"other.example.com/app:1":    "",
		"localhost:5000/app:1":       "",
		"nginx:1.27":                 "",
	}
	var defs []ecstypes.ContainerDefinition
	for image := range images {
		defs = append(defs, container(strings.NewReplacer("/", "-", ":", "-", ".", "-").Replace(image), withImage(image)))
	}
	dt := desiredTask(defs...)
	cp.addTask(dt)
	cp.waitStatus(dt.TaskArn, statusRunning)
	for image, want := range images {
		if got := pullAuths(rt, image); !slices.Equal(got, []string{want}) {
			t.Errorf("pulls of %s with %q, want [%q]", image, got, want)
		}
	}
	// A later pull uses the cached login.
	runTask(cp, berthHost+"/team/app:3", statusRunning)
	if got := pullAuths(rt, berthHost+"/team/app:3"); !slices.Equal(got, []string{"AWS:tok-1@" + berthHost}) {
		t.Errorf("later pull with %q", got)
	}
	if n := cp.credentialCalls(); n != 1 {
		t.Errorf("%d credential calls, want 1 (cached)", n)
	}
	if strings.Contains(logs.String(), "tok-1") {
		t.Errorf("a registry password reached the logs")
	}
}

// TestRegistryAuthFileTakesPrecedence: the user's credentials win for the
// hosts they name, even the control plane's.
func TestRegistryAuthFileTakesPrecedence(t *testing.T) {
	cp := newFakeControlPlane(t)
	cp.set(func(cp *fakeControlPlane) { cp.registries = []string{berthHost} })
	rt := fake.New(fake.Options{})
	startAgent(t, cp, rt, t.TempDir(), func(c *Config) {
		c.RegistryAuth = func(image string) *runtime.RegistryAuth {
			if imageRegistry(image) == berthHost {
				return &runtime.RegistryAuth{Username: "me", Password: "mine", ServerAddress: berthHost}
			}
			return nil
		}
	})
	runTask(cp, berthHost+"/team/app:1", statusRunning)
	if got := pullAuths(rt, berthHost+"/team/app:1"); !slices.Equal(got, []string{"me:mine@" + berthHost}) {
		t.Errorf("pulled with %q", got)
	}
	if n := cp.credentialCalls(); n != 0 {
		t.Errorf("%d credential calls, want none", n)
	}
}

// TestBerthRegistryCredentialsRenewed: cached credentials are used until
// ten minutes before they expire, then fetched again.
func TestBerthRegistryCredentialsRenewed(t *testing.T) {
	cp := newFakeControlPlane(t)
	cp.set(func(cp *fakeControlPlane) { cp.registries, cp.credTTL = []string{berthHost}, time.Hour })
	rt := fake.New(fake.Options{})
	clock := newTestClock(0)
	startAgent(t, cp, rt, t.TempDir(), func(c *Config) { c.Clock = clock })
	for i, step := range []struct {
		advance time.Duration
		want    string
	}{
		{0, "tok-1"},
		{49 * time.Minute, "tok-1"}, // 11 minutes left: still cached
		{2 * time.Minute, "tok-2"},  // 9 minutes left: renewed
	} {
		clock.Advance(step.advance)
		image := berthHost + "/team/app:" + string(rune('1'+i))
		runTask(cp, image, statusRunning)
		if got := pullAuths(rt, image); !slices.Equal(got, []string{"AWS:" + step.want + "@" + berthHost}) {
			t.Errorf("step %d: pulled with %q, want %s", i, got, step.want)
		}
	}
}

// TestBerthRegistryRefusedPullRetried: a pull from the control plane's
// registry that is refused is retried once with fresh credentials; a
// refused pull from another registry is not.
func TestBerthRegistryRefusedPullRetried(t *testing.T) {
	cp := newFakeControlPlane(t)
	cp.set(func(cp *fakeControlPlane) { cp.registries = []string{berthHost} })
	rt := fake.New(fake.Options{})
	startAgent(t, cp, rt, t.TempDir())
	refused := errors.New(`pull image: Head "http://berth.test:4566/v2/team/app/manifests/1": unauthorized: authentication required`)

	rt.FailNext(fake.MethodPull, refused)
	runTask(cp, berthHost+"/team/app:1", statusRunning)
	if got := pullAuths(rt, berthHost+"/team/app:1"); !slices.Equal(got, []string{"AWS:tok-1@" + berthHost, "AWS:tok-2@" + berthHost}) {
		t.Errorf("pulls with %q, want tok-1 then tok-2", got)
	}

	// Refused twice: the task fails after one retry.
	rt.FailNext(fake.MethodPull, refused)
	rt.FailNext(fake.MethodPull, refused)
	tr := runTask(cp, berthHost+"/team/app:2", statusStopped)
	if n := len(pullAuths(rt, berthHost+"/team/app:2")); n != 2 || !strings.HasPrefix(tr.StoppedReason, "CannotPullContainerError: ") {
		t.Errorf("%d pulls, stopped %q", n, tr.StoppedReason)
	}

	calls := cp.credentialCalls()
	rt.FailNext(fake.MethodPull, errors.New("denied: requested access to the resource is denied"))
	runTask(cp, "other.example.com/app:1", statusStopped)
	if n := len(pullAuths(rt, "other.example.com/app:1")); n != 1 || cp.credentialCalls() != calls {
		t.Errorf("another registry's refusal: %d pulls, %d credential calls (was %d)", n, cp.credentialCalls(), calls)
	}
}

// TestBerthRegistryCredentialsUnavailable: when the control plane has no
// credentials to give (no registry, an older control plane without the
// call, a failure), images are pulled without any and tasks still run.
func TestBerthRegistryCredentialsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name       string
		registries []string
		status     int
		wantCalls  int // after two pulls
	}{
		{"no registry", nil, 0, 1}, // the endpoint's host is asked about, once
		{"older control plane", []string{berthHost}, http.StatusNotFound, 2},
		{"failure", []string{berthHost}, http.StatusInternalServerError, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := newFakeControlPlane(t)
			cp.set(func(cp *fakeControlPlane) { cp.registries, cp.credStatus = tc.registries, tc.status })
			rt := fake.New(fake.Options{})
			startAgent(t, cp, rt, t.TempDir())
			host := berthHost
			if tc.registries == nil {
				host = strings.TrimPrefix(cp.srv.URL, "http://")
			}
			for _, image := range []string{host + "/team/app:1", host + "/team/app:2"} {
				runTask(cp, image, statusRunning)
				if got := pullAuths(rt, image); !slices.Equal(got, []string{""}) {
					t.Errorf("%s pulled with %q, want no credentials", image, got)
				}
			}
			if n := cp.credentialCalls(); n != tc.wantCalls {
				t.Errorf("%d credential calls, want %d", n, tc.wantCalls)
			}
		})
	}
}

func TestEndpointHosts(t *testing.T) {
	for endpoint, want := range map[string][]string{
		"http://127.0.0.1:4566":        {"127.0.0.1:4566"},
		"http://Berth.Example:4566/":   {"berth.example:4566"},
		"https://berth.example":        {"berth.example"},
		"https://berth.example:443":    {"berth.example:443", "berth.example"},
		"http://[::1]:80":              {"[::1]:80", "[::1]"},
		"not a url":                    nil,
		"http://10.0.0.1:4566/prefix/": {"10.0.0.1:4566"},
	} {
		if got := endpointHosts(endpoint); !slices.Equal(got, want) {
			t.Errorf("endpointHosts(%q) = %q, want %q", endpoint, got, want)
		}
	}
}

func TestIsAuthError(t *testing.T) {
	for msg, want := range map[string]bool{
		`pull image "x": Error response from daemon: Head "https://h/v2/a/manifests/1": unauthorized: authentication required`: true,
		"pull access denied for h/a, repository does not exist or may require 'docker login'":                                  true,
		"Get https://h/v2/: no basic auth credentials":                                                                         true,
		"manifest for h/a:1 not found: manifest unknown":                                                                       false,
		"dial tcp: connection refused":                                                                                         false,
	} {
		if got := isAuthError(errors.New(msg)); got != want {
			t.Errorf("isAuthError(%q) = %v", msg, got)
		}
	}
}

func TestRegistryLoginHidesPassword(t *testing.T) {
	l := agentapi.RegistryLogin{Host: berthHost, Username: "AWS", Password: "s3cret"}
	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("login", "login", l)
	for _, s := range []string{l.String(), logs.String()} {
		if strings.Contains(s, "s3cret") || !strings.Contains(s, berthHost) {
			t.Errorf("%q", s)
		}
	}
}
