package agent_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/agent"
	"github.com/berthdev/berth/internal/store/bolt"
)

// FuzzAgentProtocol sends arbitrary bodies to the register and report
// endpoints. Nothing may panic or answer a server error: bad input is a
// 4xx, and an instance registered by one input can be reported on by the next.
func FuzzAgentProtocol(f *testing.F) {
	f.Add(true, []byte(`{"cluster":"default","cpu":1024,"memoryMiB":512,"attributes":{"ecs.os-type":"linux"}}`))
	f.Add(false, []byte(`{"seq":1,"tasks":[{"taskArn":"arn:aws:ecs:us-east-1:000000000000:task/default/abc","seq":2,"lastStatus":"RUNNING","containers":[{"name":"a","lastStatus":"RUNNING"}]}]}`))
	f.Add(false, []byte(`{"tasks":[{"taskArn":"arn:aws:ecs:us-east-1:000000000000:task/x","seq":18446744073709551615,"lastStatus":"STOPPED","stoppedAt":1e300}]}`))
	f.Add(true, []byte(`{"cluster":"nope","cpu":-1}`))
	f.Add(true, []byte(`[`))
	st, err := bolt.Open(filepath.Join(f.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	srv, err := agent.New(agent.Config{Store: st, Region: "us-east-1", Account: "000000000000", Token: "tok", Now: func() time.Time { return time.Unix(1_800_000_000, 0) }})
	if err != nil {
		f.Fatal(err)
	}
	instance := "unknown"
	f.Fuzz(func(t *testing.T, register bool, body []byte) {
		path := agentapi.PathPrefix + "/instances/" + instance + "/report"
		if register {
			path = agentapi.PathPrefix + "/register"
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q answered %d: %s", path, body, rec.Code, rec.Body)
		}
		if register && rec.Code == http.StatusOK {
			var out struct{ InstanceID string }
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err == nil && out.InstanceID != "" {
				instance = out.InstanceID
			}
		}
		// The desired state of the instance is still readable.
		req = httptest.NewRequest(http.MethodGet, agentapi.PathPrefix+"/instances/"+instance+"/desired?after=0&wait=0", nil)
		req.Header.Set("Authorization", "Bearer tok")
		rec = httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("desired state unreadable after %s %q: %d %s", path, body, rec.Code, rec.Body)
		}
	})
}
