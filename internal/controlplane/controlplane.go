// Package controlplane assembles Berth's control plane from its parts: the
// embedded store, the admin credentials, the AWS API front door and the
// service handlers. `berth up`, `berth server` and the end-to-end tests all
// start Berth through it, so they run the same wiring.
package controlplane

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"golang.org/x/sync/errgroup"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api"
	agentsrv "github.com/berthdev/berth/internal/api/agent"
	"github.com/berthdev/berth/internal/api/ecr"
	"github.com/berthdev/berth/internal/api/ecs"
	"github.com/berthdev/berth/internal/api/elbv2"
	"github.com/berthdev/berth/internal/api/sigv4"
	"github.com/berthdev/berth/internal/controller"
	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/launch"
	"github.com/berthdev/berth/internal/lb"
	"github.com/berthdev/berth/internal/registry"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/bolt"
)

// Defaults.
const (
	DefaultListen  = "127.0.0.1:4566"
	DefaultRegion  = "us-east-1"
	DefaultAccount = "000000000000"
	storeFile      = "state.db"
)

// Config configures a control plane. Validate fills defaults.
type Config struct {
	// Listen is the TCP address of the API endpoint.
	Listen string
	// DataDir holds the store, the admin key, registry blobs (registry/) and logs.
	DataDir string
	Region  string
	Account string
	// AdminKey, when set, is used instead of the stored or generated key.
	AdminKey AdminKey
	// JoinToken, when set, is the token agents must present instead of the
	// stored or generated one.
	JoinToken string
	// TaskRetention is how long STOPPED tasks stay describable; 0 means
	// controller.DefaultTaskRetention (one hour, as ECS).
	TaskRetention time.Duration
	// TaskReapInterval is how often stopped tasks are reaped; 0 means a minute.
	TaskReapInterval time.Duration
	// AgentDisconnectGrace is how long an agent that stopped polling still
	// counts as connected; 0 means the agent server's default.
	AgentDisconnectGrace time.Duration
	// ServiceHealthWait is how long a service task without a health check
	// runs before it counts as healthy; 0 means ECS's 40 seconds.
	ServiceHealthWait time.Duration
	// RegistryHost is host[:port] of the registry as image references name
	// it (repositoryUri, docker login). Empty means the listen address, with
	// 127.0.0.1 for an unspecified IP. Agents on other hosts need a name
	// they can reach, and Docker treats only 127.0.0.0/8 as an insecure
	// (plain HTTP) registry by default.
	RegistryHost string
	// RegistryGCGrace keeps unreferenced registry blobs this long; 0 means
	// the registry's default (an hour).
	RegistryGCGrace time.Duration
	// LifecycleInterval is how often ECR lifecycle policies are applied; 0
	// means the default (a minute).
	LifecycleInterval time.Duration
	// HostsFile is the hosts file in which the load balancers' DNS names
	// are kept: "" means /etc/hosts when it is writable (else none), "-"
	// none.
	HostsFile string
	// Insecure skips SigV4 verification. Development only; never the default.
	Insecure bool
	Logger   *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Validate checks cfg and fills defaults.
func (c *Config) Validate() error {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DataDir == "" {
		return errors.New("controlplane: a data directory is required")
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.Account == "" {
		c.Account = DefaultAccount
	}
	if len(c.Account) != 12 || !isDigits(c.Account) {
		return fmt.Errorf("controlplane: account id %q must be 12 digits", c.Account)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// ControlPlane is a started control plane: its store is open and its
// listener bound; Serve answers requests.
type ControlPlane struct {
	cfg      Config
	store    store.Store
	listener net.Listener
	http     *http.Server
	key      AdminKey
	token    string
	agents   *agentsrv.Server
	services *controller.Services
	registry *registry.Registry
	balancer *lb.Balancer
	lbs      *controller.LoadBalancers
	elbReap  *elbv2.Reaper
	// KeyCreated reports that this start generated a new admin key.
	KeyCreated bool
	// CredentialsFile and EnvFile are the profile files written for users.
	CredentialsFile, EnvFile string
	log                      *slog.Logger
}

// Open opens the store, loads or creates the admin key, and binds the
// listener. Close (or Serve returning) releases them.
func Open(cfg Config) (*ControlPlane, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "controlplane")
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	key, created, err := loadOrCreateKey(cfg.DataDir, cfg.AdminKey)
	if err != nil {
		return nil, err
	}
	token, err := loadOrCreateJoinToken(cfg.DataDir, cfg.JoinToken)
	if err != nil {
		return nil, err
	}
	st, err := bolt.Open(filepath.Join(cfg.DataDir, storeFile), bolt.Options{Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	cp := &ControlPlane{cfg: cfg, store: st, key: key, token: token, KeyCreated: created, log: log}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	cp.listener = ln
	fail := func(err error) (*ControlPlane, error) {
		ln.Close()
		st.Close()
		return nil, err
	}
	reg := prometheus.NewRegistry()
	regKey, err := loadOrCreateRegistryKey(cfg.DataDir)
	if err != nil {
		return fail(err)
	}
	cp.registry, err = registry.Open(registry.Config{
		Store: st, Dir: filepath.Join(cfg.DataDir, "registry"), Host: registryHost(cfg.RegistryHost, ln.Addr()),
		Region: cfg.Region, Account: cfg.Account, TokenKey: regKey, GCGrace: cfg.RegistryGCGrace,
		Now: cfg.Now, Logger: cfg.Logger, Metrics: reg,
	})
	if err != nil {
		return fail(fmt.Errorf("opening the registry: %w", err))
	}
	cp.agents, err = agentsrv.New(agentsrv.Config{Store: st, Region: cfg.Region, Account: cfg.Account, Token: token, Now: cfg.Now, Logger: cfg.Logger, DisconnectGrace: cfg.AgentDisconnectGrace, Registry: cp.registry})
	if err != nil {
		return fail(err)
	}
	ecsSvc, err := ecs.New(ecs.Config{Store: st, Region: cfg.Region, Account: cfg.Account, Now: cfg.Now, Logger: cfg.Logger, Connected: cp.agents.Connected})
	if err != nil {
		return fail(err)
	}
	ecrSvc, err := ecr.New(ecr.Config{Store: st, Registry: cp.registry, Region: cfg.Region, Account: cfg.Account, Now: cfg.Now, Logger: cfg.Logger})
	if err != nil {
		return fail(err)
	}
	certDir := filepath.Join(cfg.DataDir, "certificates")
	elbSvc, err := elbv2.New(elbv2.Config{Store: st, Region: cfg.Region, Account: cfg.Account, CertificateDir: certDir, Now: cfg.Now, Logger: cfg.Logger})
	if err != nil {
		return fail(err)
	}
	cp.elbReap, err = elbv2.NewReaper(elbv2.ReaperConfig{Store: st, Now: cfg.Now, Logger: cfg.Logger})
	if err != nil {
		return fail(err)
	}
	cp.lbs = &controller.LoadBalancers{Store: st, ARNs: state.ARNs{Region: cfg.Region, Account: cfg.Account}, CertificateDir: certDir,
		Hosts: hostsFile(cfg.HostsFile, cfg.DataDir, log), Logger: cfg.Logger}
	stickKey, err := stickinessKey(st)
	if err != nil {
		return fail(err)
	}
	cp.balancer, err = lb.New(lb.Config{Logger: cfg.Logger, Now: cfg.Now, OnHealth: cp.lbs.OnHealth, Metrics: reg, StickinessKey: stickKey})
	if err != nil {
		return fail(err)
	}
	cp.lbs.Balancer = cp.balancer
	cp.services = &controller.Services{
		Store:      st,
		Launcher:   &launch.Launcher{ARNs: state.ARNs{Region: cfg.Region, Account: cfg.Account}, Now: cfg.Now, Connected: cp.agents.Connected},
		Now:        cfg.Now,
		Logger:     cfg.Logger,
		HealthWait: cfg.ServiceHealthWait,
	}
	cp.services.Metrics = controller.NewServiceMetrics(reg, cp.services)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "berth_store_revision",
			Help: "The latest committed revision of the control plane's store.",
		}, func() float64 { return float64(st.Revision()) }),
	)
	front, err := api.New(api.Config{
		Metrics:       api.NewMetrics(reg),
		Region:        cfg.Region,
		Account:       cfg.Account,
		Auth:          &sigv4.Verifier{Lookup: cp.lookupKey, Now: cfg.Now},
		Insecure:      cfg.Insecure,
		Logger:        cfg.Logger,
		Services:      []*api.JSONService{ecsSvc.JSONService(), ecrSvc.JSONService()},
		QueryServices: []*api.QueryService{elbSvc.QueryService()},
		Handlers:      map[string]http.Handler{agentapi.PathPrefix + "/": cp.agents, "/v2/": cp.registry},
	})
	if err != nil {
		return fail(err)
	}
	cp.http = &http.Server{
		Handler:           front,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	cp.CredentialsFile, cp.EnvFile, err = writeProfiles(cfg.DataDir, key, cp.Endpoint(), cfg.Region)
	if err != nil {
		return fail(fmt.Errorf("writing credential profiles: %w", err))
	}
	if cfg.Insecure {
		log.Warn("signature verification is OFF: any request is accepted as the admin")
	}
	return cp, nil
}

// lookupKey finds the secret of an access key; only the admin key exists.
func (cp *ControlPlane) lookupKey(_ context.Context, id string) (sigv4.Credentials, bool) {
	if subtle.ConstantTimeCompare([]byte(id), []byte(cp.key.AccessKeyID)) != 1 {
		return sigv4.Credentials{}, false
	}
	return sigv4.Credentials{AccessKeyID: cp.key.AccessKeyID, SecretAccessKey: cp.key.SecretAccessKey}, true
}

// hostsFile is where the load balancers' DNS names go: configured ("-" for
// nowhere), or /etc/hosts when this process may write it.
func hostsFile(configured, dataDir string, log *slog.Logger) *controller.HostsFile {
	path := configured
	switch configured {
	case "-":
		return nil
	case "":
		path = "/etc/hosts"
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			log.Info("load balancer DNS names will not resolve on this host: the hosts file is not writable (run as root, or pass a writable hosts file)", "path", path)
			return nil
		}
		f.Close()
	}
	return &controller.HostsFile{Path: path, Owner: dataDir}
}

// registryHost is the configured registry host, or the listen address with
// 127.0.0.1 standing in for an unspecified IP.
func registryHost(configured string, addr net.Addr) string {
	if configured != "" {
		return configured
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// RegistryHost is host:port of the registry, as repositoryUri names it.
func (cp *ControlPlane) RegistryHost() string { return cp.registry.Host() }

// Endpoint is the URL clients use, e.g. http://127.0.0.1:4566.
func (cp *ControlPlane) Endpoint() string { return "http://" + cp.listener.Addr().String() }

// JoinToken is the token agents present to join this control plane.
func (cp *ControlPlane) JoinToken() string { return cp.token }

// Key is the admin key.
func (cp *ControlPlane) Key() AdminKey { return cp.key }

// Region is the served region.
func (cp *ControlPlane) Region() string { return cp.cfg.Region }

// Account is the served account id.
func (cp *ControlPlane) Account() string { return cp.cfg.Account }

// DataDir is the data directory.
func (cp *ControlPlane) DataDir() string { return cp.cfg.DataDir }

// Serve answers requests until ctx ends, then shuts down gracefully
// (in-flight requests get up to 10 seconds) and closes the store.
func (cp *ControlPlane) Serve(ctx context.Context) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	// Requests (agents' long polls above all) see the shutdown at once
	// instead of holding it open until their own timeouts.
	reqCtx, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	cp.http.BaseContext = func(net.Listener) context.Context { return reqCtx }
	errc := make(chan error, 1)
	go func() { errc <- cp.http.Serve(cp.listener) }()
	loops, loopCtx := errgroup.WithContext(ctx)
	loops.Go(func() error { return cp.agents.Run(loopCtx) })
	reaper := &controller.Reaper{Store: cp.store, Retention: cp.cfg.TaskRetention, Interval: cp.cfg.TaskReapInterval, Now: cp.cfg.Now, Logger: cp.cfg.Logger}
	loops.Go(func() error { return reaper.Run(loopCtx) })
	loops.Go(func() error { return cp.services.Run(loopCtx) })
	loops.Go(func() error { return cp.registry.Run(loopCtx) })
	loops.Go(func() error { return cp.balancer.Run(loopCtx) })
	loops.Go(func() error { return cp.lbs.Run(loopCtx) })
	loops.Go(func() error { return cp.elbReap.Run(loopCtx) })
	lifecycle := &controller.Lifecycle{Store: cp.store, Images: cp.registry, Interval: cp.cfg.LifecycleInterval, Now: cp.cfg.Now, Logger: cp.cfg.Logger}
	loops.Go(func() error { return lifecycle.Run(loopCtx) })
	cp.log.Info("serving", "endpoint", cp.Endpoint(), "region", cp.cfg.Region, "account", cp.cfg.Account, "data_dir", cp.cfg.DataDir)
	var err error
	select {
	case err = <-errc:
	case <-loopCtx.Done():
		cancelRequests()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = cp.http.Shutdown(sctx)
		cancel()
		<-errc
	}
	stop()
	if lerr := loops.Wait(); err == nil || errors.Is(err, http.ErrServerClosed) {
		if lerr != nil {
			err = lerr
		}
	}
	_ = cp.balancer.Close()
	if cp.lbs.Hosts != nil {
		if herr := cp.lbs.Hosts.Clear(); herr != nil {
			cp.log.Warn("removing the load balancers from the hosts file", "err", herr)
		}
	}
	if cerr := cp.store.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	cp.log.Info("stopped")
	return err
}

// Store is the control plane's store, for in-process test harnesses that
// seed objects directly.
func (cp *ControlPlane) Store() store.Store { return cp.store }

// Close releases the listener and store without serving.
func (cp *ControlPlane) Close() error {
	cp.listener.Close()
	return cp.store.Close()
}

// LoadBalancerAddress is the loopback address whose listeners serve load
// balancer name (its DNS name resolves there where the hosts file is kept).
func (cp *ControlPlane) LoadBalancerAddress(ctx context.Context, name string) (string, error) {
	var addr string
	err := cp.store.View(ctx, func(tx store.ReadTx) error {
		rec, ok, err := state.Get[state.LoadBalancer](tx, state.LoadBalancerKey(name))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("load balancer %q: %w", name, errdefs.ErrNotFound)
		}
		addr = rec.Address
		return nil
	})
	return addr, err
}
