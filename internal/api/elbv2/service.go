// Package elbv2 implements the Elastic Load Balancing v2 API (Application
// Load Balancers) over Berth's store: one file per resource. Handlers
// validate requests with ELB's own rules on top of the model's, read and
// write the records package state lays out (state/elb.go), and answer with
// ELB's error codes. Berth's data plane (package lb) serves what these
// records describe: it watches /elb/, binds each load balancer's listeners
// on the load balancer's loopback address, and reports load balancer state
// and target health back into the same records.
//
// Berth has no VPC, no ACM and no Availability Zones; where the API needs
// them it echoes what it is given (subnets, security groups, VPC ids) and
// makes up the rest (zones from the region, "vpc-berth"). Certificates are
// PEM files: see Config.CertificateDir.
package elbv2

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api"
	"github.com/berthdev/berth/internal/api/paging"
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// Config configures the ELBv2 API.
type Config struct {
	Store   store.Store
	Region  string
	Account string
	// CertificateDir holds the certificates HTTPS listeners name: the ARN
	// arn:aws:acm:<region>:<account>:certificate/<name> is the PEM pair
	// <CertificateDir>/<name>.crt and <name>.key (state.CertificateFiles).
	// Empty means no certificates: HTTPS listeners are refused with
	// CertificateNotFound.
	CertificateDir string
	// Now is the clock; timestamps in records come from it.
	Now func() time.Time
	// Rand is where resource ids come from; nil means crypto/rand.
	Rand   io.Reader
	Logger *slog.Logger
}

// Service answers ELBv2 operations. Operations it does not provide are
// answered by the embedded Unimplemented with an error naming them.
type Service struct {
	elbv2types.Unimplemented
	store   store.Store
	arns    state.ARNs
	region  string
	certDir string
	now     func() time.Time
	rand    io.Reader
	log     *slog.Logger
}

// New returns the ELBv2 API over cfg.Store.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Region == "" || cfg.Account == "" {
		return nil, fmt.Errorf("elbv2: store, region and account are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{
		store:   cfg.Store,
		arns:    state.ARNs{Region: cfg.Region, Account: cfg.Account},
		region:  cfg.Region,
		certDir: cfg.CertificateDir,
		now:     cfg.Now,
		rand:    cfg.Rand,
		log:     cfg.Logger.With("component", "elbv2_api"),
	}, nil
}

// QueryService describes the ELBv2 API to the front door. Operations Berth
// does not implement answer InvalidAction, as AWS answers an action it
// does not know.
func (s *Service) QueryService() *api.QueryService {
	return &api.QueryService{
		SigningName:        elbv2types.SigningName,
		Version:            elbv2types.APIVersion,
		Namespace:          elbv2types.XMLNamespace,
		ValidationCode:     "ValidationError",
		NotImplementedCode: "InvalidAction",
		ServerErrorCode:    "InternalFailure",
		Dispatch: func(ctx context.Context, op string, form url.Values) (any, error) {
			return elbv2types.DispatchQuery(ctx, s, op, form)
		},
		ResultWrapper: elbv2types.ResultWrapper,
	}
}

// Errors with ELB's wording, shared by several handlers.

// validation is ELB's ValidationError, which the model has no shape for.
func validation(format string, args ...any) error {
	return awsmodel.NewAPIError("ValidationError", 400, format, args...)
}

func invalidConfig(format string, args ...any) error {
	return elbv2types.NewInvalidConfigurationRequestException(format, args...)
}

func invalidAction(format string, args ...any) error {
	return elbv2types.NewInvalidLoadBalancerActionException(format, args...)
}

func lbNotFound() error {
	return elbv2types.NewLoadBalancerNotFoundException("One or more load balancers not found")
}

func tgNotFound() error {
	return elbv2types.NewTargetGroupNotFoundException("One or more target groups not found")
}

func listenerNotFound() error {
	return elbv2types.NewListenerNotFoundException("One or more listeners not found")
}

func ruleNotFound() error {
	return elbv2types.NewRuleNotFoundException("One or more rules not found")
}

// arnKinds are what each resource type is called in messages, and the
// resource part its ARNs start with.
var arnKinds = map[string]struct{ what, resource string }{
	state.ELBLoadBalancer: {"load balancer", "loadbalancer/"},
	state.ELBTargetGroup:  {"target group", "targetgroup/"},
	state.ELBListener:     {"listener", "listener/"},
	state.ELBRule:         {"listener rule", "listener-rule/"},
}

