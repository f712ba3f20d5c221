package lb

import (
	"crypto/rand"
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Balancer. Validate fills the defaults.
type Config struct {
	// Logger receives the balancer's logs (optional); they carry
	// component=lb.
	Logger *slog.Logger
	// Now is the clock for drain deadlines, slow start and trace IDs
	// (optional; time.Now). Health check intervals and timeouts use the
	// time package's timers, which testing/synctest controls.
	Now func() time.Time
	// OnHealth, when set, is called with every change of a target's
	// health state: a target added (initial or unavailable), a verdict of
	// its health checks, the start of its draining and its end (unused,
	// Target.NotRegistered: the wiring may now forget the target). It is
	// called from the goroutines of Apply and Run, never with a lock of the
	// balancer held, and should return quickly.
	OnHealth func(TargetHealth)
	// Metrics, when set, registers the balancer's Prometheus metrics.
	Metrics prometheus.Registerer
	// ConnectTimeout bounds the connection to a target; a target that does
	// not accept within it answers 504 (optional; ALB's 10 seconds).
	ConnectTimeout time.Duration
	// ShutdownGrace is how long a removed listener, or every listener when
	// the balancer closes, lets its requests in flight finish before its
	// connections are closed (optional; 30 seconds).
	ShutdownGrace time.Duration
	// StickinessKey keys the values of the stickiness cookies (AWSALB,
	// AWSALBAPP-0, AWSALBTG and their CORS twins): they name targets and
	// groups by a keyed hash, never by address, and cannot be forged. A
	// cookie sticks only under the key it was issued with, so the wiring
	// should pass one that survives restarts and is shared by every
	// balancer serving the same load balancers (optional; a random key of
	// this Balancer's own).
	StickinessKey []byte
}

// Validate fills defaults. It returns no error today; it exists so that
// callers validate every component's Config the same way.
func (c *Config) Validate() error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	if len(c.StickinessKey) == 0 {
		c.StickinessKey = make([]byte, 32)
		_, _ = rand.Read(c.StickinessKey) // never fails (crypto/rand)
	}
	return nil
}

// Snapshot is the complete configuration of the data plane. Apply replaces
// the previous snapshot with it: load balancers, listeners and target groups
// absent from it are removed. Snapshots are read, never retained or
// modified, by Apply.
type Snapshot struct {
	// LoadBalancers are the load balancers to serve.
	LoadBalancers []LoadBalancer
	// TargetGroups are every target group a forward action may name. Each
	// is health checked whether or not a rule uses it, so the wiring
	// should pass only the groups attached to a load balancer (ALB reports
	// the targets of an unattached group as unused, Target.NotInUse).
	TargetGroups []TargetGroup
}

// XFF modes: what the load balancer does with the X-Forwarded-For request
// header (ALB's routing.http.xff_header_processing.mode).
const (
	// XFFAppend adds the client's address to the header (creating it), the
	// default.
	XFFAppend = "append"
	// XFFPreserve sends the header as the client sent it.
	XFFPreserve = "preserve"
	// XFFRemove removes the header.
	XFFRemove = "remove"
)

// LoadBalancer is one application load balancer. Its targets receive the
// Host header the client sent (ALB with routing.http.preserve_host_header
// enabled), the path and query unchanged, and the headers ALB adds:
// X-Forwarded-For (see XFFMode), X-Forwarded-Proto, X-Forwarded-Port and
// X-Amzn-Trace-Id.
type LoadBalancer struct {
	// ID identifies the load balancer (required, unique), e.g. its ARN; it
	// labels metrics and errors.
	ID string
	// Address is the IP address its listeners bind, e.g. "127.0.3.7"; ""
	// binds every address of the host.
	Address string
	// IdleTimeout closes client connections idle for this long, and
	// answers 504 when a target sends no response headers within it
	// (idle_timeout.timeout_seconds; default 60 seconds).
	IdleTimeout time.Duration
	// HTTP2 offers HTTP/2 to clients of HTTPS listeners through ALPN
	// (routing.http2.enabled; ALB's default is true, the zero value here
	// is false, so the wiring must set it).
	HTTP2 bool
	// DropInvalidHeaders removes request headers whose names are not made
	// of letters, digits and hyphens
	// (routing.http.drop_invalid_header_fields.enabled).
	DropInvalidHeaders bool
	// XFFMode is XFFAppend (also for ""), XFFPreserve or XFFRemove.
	XFFMode string
	// XFFClientPort adds the client's port to the address appended to
	// X-Forwarded-For (routing.http.xff_client_port.enabled).
	XFFClientPort bool
	// Listeners are the load balancer's listeners.
	Listeners []Listener
}

