// Package api is Berth's front door: one HTTP handler that carries every AWS
// API Berth speaks. It authenticates each request with SigV4, routes it to a
// service by protocol (X-Amz-Target for the JSON protocols), writes replies in
// the service's encoding, and is the only place where errors become AWS error
// shapes on the wire.
//
// Two protocol families are served: AWS JSON (JSONService: ECS, ECR), and
// AWS Query (QueryService: form requests, XML replies; ELBv2).
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/sigv4"
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/errdefs"
)

// DefaultMaxBodyBytes caps the body of one API request. The largest ECS
// request (RegisterTaskDefinition) is limited to 64 KiB by ECS itself; the cap
// leaves room for other services while keeping a client from exhausting memory.
const DefaultMaxBodyBytes = 2 << 20

// HealthPath answers 200 once the server is serving requests.
const HealthPath = "/_berth/health"

// JSONService is an AWS service spoken over the AWS JSON 1.0 or 1.1
// protocol: POST / with X-Amz-Target: <TargetPrefix>.<Operation>.
type JSONService struct {
	// TargetPrefix is the X-Amz-Target prefix, e.g.
	// AmazonEC2ContainerServiceV20141113.
	TargetPrefix string
	// JSONVersion is "1.0" or "1.1"; it sets the reply's Content-Type.
	JSONVersion string
	// SigningName is the SigV4 service name clients sign with (e.g. "ecs").
	SigningName string
	// ValidationCode is the error code for a request that breaks the model's
	// constraints, e.g. InvalidParameterException.
	ValidationCode string
	// NotImplementedCode is the error code for a known operation that Berth
	// does not implement, e.g. UnsupportedFeatureException.
	NotImplementedCode string
	// ServerErrorCode is the error code (HTTP 500) for an unexpected failure,
	// e.g. ServerException.
	ServerErrorCode string
	// MaxBodyBytes caps this service's request bodies; 0 means the front
	// door's Config.MaxBodyBytes. ECR's UploadLayerPart carries a layer part
	// of up to 20 MiB, base64-encoded, in its JSON body.
	MaxBodyBytes int64
	// Dispatch decodes, validates and runs operation op.
	Dispatch func(ctx context.Context, op string, body []byte) (any, error)
}

// Authenticator verifies a request's signature and says who made it.
type Authenticator interface {
	Verify(ctx context.Context, r *http.Request, body []byte) (sigv4.Result, error)
}

// Prechecker is an Authenticator that can refuse a request from its headers
// alone, before its body is read (sigv4.Verifier is one).
type Prechecker interface {
	Precheck(ctx context.Context, r *http.Request) error
}

// Config configures the front door. Validate fills defaults.
type Config struct {
	// Region is the one AWS region this Berth serves.
	Region string
	// Auth verifies requests. Nil is refused by Validate unless Insecure is set.
	Auth Authenticator
	// Insecure skips signature verification (explicit dev mode, never the default).
	Insecure bool
	// MaxBodyBytes caps request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger receives one line per failed request and per server error.
	Logger *slog.Logger
	// PrincipalARN names the principal behind an access key; nil means every
	// key acts as the account's root (arn:aws:iam::<account>:root).
	PrincipalARN func(accessKeyID string) string
	// Account is the AWS account id, used for the default principal.
	Account string
	// Handlers serve non-AWS paths by prefix (e.g. the agent protocol under
	// /_berth/agent/); they do their own authentication.
	Handlers map[string]http.Handler
	// Services are the JSON-protocol services to route to.
	Services []*JSONService
	// QueryServices are the AWS Query-protocol services to route to, by
	// signing name. A Query request for any other service is answered
	// InvalidAction, naming the API Berth does not implement yet.
	QueryServices []*QueryService
	// Now is the clock (for request timing).
	Now func() time.Time
	// Metrics, when set, counts and times requests and is served at MetricsPath.
	Metrics *Metrics
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if c.Account == "" {
		return fmt.Errorf("api: account is required: %w", errdefs.ErrInvalidArgument)
	}
	if c.Region == "" {
		return fmt.Errorf("api: region is required: %w", errdefs.ErrInvalidArgument)
	}
	if c.Auth == nil && !c.Insecure {
		return fmt.Errorf("api: an authenticator is required unless insecure mode is chosen: %w", errdefs.ErrInvalidArgument)
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	for _, s := range c.Services {
		if s.TargetPrefix == "" || s.Dispatch == nil || s.SigningName == "" {
			return fmt.Errorf("api: service %q lacks a target prefix, signing name or dispatcher: %w", s.TargetPrefix, errdefs.ErrInvalidArgument)
		}
		if s.JSONVersion == "" {
			s.JSONVersion = "1.1"
		}
		if s.ValidationCode == "" {
			s.ValidationCode = "ValidationException"
		}
		if s.NotImplementedCode == "" {
			s.NotImplementedCode = "NotImplementedException"
		}
		if s.ServerErrorCode == "" {
			s.ServerErrorCode = "InternalFailure"
		}
	}
	seen := map[string]bool{}
	for _, q := range c.QueryServices {
		if err := q.validate(); err != nil {
			return err
		}
		if seen[q.SigningName] {
			return fmt.Errorf("api: two Query services sign as %q: %w", q.SigningName, errdefs.ErrInvalidArgument)
		}
		seen[q.SigningName] = true
	}
	return nil
}

// Server is the front door's http.Handler.
type Server struct {
	cfg      Config
	byPrefix map[string]*JSONService
	byScope  map[string]*QueryService
	log      *slog.Logger
}

// New returns a front door for cfg.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, byPrefix: map[string]*JSONService{}, byScope: map[string]*QueryService{}, log: cfg.Logger.With("component", "api")}
	for _, svc := range cfg.Services {
		s.byPrefix[svc.TargetPrefix] = svc
	}
	for _, svc := range cfg.QueryServices {
		s.byScope[svc.SigningName] = svc
	}
	return s, nil
}

