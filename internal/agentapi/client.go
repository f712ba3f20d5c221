package agentapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client talks to the control plane on an agent's behalf.
type Client struct {
	// Endpoint is the control plane's base URL, e.g. http://127.0.0.1:4566.
	Endpoint string
	// Token is the cluster join token.
	Token string
	// HTTP is the client to use; nil means one with sane timeouts.
	HTTP *http.Client

	// secrets holds each registered instance's secret, learnt from Register.
	secrets sync.Map
}

// ErrUnauthorized means the control plane refused the join token.
var ErrUnauthorized = errors.New("agentapi: join token refused")

// ErrUnknownInstance means the control plane does not know the instance id
// (it was deregistered or the store was reset): register afresh.
var ErrUnknownInstance = errors.New("agentapi: unknown container instance")

// ErrSecretMismatch means the instance id belongs to another agent (the
// secret presented does not match): register as a new instance.
var ErrSecretMismatch = errors.New("agentapi: instance secret mismatch")

// ErrDeregistered means the instance was deregistered, which is final: the
// agent must stop its tasks and not register again with that id.
var ErrDeregistered = errors.New("agentapi: container instance deregistered")

var defaultHTTP = &http.Client{Timeout: (MaxPollWait + 15) * time.Second}

// Register registers the instance.
func (c *Client) Register(ctx context.Context, req RegisterRequest) (RegisterResponse, error) {
	var out RegisterResponse
	err := c.do(ctx, http.MethodPost, "/register", "", req, &out)
	if err == nil && out.InstanceSecret != "" {
		c.secrets.Store(out.InstanceID, out.InstanceSecret)
	}
	return out, err
}

// Desired fetches the desired state of an instance, waiting up to wait for
// a change after revision after (0 answers at once).
func (c *Client) Desired(ctx context.Context, instanceID string, after int64, wait time.Duration) (DesiredState, error) {
	var out DesiredState
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "wait": {strconv.Itoa(int(wait / time.Second))}}
	err := c.do(ctx, http.MethodGet, "/instances/"+url.PathEscape(instanceID)+"/desired?"+q.Encode(), instanceID, nil, &out)
	return out, err
}

// Report sends task transitions (or a heartbeat when r.Tasks is empty).
func (c *Client) Report(ctx context.Context, instanceID string, r Report) (ReportResponse, error) {
	var out ReportResponse
	err := c.do(ctx, http.MethodPost, "/instances/"+url.PathEscape(instanceID)+"/report", instanceID, r, &out)
	return out, err
}

// RegistryCredentials fetches the instance's pull credentials for the
// control plane's registry (none when it has no registry).
func (c *Client) RegistryCredentials(ctx context.Context, instanceID string) (RegistryCredentials, error) {
	var out RegistryCredentials
	err := c.do(ctx, http.MethodPost, "/instances/"+url.PathEscape(instanceID)+"/registry-credentials", instanceID, nil, &out)
	return out, err
}

func (c *Client) do(ctx context.Context, method, path, instanceID string, in, out any) error {
	var body io.Reader
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Endpoint, "/")+PathPrefix+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if s, ok := c.secrets.Load(instanceID); ok && instanceID != "" {
		req.Header.Set(SecretHeader, s.(string))
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e Error
		_ = json.Unmarshal(raw, &e)
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			return fmt.Errorf("%w: %s", ErrUnauthorized, e.Message)
		case resp.StatusCode == http.StatusForbidden && e.Code == "InstanceSecretMismatch":
			return fmt.Errorf("%w: %s", ErrSecretMismatch, e.Message)
		case resp.StatusCode == http.StatusGone:
			return fmt.Errorf("%w: %s", ErrDeregistered, e.Message)
		case resp.StatusCode == http.StatusNotFound && e.Code == "UnknownInstance":
			return fmt.Errorf("%w: %s", ErrUnknownInstance, e.Message)
		}
		return fmt.Errorf("agentapi: %s %s: %d %s: %s", method, path, resp.StatusCode, e.Code, e.Message)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}
