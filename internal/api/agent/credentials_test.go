package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/agent"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/bolt"
)

// fakeRegistry mints "token-for-<principal>" valid for an hour.
type fakeRegistry struct {
	host string
	now  time.Time

	mu         sync.Mutex
	principals []string
}

func (r *fakeRegistry) Host() string { return r.host }

func (r *fakeRegistry) MintToken(principal string) (string, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.principals = append(r.principals, principal)
	return "token-for-" + principal, r.now.Add(time.Hour)
}

// newServer serves the agent protocol with registry reg (nil: none).
func newServer(t *testing.T, reg agent.Registry) (*httptest.Server, store.Store) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := agent.Config{Store: st, Region: "us-east-1", Account: "000000000000", Token: "tok",
		Now: func() time.Time { return time.Unix(1_800_000_000, 0) }}
	if reg != nil {
		cfg.Registry = reg
	}
	srv, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs, st
}

func register(t *testing.T, c *agentapi.Client) agentapi.RegisterResponse {
	t.Helper()
	resp, err := c.Register(context.Background(), agentapi.RegisterRequest{Cluster: "default", CPU: 1024, MemoryMiB: 512})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestRegistryCredentials(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	reg := &fakeRegistry{host: "127.0.0.1:4566", now: now}
	hs, _ := newServer(t, reg)
	c := &agentapi.Client{Endpoint: hs.URL, Token: "tok"}
	resp := register(t, c)
	if !slices.Equal(resp.Registries, []string{"127.0.0.1:4566"}) {
		t.Errorf("registration announces registries %q", resp.Registries)
	}
	creds, err := c.RegistryCredentials(context.Background(), resp.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	want := agentapi.RegistryLogin{Host: "127.0.0.1:4566", Username: "AWS", Password: "token-for-" + resp.ContainerInstanceArn}
	if len(creds.Registries) != 1 {
		t.Fatalf("registries = %v", creds.Registries)
	}
	got := creds.Registries[0]
	if got.Host != want.Host || got.Username != want.Username || got.Password != want.Password || !got.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Errorf("login = %+v (password %q), want %+v (password %q)", got, got.Password, want, want.Password)
	}
	if !slices.Equal(reg.principals, []string{resp.ContainerInstanceArn}) {
		t.Errorf("minted for %q, want the instance ARN", reg.principals)
	}
}

// TestRegistryCredentialsRefused: the call takes the join token and the
// instance's own secret, and a registered, active instance.
func TestRegistryCredentialsRefused(t *testing.T) {
	reg := &fakeRegistry{host: "127.0.0.1:4566"}
	hs, st := newServer(t, reg)
	c := &agentapi.Client{Endpoint: hs.URL, Token: "tok"}
	mine, other := register(t, c), register(t, c)
	path := agentapi.PathPrefix + "/instances/" + mine.InstanceID + "/registry-credentials"
	for _, tc := range []struct {
		name, method, path, token, secret string
		status                            int
		code                              string
	}{
		{"no join token", "POST", path, "", mine.InstanceSecret, 401, "Unauthorized"},
		{"wrong join token", "POST", path, "nope", mine.InstanceSecret, 401, "Unauthorized"},
		{"no instance secret", "POST", path, "tok", "", 401, "InstanceSecret"},
		{"another instance's secret", "POST", path, "tok", other.InstanceSecret, 401, "InstanceSecret"},
		{"unknown instance", "POST", agentapi.PathPrefix + "/instances/nope/registry-credentials", "tok", mine.InstanceSecret, 404, "UnknownInstance"},
		{"GET", "GET", path, "tok", mine.InstanceSecret, 404, "NotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, hs.URL+tc.path, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			if tc.secret != "" {
				req.Header.Set(agentapi.SecretHeader, tc.secret)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e agentapi.Error
			json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tc.status || e.Code != tc.code {
				t.Errorf("answered %d %s (%s), want %d %s", resp.StatusCode, e.Code, e.Message, tc.status, tc.code)
			}
			if strings.Contains(e.Message, "token-for-") {
				t.Errorf("a refusal carries a token: %q", e.Message)
			}
		})
	}
	if len(reg.principals) != 0 {
		t.Errorf("tokens minted for refused calls: %q", reg.principals)
	}

	// A deregistered instance gets none either.
	if _, err := st.Update(context.Background(), func(tx store.Tx) error {
		ci, _, err := state.Get[state.ContainerInstance](tx, state.InstanceKey("default", mine.InstanceID))
		if err != nil {
			return err
		}
		ci.Status = state.InstanceInactive
		return state.Put(tx, state.InstanceKey("default", mine.InstanceID), ci)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegistryCredentials(context.Background(), mine.InstanceID); !errors.Is(err, agentapi.ErrDeregistered) {
		t.Errorf("deregistered instance: %v, want ErrDeregistered", err)
	}
}

// TestRegistryCredentialsWithoutRegistry: a control plane without a
// registry announces none and answers an empty list.
func TestRegistryCredentialsWithoutRegistry(t *testing.T) {
	hs, _ := newServer(t, nil)
	c := &agentapi.Client{Endpoint: hs.URL, Token: "tok"}
	resp := register(t, c)
	if len(resp.Registries) != 0 {
		t.Errorf("registries announced: %q", resp.Registries)
	}
	creds, err := c.RegistryCredentials(context.Background(), resp.InstanceID)
	if err != nil || creds.Registries == nil || len(creds.Registries) != 0 {
		t.Errorf("credentials = %+v, %v; want an empty list", creds, err)
	}
}