// Listener protocols.
const (
	ProtocolHTTP  = "HTTP"
	ProtocolHTTPS = "HTTPS"
)

// Listener is a port of a load balancer and the rules that route its
// requests.
type Listener struct {
	// ID identifies the listener within its load balancer (required,
	// unique), e.g. its ARN. A listener keeps its socket across Apply calls
	// as long as its ID, address, port and protocol stay the same.
	ID string
	// Port is the TCP port to bind (1-65535; 0 binds a free port, which
	// Status reports: for tests).
	Port int
	// Protocol is ProtocolHTTP or ProtocolHTTPS.
	Protocol string
	// Certificate is the server certificate of an HTTPS listener
	// (required for HTTPS). It may change between Apply calls without
	// closing the listener; new handshakes use the new one.
	Certificate *tls.Certificate
	// Rules are the listener's rules in any order: they are evaluated by
	// ascending Priority, and the one rule with IsDefault set last.
	Rules []Rule
}

// Rule is a listener rule: when every condition matches a request, the
// action handles it.
type Rule struct {
	// ID identifies the rule in errors (optional).
	ID string
	// Priority orders the rules, lowest first (1-50000 in ALB; unique
	// within a listener). Ignored for the default rule.
	Priority int
	// IsDefault marks the listener's default rule: it has no conditions
	// and applies when no other rule does. A listener without one answers
	// unmatched requests with 503.
	IsDefault bool
	// Conditions must all match (an empty list matches everything).
	Conditions []Condition
	// Action is what the rule does.
	Action Action
}

// Condition fields.
const (
	FieldPathPattern       = "path-pattern"
	FieldHostHeader        = "host-header"
	FieldHTTPHeader        = "http-header"
	FieldHTTPRequestMethod = "http-request-method"
	FieldQueryString       = "query-string"
	FieldSourceIP          = "source-ip"
)

// Condition is one condition of a rule; it matches when any of its values
// matches. The semantics are ALB's (RuleCondition in the ELBv2 API
// reference):
//
//   - path-pattern: Values are compared with the request's path (decoded,
//     without the query string), case-sensitively, with the wildcards *
//     (zero or more characters) and ? (exactly one).
//   - host-header: Values are compared with the Host header without its
//     port, case-insensitively, with wildcards.
//   - http-header: HeaderName (case-insensitive) names the header; Values
//     are compared with each of its values, case-insensitively, with
//     wildcards.
//   - http-request-method: Values are method names, compared exactly.
//   - query-string: Query holds key/value pairs; a pair matches a
//     parameter of the query string (decoded) whose key matches Key (any
//     key when Key is "") and whose value matches Value, case-insensitively,
//     with wildcards; \* and \? stand for literal * and ?.
//   - source-ip: Values are CIDR blocks (IPv4 or IPv6) that contain the
//     address of the client's connection (X-Forwarded-For is not
//     consulted).
//
// RegexValues, for path-pattern, host-header and http-header, are regular
// expressions (Go's RE2 syntax) that match when they match anywhere in the
// value; they are ORed with Values.
type Condition struct {
	// Field is one of the Field* constants.
	Field string
	// HeaderName is the header of an http-header condition.
	HeaderName string
	// Values are the patterns, methods or CIDR blocks to match.
	Values []string
	// RegexValues are regular expressions to match (see above).
	RegexValues []string
	// Query are the key/value pairs of a query-string condition.
	Query []QueryPair
}

// QueryPair is a key/value pair of a query-string condition.
type QueryPair struct {
	// Key is the parameter name pattern; "" matches any key.
	Key string
	// Value is the parameter value pattern (required).
	Value string
}

// Action types.
const (
	ActionForward       = "forward"
	ActionRedirect      = "redirect"
	ActionFixedResponse = "fixed-response"
)

// Action is what a rule does with a request.
type Action struct {
	// Type is ActionForward, ActionRedirect or ActionFixedResponse.
	Type string
	// Forward are the target groups of a forward action. With more than
	// one, each request picks one at random in proportion to the weights.
	Forward []WeightedGroup
	// GroupStickiness, when non-zero, keeps a client on the target group
	// of Forward its first request went to, for this long after its last
	// response (ForwardConfig.TargetGroupStickinessConfig; 1 second to 7
	// days). The load balancer names the group in the AWSALBTG and
	// AWSALBTGCORS cookies of every response; a request carrying either
	// goes to that group as long as Forward holds it, whatever its weight
	// (ALB: stickiness takes precedence over the weights). A forward to a
	// single group has no choice to remember and sets no cookie.
	GroupStickiness time.Duration
	// Redirect is the redirect of a redirect action.
	Redirect *Redirect
	// Fixed is the answer of a fixed-response action.
	Fixed *FixedResponse
}

