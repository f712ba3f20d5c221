// Package lb is Berth's Application Load Balancer data plane: listeners
// that accept HTTP/1.1 and HTTP/2 (over TLS), rules that pick an action for
// each request, target groups that spread forwarded requests over their
// targets, health checks, and draining of deregistered targets.
//
// The package knows nothing of the store or of the ELBv2 API shapes. Its
// input is a Snapshot of plain Go values that the wiring compiles from the
// stored configuration and hands to Balancer.Apply, as often as it likes:
// every Apply replaces the whole configuration at once. Listeners whose
// socket settings did not change keep their sockets and connections; their
// routing is swapped with one atomic pointer store, so a request sees
// either the old rules or the new ones, never a mix, and no request or
// keep-alive connection is dropped. Its output is the OnHealth callback
// (every change of a target's health state, with AWS's reason codes),
// Balancer.Health (the current state of a group's targets, what
// DescribeTargetHealth answers), Balancer.Status (which listeners serve and
// why the others do not) and Prometheus metrics.
//
// Target health follows ALB. A target starts in initial
// (Elb.InitialHealthChecking) and becomes healthy once it passes one health
// check ("After your target is registered, it must pass one health check to
// be considered healthy", ALB user guide, Health checks for your target
// groups); after that it takes UnhealthyThreshold consecutive failures to
// become unhealthy and HealthyThreshold consecutive successes to become
// healthy again:
//
//	           1 success                  UnhealthyThreshold failures
//	initial ─────────────► healthy ◄──────────────────────────► unhealthy
//	   │                             HealthyThreshold successes      ▲
//	   └─────────────────────────────────────────────────────────────┘
//	                     UnhealthyThreshold failures
//
//	any state ──(Target.Draining)──► draining ──(no request in flight,
//	                                              or DrainUntil passed)──► unused
//
// Requests go to the healthy targets of a group that are not draining. A
// group with no healthy target fails open: its requests go to all its
// targets that are not draining, initial and unhealthy alike (ALB: "If a
// target group contains only unhealthy registered targets, the load
// balancer routes requests to all those targets, regardless of their health
// status").
//
// A target group with Stickiness, or a forward with GroupStickiness,
// keeps a client on one target or group with ALB's cookies (sticky.go).
//
// Serving. HTTP/1.x is served by the package itself (server.go), one
// goroutine per client connection doing all of a request's work, and
// forwarded to plain-HTTP targets by its own HTTP/1.1 client (upstream.go,
// upstream_h1.go): keep-alive connections pooled per target, the request
// written straight from the client's, the response headers parsed straight
// into the client's. net/http's server and transport spend goroutine
// hand-offs per request that cost, in front of fast targets, as much as the
// proxying; HTTP/2 clients (TLS with ALPN) still go to net/http's server,
// and HTTPS targets to its Transport. One consequence: an HTTP/1 client
// that leaves is noticed when its answer is written, not while the target
// works on it.
// Client and target TCP connections read and write with raw system calls
// (fastconn.go), which spares every call the scheduler's bookkeeping.
//
// The answers the load balancer itself gives copy ALB's, with its HTML
// bodies: 400 for a malformed request, a request line or a header over 16
// KiB or request headers over 64 KiB, 405 for TRACE, 502 when
// the target refuses or drops the connection or sends response headers
// over 32 KiB, 503 when the target group has no target to send to, 504
// when the target does not answer within the idle timeout or cannot be
// connected to within 10 seconds (ALB user guide, Troubleshoot your
// Application Load Balancers, and Quotas: HTTP headers).
package lb
