package agent

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel"
)

// fakeControlPlane is an in-process control plane serving the agent protocol's
// endpoints, with fault injection and a record of what it got.
// Like the real one, it applies a task report only if its Seq is newer
// than the last applied one, and stops listing a task once it applied a
// STOPPED report for it.
type fakeControlPlane struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	revision  int64
	tasks     []*agentapi.DesiredTask
	instances map[string]bool
	nextID    int
	status    string // instance status answered with the desired state
	heartbeat int

	registers []agentapi.RegisterRequest
	// polledAfter is the largest revision an agent polled after, which
	// proves it has applied the desired state of that revision.
	polledAfter int64
	reports     []agentapi.Report // every report received, failed ones included
	applied     map[string]agentapi.TaskReport
	history     map[string][]agentapi.TaskReport // applied task reports, in order
	seqs        map[string]uint64

	// The control plane's registry: registries are announced at
	// registration; registry-credentials mints a login for each, with
	// password tok-<n> for the n-th call, valid for credTTL.
	registries []string
	credTTL    time.Duration
	credCalls  int
	// credStatus, when set, is the status registry-credentials answers
	// instead (404: a control plane without the call).
	credStatus int

	// Faults.
	down        bool // every call answers 503
	failReports int  // so many next reports answer 500
}

func newFakeControlPlane(t *testing.T) *fakeControlPlane {
	cp := &fakeControlPlane{
		t:         t,
		changed:   make(chan struct{}),
		instances: map[string]bool{},
		status:    "ACTIVE",
		heartbeat: 30,
		applied:   map[string]agentapi.TaskReport{},
		history:   map[string][]agentapi.TaskReport{},
		seqs:      map[string]uint64{},
		credTTL:   time.Hour,
	}
	mux := http.NewServeMux()
	p := agentapi.PathPrefix
	mux.HandleFunc("POST "+p+"/register", cp.register)
	mux.HandleFunc("GET "+p+"/instances/{id}/desired", cp.desired)
	mux.HandleFunc("POST "+p+"/instances/{id}/report", cp.report)
	mux.HandleFunc("POST "+p+"/instances/{id}/registry-credentials", cp.registryCredentials)
	cp.srv = httptest.NewServer(mux)
	t.Cleanup(cp.srv.Close)
	return cp
}

// notifyLocked wakes pollers and waiters; cp.mu is held.
func (cp *fakeControlPlane) notifyLocked() {
	close(cp.changed)
	cp.changed = make(chan struct{})
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(agentapi.Error{Code: code, Message: msg})
}

func (cp *fakeControlPlane) register(w http.ResponseWriter, r *http.Request) {
	var req agentapi.RegisterRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, 400, "BadRequest", err.Error())
		return
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.down {
		fail(w, 503, "Unavailable", "down")
		return
	}
	if r.Header.Get("Authorization") != "Bearer join-token" {
		fail(w, 401, "Unauthorized", "bad token")
		return
	}
	cp.registers = append(cp.registers, req)
	id := req.InstanceID
	if id != "" && !cp.instances[id] {
		fail(w, 404, "UnknownInstance", "no instance "+id)
		return
	}
	if id == "" {
		cp.nextID++
		id = "i-" + strconv.Itoa(cp.nextID)
		cp.instances[id] = true
	}
	cp.notifyLocked()
	json.NewEncoder(w).Encode(agentapi.RegisterResponse{
		InstanceID:           id,
		ContainerInstanceArn: "arn:aws:ecs:us-east-1:000000000000:container-instance/" + req.Cluster + "/" + id,
		Cluster:              req.Cluster,
		HeartbeatSeconds:     cp.heartbeat,
		Registries:           cp.registries,
	})
}

func (cp *fakeControlPlane) registryCredentials(w http.ResponseWriter, r *http.Request) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	defer cp.notifyLocked()
	cp.credCalls++
	switch {
	case r.Header.Get("Authorization") != "Bearer join-token":
		fail(w, 401, "Unauthorized", "bad token")
		return
	case !cp.instances[r.PathValue("id")]:
		fail(w, 404, "UnknownInstance", "no instance")
		return
	case cp.credStatus != 0:
		fail(w, cp.credStatus, "Injected", "injected failure")
		return
	}
	out := agentapi.RegistryCredentials{Registries: []agentapi.RegistryLogin{}}
	for _, host := range cp.registries {
		out.Registries = append(out.Registries, agentapi.RegistryLogin{Host: host, Username: "AWS",
			Password: "tok-" + strconv.Itoa(cp.credCalls), ExpiresAt: awsmodel.Time{Time: time.Now().Add(cp.credTTL)}})
	}
	json.NewEncoder(w).Encode(out)
}