// WeightedGroup is a target group of a forward action.
type WeightedGroup struct {
	// TargetGroupID names a group of the snapshot.
	TargetGroupID string
	// Weight is the group's share of requests (0-999; 0 sends it none).
	// A forward to a single group ignores it.
	Weight int
}

// Redirect is a redirect action. Each component may use the placeholders
// #{protocol}, #{host}, #{port}, #{path} (the request's path without its
// leading "/") and #{query}; an empty component keeps the request's value
// (Protocol "#{protocol}", Host "#{host}", Port "#{port}", Path
// "/#{path}", Query "#{query}").
type Redirect struct {
	// Protocol is "HTTP", "HTTPS" or "#{protocol}".
	Protocol string
	// Host is the host name.
	Host string
	// Port is the port (1-65535) or "#{port}".
	Port string
	// Path is the absolute path, starting with "/".
	Path string
	// Query is the query string without the leading "?".
	Query string
	// StatusCode is 301 or 302 (default 302).
	StatusCode int
}

// FixedResponse is the answer of a fixed-response action.
type FixedResponse struct {
	// StatusCode is the HTTP status (2XX, 4XX or 5XX in ALB).
	StatusCode int
	// ContentType is the Content-Type header (default text/plain).
	ContentType string
	// Body is the response body (up to 1024 bytes in ALB).
	Body string
}

// Balancing algorithms.
const (
	RoundRobin               = "round_robin"
	LeastOutstandingRequests = "least_outstanding_requests"
)

// TargetGroup is a set of targets and how to balance over them and check
// their health.
type TargetGroup struct {
	// ID identifies the group (required, unique), e.g. its ARN. A group
	// keeps its targets' health and in-flight counts across Apply calls.
	ID string
	// Protocol is how requests reach the targets: ProtocolHTTP (default)
	// or ProtocolHTTPS (TLS; the target's certificate is not verified, as
	// in ALB).
	Protocol string
	// ProtocolVersion is "HTTP1" (default) or "HTTP2" (offered through
	// ALPN to HTTPS targets; plain HTTP targets always get HTTP/1.1).
	ProtocolVersion string
	// Algorithm is RoundRobin (default) or LeastOutstandingRequests.
	Algorithm string
	// SlowStart, when non-zero, ramps the share of requests a target
	// newly healthy receives linearly from nothing to its full share over
	// this duration (round robin only; like ALB, only while another
	// healthy target is out of slow start).
	SlowStart time.Duration
	// Stickiness binds a client to one of the targets (the stickiness.*
	// attributes); the zero value is off.
	Stickiness Stickiness
	// HealthCheck is how the targets' health is checked.
	HealthCheck HealthCheck
	// Targets are the group's targets, registered and draining.
	Targets []Target
}

// Stickiness types.
const (
	// StickinessLBCookie is duration-based stickiness: the load balancer's
	// own cookie names the target.
	StickinessLBCookie = "lb_cookie"
	// StickinessAppCookie is application-based stickiness: a session
	// starts when the target sets the application's cookie.
	StickinessAppCookie = "app_cookie"
)

// Stickiness is a target group's sticky sessions, with ALB's semantics
// (ALB user guide, Sticky sessions for your Application Load Balancer). A
// request that sticks goes to its target as long as the target is in the
// set requests are balanced over (healthy and not draining, or any target
// not draining when the group fails open); otherwise the algorithm picks,
// and the session moves to the target it picked. Every response of a
// session carries the load balancer's cookie anew, so its expiry runs from
// the last response.
//
//   - lb_cookie: every response names the target that served it in the
//     cookies AWSALB and AWSALBCORS (the latter with SameSite=None;
//     Secure, for cross-origin requests), which expire after Duration. A
//     request carrying either goes to that target.
//   - app_cookie: the load balancer names the target in the cookie
//     AWSALBAPP-0 (expiring after ALB's fixed 7 days) on a response whose
//     target sets the application cookie CookieName (whatever its value
//     or expiry), and on every response to a request already in a
//     session; Chromium 80 and later get it with SameSite=None; Secure on
//     HTTPS listeners. A request is in a session when it carries both
//     CookieName and an AWSALBAPP-0 cookie of the group issued at most
//     Duration ago; without the application cookie (the application
//     deleted it, or it expired) the session is over.
type Stickiness struct {
	// Enabled turns stickiness on (stickiness.enabled).
	Enabled bool
	// Type is StickinessLBCookie (default) or StickinessAppCookie
	// (stickiness.type).
	Type string
	// Duration is how long stickiness lasts after the last response (1
	// second to 7 days; default 1 day): the lifetime of the AWSALB cookie
	// (stickiness.lb_cookie.duration_seconds) or of an application
	// session (stickiness.app_cookie.duration_seconds).
	Duration time.Duration
	// CookieName is the application cookie of app_cookie stickiness
	// (stickiness.app_cookie.cookie_name; required for it).
	CookieName string
}