// ServeHTTP routes one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	w.Header().Set("x-amzn-RequestId", reqID)
	if r.URL.Path == HealthPath {
		s.health(w, r)
		return
	}
	if r.URL.Path == MetricsPath && s.cfg.Metrics != nil {
		s.cfg.Metrics.handler.ServeHTTP(w, r)
		return
	}
	for prefix, h := range s.cfg.Handlers {
		if strings.HasPrefix(r.URL.Path, prefix) {
			h.ServeHTTP(w, r)
			return
		}
	}
	limit := s.bodyLimit(r)
	if limit > s.cfg.MaxBodyBytes && !s.cfg.Insecure {
		// A service that takes large bodies (ECR's layer parts) hears
		// nothing of one until its signature's claim and key check out,
		// so an anonymous client cannot make the server buffer it.
		if pc, ok := s.cfg.Auth.(Prechecker); ok {
			if err := pc.Precheck(r.Context(), r); err != nil {
				s.writeJSONError(w, r, reqID, nil, err)
				return
			}
		}
	}
	body, err := readBody(w, r, limit)
	if err != nil {
		if isForm(r) {
			// A Query client reads only the Query error shape.
			code, status, msg, _ := wireError(jsonDefaultCodes, err)
			s.writeQueryError(w, reqID, "", code, status, msg)
			return
		}
		s.writeJSONError(w, r, reqID, nil, err)
		return
	}
	rt := detectRoute(r, body)
	switch rt.proto {
	case protoJSON:
		if svc := s.byPrefix[rt.service]; svc != nil {
			s.serveJSON(w, r, reqID, svc, rt.op, body)
			return
		}
		what := "a service Berth does not serve"
		if name, ok := knownJSONServices[rt.service]; ok {
			what = "the " + name + " API, which Berth does not implement yet"
		}
		s.writeJSONError(w, r, reqID, nil, awsmodel.NewAPIError("UnknownOperationException", http.StatusBadRequest,
			"X-Amz-Target %q names %s", r.Header.Get("X-Amz-Target"), what))
	case protoQuery:
		if svc := s.queryService(rt.service, rt.form); svc != nil {
			s.serveQuery(w, r, reqID, svc, rt.op, rt.form, body)
			return
		}
		name := rt.service
		if n, ok := knownQueryServices[rt.service]; ok {
			name = n
		}
		if name == "" {
			name = "an AWS Query API (unsigned, so Berth cannot tell which)"
		}
		s.writeQueryError(w, reqID, "", "InvalidAction", http.StatusBadRequest,
			fmt.Sprintf("%s is an action of %s, which Berth does not implement yet", rt.op, name))
	case protoRPCv2:
		s.writeCBORError(w, reqID, "UnknownOperationException", http.StatusBadRequest,
			fmt.Sprintf("%s.%s: Berth does not implement the %s API over the RPCv2 CBOR protocol yet", rt.service, rt.op, rt.service))
	default:
		s.writeJSONError(w, r, reqID, nil, awsmodel.NewAPIError("UnknownOperationException", http.StatusBadRequest,
			"the request names no AWS operation: Berth routes by the X-Amz-Target header (AWS JSON), Action= (AWS Query) or /service/<Service>/operation/<Operation> (RPCv2 CBOR)"))
	}
}