func (cp *fakeControlPlane) desired(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	wait, _ := strconv.Atoi(r.URL.Query().Get("wait"))
	cp.mu.Lock()
	if after > cp.polledAfter {
		cp.polledAfter = after
		cp.notifyLocked()
	}
	cp.mu.Unlock()
	deadline := time.After(time.Duration(max(wait, 1)) * time.Second)
	for {
		cp.mu.Lock()
		if cp.down {
			cp.mu.Unlock()
			fail(w, 503, "Unavailable", "down")
			return
		}
		if !cp.instances[r.PathValue("id")] {
			cp.mu.Unlock()
			fail(w, 404, "UnknownInstance", "no instance")
			return
		}
		if cp.revision > after || after == 0 {
			ds := agentapi.DesiredState{Revision: cp.revision, InstanceStatus: cp.status, Tasks: []agentapi.DesiredTask{}}
			for _, dt := range cp.tasks {
				ds.Tasks = append(ds.Tasks, *dt)
			}
			cp.mu.Unlock()
			json.NewEncoder(w).Encode(ds)
			return
		}
		changed := cp.changed
		cp.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			cp.mu.Lock()
			ds := agentapi.DesiredState{Revision: cp.revision, InstanceStatus: cp.status, Tasks: []agentapi.DesiredTask{}}
			for _, dt := range cp.tasks {
				ds.Tasks = append(ds.Tasks, *dt)
			}
			cp.mu.Unlock()
			json.NewEncoder(w).Encode(ds)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (cp *fakeControlPlane) report(w http.ResponseWriter, r *http.Request) {
	var rep agentapi.Report
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
		fail(w, 400, "BadRequest", err.Error())
		return
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.reports = append(cp.reports, rep)
	defer cp.notifyLocked()
	if cp.down {
		fail(w, 503, "Unavailable", "down")
		return
	}
	if !cp.instances[r.PathValue("id")] {
		fail(w, 404, "UnknownInstance", "no instance")
		return
	}
	if cp.failReports > 0 {
		cp.failReports--
		fail(w, 500, "Internal", "injected failure")
		return
	}
	applied := 0
	for _, tr := range rep.Tasks {
		if tr.Seq <= cp.seqs[tr.TaskArn] {
			continue
		}
		applied++
		cp.seqs[tr.TaskArn] = tr.Seq
		cp.applied[tr.TaskArn] = tr
		cp.history[tr.TaskArn] = append(cp.history[tr.TaskArn], tr)
		if tr.LastStatus == statusStopped {
			cp.tasks = slices.DeleteFunc(cp.tasks, func(dt *agentapi.DesiredTask) bool { return dt.TaskArn == tr.TaskArn })
			cp.revision++
		}
	}
	json.NewEncoder(w).Encode(agentapi.ReportResponse{Applied: applied})
}

// addTask asks for a task.
func (cp *fakeControlPlane) addTask(dt agentapi.DesiredTask) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.revision++
	cp.tasks = append(cp.tasks, &dt)
	cp.notifyLocked()
}

// stopTask sets a task's desired status to STOPPED and returns the
// revision that says so.
func (cp *fakeControlPlane) stopTask(arn, code, reason string) int64 {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, dt := range cp.tasks {
		if dt.TaskArn == arn {
			dt.Version++
			dt.DesiredStatus = statusStopped
			dt.StopCode, dt.StoppedReason = code, reason
		}
	}
	cp.revision++
	cp.notifyLocked()
	return cp.revision
}

// waitApplied waits until the agent has applied the desired state of rev.
func (cp *fakeControlPlane) waitApplied(rev int64) {
	cp.t.Helper()
	cp.waitFor("the agent to apply revision "+strconv.FormatInt(rev, 10), func() bool { return cp.polledAfter >= rev })
}

// dropTask removes a task from the desired state without a STOPPED report.
func (cp *fakeControlPlane) dropTask(arn string) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.tasks = slices.DeleteFunc(cp.tasks, func(dt *agentapi.DesiredTask) bool { return dt.TaskArn == arn })
	cp.revision++
	cp.notifyLocked()
}

func (cp *fakeControlPlane) set(f func(cp *fakeControlPlane)) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	f(cp)
	cp.notifyLocked()
}

// task returns the newest applied report of a task.
func (cp *fakeControlPlane) task(arn string) (agentapi.TaskReport, bool) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	tr, ok := cp.applied[arn]
	return tr, ok
}

// waitTask waits until the newest applied report of a task satisfies cond.
func (cp *fakeControlPlane) waitTask(arn string, what string, cond func(tr agentapi.TaskReport) bool) agentapi.TaskReport {
	cp.t.Helper()
	var last agentapi.TaskReport
	cp.waitFor(what, func() bool {
		tr, ok := cp.applied[arn]
		last = tr
		return ok && cond(tr)
	})
	return last
}

// waitStatus waits until a task's applied lastStatus is status.
func (cp *fakeControlPlane) waitStatus(arn, status string) agentapi.TaskReport {
	cp.t.Helper()
	return cp.waitTask(arn, "task "+status, func(tr agentapi.TaskReport) bool { return tr.LastStatus == status })
}

// waitFor waits until cond (called with cp.mu held) holds, waking on every
// change of the fake and failing the test after a generous deadline.
func (cp *fakeControlPlane) waitFor(what string, cond func() bool) {
	cp.t.Helper()
	deadline := time.After(testDeadline)
	for {
		cp.mu.Lock()
		ok := cond()
		changed := cp.changed
		cp.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			cp.mu.Lock()
			var states []string
			for arn, tr := range cp.applied {
				states = append(states, arn[strings.LastIndexByte(arn, '/')+1:]+"="+tr.LastStatus+"/"+tr.StopCode+"/"+tr.StoppedReason)
			}
			cp.mu.Unlock()
			cp.t.Fatalf("timed out waiting for %s; applied: %v", what, states)
		}
	}
}

// statuses returns the applied lastStatus sequence of a task.
func (cp *fakeControlPlane) statuses(arn string) []string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var out []string
	for _, tr := range cp.history[arn] {
		if len(out) == 0 || out[len(out)-1] != tr.LastStatus {
			out = append(out, tr.LastStatus)
		}
	}
	return out
}