// Target is a registered (or draining) target of a group.
type Target struct {
	// ID identifies the target within its group (required, unique), e.g.
	// "10.0.0.5:8080"; it is the TargetID of its health reports.
	ID string
	// Addr is the host:port requests and health checks are sent to.
	Addr string
	// Draining marks a deregistered target: it gets no new request from
	// the moment Apply sees it so; its requests in flight may finish.
	Draining bool
	// DrainUntil ends the deregistration delay of a draining target: the
	// target is reported drained (unused) when it has no request in
	// flight or when DrainUntil passes, whichever comes first; its
	// WebSocket connections are closed then. A zero DrainUntil waits only
	// for the requests in flight.
	DrainUntil time.Time
}

// HealthCheck configures a group's health checks. The zero value checks
// with ALB's defaults.
type HealthCheck struct {
	// Disabled turns health checks off: every target is then unavailable
	// (Target.HealthCheckDisabled) and receives requests.
	Disabled bool
	// Protocol is ProtocolHTTP (default) or ProtocolHTTPS.
	Protocol string
	// Path is the request path and query (default "/").
	Path string
	// Port is "traffic-port" (default: the target's port) or a port
	// number.
	Port string
	// Interval is the time between checks of a target (default 30
	// seconds).
	Interval time.Duration
	// Timeout fails a check that has no response within it (default 5
	// seconds; at most Interval).
	Timeout time.Duration
	// HealthyThreshold is the consecutive successes that make an unhealthy
	// target healthy (default 5).
	HealthyThreshold int
	// UnhealthyThreshold is the consecutive failures that make a target
	// unhealthy (default 2).
	UnhealthyThreshold int
	// Matcher lists the status codes of success: "200", "200-299",
	// "200,202" or a mix (default "200").
	Matcher string
}

// State is a target's health state (ELBv2's TargetHealthStateEnum).
type State string

// Target health states.
const (
	StateInitial     State = "initial"
	StateHealthy     State = "healthy"
	StateUnhealthy   State = "unhealthy"
	StateUnused      State = "unused"
	StateDraining    State = "draining"
	StateUnavailable State = "unavailable"
)

// Reason codes of TargetHealth (ELBv2's TargetHealthReasonEnum).
const (
	ReasonInitialHealthChecking    = "Elb.InitialHealthChecking"
	ReasonResponseCodeMismatch     = "Target.ResponseCodeMismatch"
	ReasonTimeout                  = "Target.Timeout"
	ReasonFailedHealthChecks       = "Target.FailedHealthChecks"
	ReasonDeregistrationInProgress = "Target.DeregistrationInProgress"
	ReasonNotRegistered            = "Target.NotRegistered"
	ReasonHealthCheckDisabled      = "Target.HealthCheckDisabled"
	ReasonInternalError            = "Elb.InternalError"
)

// TargetHealth is the health of one target, as DescribeTargetHealth
// reports it.
type TargetHealth struct {
	// TargetGroupID and TargetID name the target.
	TargetGroupID string
	TargetID      string
	// State is the target's health state.
	State State
	// Reason is the reason code ("" when healthy).
	Reason string
	// Description is AWS's text for the reason, e.g. "Health checks
	// failed with these codes: [500]" ("" when healthy).
	Description string
}

// ListenerStatus is the state of one listener of the last snapshot.
type ListenerStatus struct {
	// LoadBalancerID and ListenerID name the listener.
	LoadBalancerID string
	ListenerID     string
	// Protocol is the listener's protocol.
	Protocol string
	// Addr is the address the listener is bound to (with the port the
	// system picked for port 0), or the one it failed to bind.
	Addr string
	// Err is nil when the listener serves its configuration of the last
	// snapshot, otherwise why not: a *BindError, or an invalid
	// configuration wrapping errdefs.ErrInvalidArgument (see Apply for
	// what still serves then).
	Err error
}