// resolve parses arn as an ARN of resource type typ. found is false for an
// ELB ARN of that type that cannot name anything here (another region or
// account, a network load balancer); an ARN of the wrong shape is a
// ValidationError.
func (s *Service) resolve(arn, typ string) (res state.ELBResource, found bool, err error) {
	kind := arnKinds[typ]
	if r, ok := s.arns.ParseELB(arn); ok {
		if r.Type == typ {
			return r, true, nil
		}
		return r, false, validation("'%s' is not a valid %s ARN", arn, kind.what)
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && parts[0] == "arn" && parts[2] == "elasticloadbalancing" && strings.HasPrefix(parts[5], kind.resource) {
		return state.ELBResource{}, false, nil
	}
	return state.ELBResource{}, false, validation("'%s' is not a valid %s ARN", arn, kind.what)
}

// loadBalancer reads the load balancer arn names, or answers
// LoadBalancerNotFound.
func (s *Service) loadBalancer(tx store.ReadTx, arn string) (*state.LoadBalancer, error) {
	res, found, err := s.resolve(arn, state.ELBLoadBalancer)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, lbNotFound()
	}
	lb, ok, err := state.Get[state.LoadBalancer](tx, state.LoadBalancerKey(res.Name))
	if err != nil {
		return nil, err
	}
	if !ok || lb.ID != res.ID {
		return nil, lbNotFound()
	}
	return lb, nil
}

// targetGroup reads the target group arn names, or answers
// TargetGroupNotFound.
func (s *Service) targetGroup(tx store.ReadTx, arn string) (*state.TargetGroup, error) {
	res, found, err := s.resolve(arn, state.ELBTargetGroup)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, tgNotFound()
	}
	tg, ok, err := state.Get[state.TargetGroup](tx, state.TargetGroupKey(res.Name))
	if err != nil {
		return nil, err
	}
	if !ok || tg.ID != res.ID {
		return nil, tgNotFound()
	}
	return tg, nil
}

// listener reads the listener arn names, or answers ListenerNotFound.
func (s *Service) listener(tx store.ReadTx, arn string) (*state.Listener, error) {
	res, found, err := s.resolve(arn, state.ELBListener)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, listenerNotFound()
	}
	l, ok, err := state.Get[state.Listener](tx, state.ListenerKey(res.LoadBalancerID, res.ID))
	if err != nil {
		return nil, err
	}
	if !ok || l.ListenerArn != arn {
		return nil, listenerNotFound()
	}
	return l, nil
}

// rule reads the rule arn names, or answers RuleNotFound.
func (s *Service) rule(tx store.ReadTx, arn string) (*state.Rule, error) {
	res, found, err := s.resolve(arn, state.ELBRule)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ruleNotFound()
	}
	r, ok, err := state.Get[state.Rule](tx, state.RuleKey(res.ListenerID, res.ID))
	if err != nil {
		return nil, err
	}
	if !ok || r.RuleArn != arn {
		return nil, ruleNotFound()
	}
	return r, nil
}

// loadBalancerOf reads the load balancer a listener belongs to.
func (s *Service) loadBalancerOf(tx store.ReadTx, l *state.Listener) (*state.LoadBalancer, error) {
	return s.loadBalancer(tx, l.LoadBalancerArn)
}

// newID returns 16 random hex digits, the id at the end of ELB ARNs.
func (s *Service) newID() (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("reading random id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// newDNSID returns the 10-digit number in a load balancer's DNS name.
func (s *Service) newDNSID() (string, error) {
	n, err := rand.Int(s.rand, big.NewInt(9_000_000_000))
	if err != nil {
		return "", fmt.Errorf("reading random id: %w", err)
	}
	return fmt.Sprint(n.Int64() + 1_000_000_000), nil
}

// maxPageSize is the largest PageSize the Describe operations take, and
// what they return when none is given.
const maxPageSize = 400

// page is one request's pagination (paging.Page).
type page = paging.Page

// newPage checks PageSize (nil means absent: a full page) and decodes
// Marker. Markers are opaque to clients: the last key returned,
// base64url-encoded.
func newPage(pageSize *int32, marker string) (page, error) {
	p := page{Limit: maxPageSize}
	if pageSize != nil {
		if n := *pageSize; n < 1 || n > maxPageSize {
			return p, validation("1 validation error detected: Value '%d' at 'pageSize' failed to satisfy constraint: Member must have value between 1 and %d", n, maxPageSize)
		}
		p.Limit = int(*pageSize)
	}
	if marker != "" {
		after, ok := paging.Decode(marker)
		if !ok {
			return p, validation("The marker '%s' is not valid: pass the NextMarker of the previous response unchanged", marker)
		}
		p.After = after
	}
	return p, nil
}

// scan walks keys under prefix after p.After in key order (paging.Walk).
func scan(tx store.ReadTx, prefix string, p page, keep func(store.KV) (bool, error)) (string, error) {
	return paging.Walk(tx.List, prefix, p, keep)
}

// pageSlice returns the items of a sorted in-memory list after p.After
// (compared by key) and the next marker.
func pageSlice[T any](items []T, key func(T) string, p page) ([]T, string) {
	i := 0
	if p.After != "" {
		for i < len(items) && key(items[i]) <= p.After {
			i++
		}
	}
	items = items[i:]
	if len(items) > p.Limit {
		return items[:p.Limit], paging.Token(key(items[p.Limit-1]))
	}
	return items, ""
}

func timePtr(t time.Time) *awsmodel.Time { return awsmodel.NewTime(t) }