// bodyLimit is the body cap of the service the X-Amz-Target header names,
// known before the body is read, or the front door's own.
func (s *Server) bodyLimit(r *http.Request) int64 {
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		prefix, _, _ := strings.Cut(target, ".")
		if svc := s.byPrefix[prefix]; svc != nil && svc.MaxBodyBytes > 0 {
			return svc.MaxBodyBytes
		}
	}
	return s.cfg.MaxBodyBytes
}

// serveJSON authenticates and runs one AWS JSON request.
func (s *Server) serveJSON(w http.ResponseWriter, r *http.Request, reqID string, svc *JSONService, op string, body []byte) {
	start := s.cfg.Now()
	buf, err := s.runJSON(r, svc, op, body)
	code := ""
	if err != nil {
		code = s.writeJSONError(w, r, reqID, svc, err)
	} else {
		w.Header().Set("Content-Type", "application/x-amz-json-"+svc.JSONVersion)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(buf)
	}
	s.cfg.Metrics.observe(svc.SigningName, op, err, code, s.cfg.Now().Sub(start))
}

// runJSON authenticates, dispatches and encodes the reply.
func (s *Server) runJSON(r *http.Request, svc *JSONService, op string, body []byte) ([]byte, error) {
	if r.Method != http.MethodPost {
		return nil, awsmodel.NewAPIError("UnknownOperationException", http.StatusMethodNotAllowed,
			"AWS JSON requests must use POST, not %s", r.Method)
	}
	caller, err := s.authenticate(r, body, svc.SigningName)
	if err != nil {
		return nil, err
	}
	out, err := svc.Dispatch(WithCaller(r.Context(), caller), op, body)
	if err != nil {
		return nil, err
	}
	buf, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encoding %s reply: %w", op, err)
	}
	return buf, nil
}

// authenticate verifies r's signature for the service signing as
// signingName and says who made it; in insecure mode every request is the
// account's root.
func (s *Server) authenticate(r *http.Request, body []byte, signingName string) (Caller, error) {
	caller := Caller{ARN: "arn:aws:iam::" + s.cfg.Account + ":root"}
	if s.cfg.Insecure {
		return caller, nil
	}
	res, err := s.cfg.Auth.Verify(r.Context(), r, body)
	if err != nil {
		return Caller{}, err
	}
	if err := s.checkScope(res, signingName); err != nil {
		return Caller{}, err
	}
	caller.AccessKeyID = res.AccessKeyID
	if s.cfg.PrincipalARN != nil {
		caller.ARN = s.cfg.PrincipalARN(res.AccessKeyID)
	}
	return caller, nil
}

// checkScope refuses a signature scoped to another region or service: Berth
// serves one region, and the ARNs it returns name it. The refusal is a
// signature error, so each protocol words it with its own code.
func (s *Server) checkScope(res sigv4.Result, signingName string) error {
	if res.Region != s.cfg.Region {
		return &sigv4.Error{Code: sigv4.CodeInvalidSignature, HTTPStatus: http.StatusBadRequest, Message: fmt.Sprintf(
			"Credential should be scoped to a valid region, not '%s'. This Berth serves region '%s'.", res.Region, s.cfg.Region)}
	}
	if res.Service != signingName {
		return &sigv4.Error{Code: sigv4.CodeInvalidSignature, HTTPStatus: http.StatusBadRequest, Message: fmt.Sprintf(
			"Credential should be scoped to correct service: '%s'.", signingName)}
	}
	return nil
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
}

// errBodyTooLarge is answered with 413.
var errBodyTooLarge = errors.New("request body too large")

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d-byte limit", errBodyTooLarge, r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: it exceeds the %d-byte limit", errBodyTooLarge, limit)
		}
		return nil, &awsmodel.SerializationError{Detail: "reading the request body: " + err.Error()}
	}
	return body, nil
}

// newRequestID returns a random UUID (version 4) in the form AWS uses.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
