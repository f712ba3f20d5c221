package agent

import (
	"context"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/runtime"
)

// Timings of the control plane's registry credentials.
const (
	// registryRefreshBefore is how long before they expire cached
	// credentials are fetched again, so that a pull never starts with
	// credentials about to lapse.
	registryRefreshBefore = 10 * time.Minute
	// registryNoneRecheck is how long an answer without credentials is
	// believed before the control plane is asked again.
	registryNoneRecheck = 5 * time.Minute
	// registrationWait bounds how long a pull from a registry host waits
	// for the first registration, which tells whether the host is the
	// control plane's; past it the pull goes on without Berth credentials.
	registrationWait = 30 * time.Second
)

// berthRegistry holds the pull credentials for the control plane's own
// registry (Berth's ECR), which the agent fetches from the control plane
// when it first pulls from one of its hosts and caches until shortly
// before they expire. Its hosts are those the control plane announces at
// registration and the host of the endpoint the agent talks to (the
// registry is served there under /v2/, and images may name it as the agent
// does). Credentials are never logged.
type berthRegistry struct {
	client *agentapi.Client
	clock  Clock
	log    *slog.Logger
	// endpoint are the names images may give the control plane's endpoint.
	endpoint []string
	// sem serialises fetches (a slot taken with ctx), so that pulls starting
	// together share one.
	sem chan struct{}

	mu sync.Mutex
	// announced are the registry hosts named at the last registration, in
	// the control plane's order.
	announced []string
	// logins are the credentials of the last successful fetch, by host.
	logins map[string]agentapi.RegistryLogin
	// first is the host of the first login answered: the endpoint's host
	// uses it when the control plane names its registry differently.
	first string
	// refreshAt is when the logins are to be fetched again (zero: at once).
	refreshAt time.Time
}

func newBerthRegistry(client *agentapi.Client, endpoint string, clock Clock, log *slog.Logger) *berthRegistry {
	return &berthRegistry{
		client:   client,
		clock:    clock,
		log:      log,
		endpoint: endpointHosts(endpoint),
		sem:      make(chan struct{}, 1),
		logins:   map[string]agentapi.RegistryLogin{},
	}
}

// registered records the registry hosts the control plane announced and
// drops the cached credentials, which were issued to the instance as it
// was before.
func (b *berthRegistry) registered(hosts []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.announced = b.announced[:0]
	for _, h := range hosts {
		if h = normalHost(registryHost(h)); h != "" {
			b.announced = append(b.announced, h)
		}
	}
	clear(b.logins)
	b.first, b.refreshAt = "", time.Time{}
}

// owns reports whether images on host are pulled from the control plane's
// registry.
func (b *berthRegistry) owns(host string) bool {
	host = normalHost(host)
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Contains(b.endpoint, host) || slices.Contains(b.announced, host)
}

// invalidate makes the next lookup fetch fresh credentials (the registry
// refused the cached ones).
func (b *berthRegistry) invalidate() {
	b.mu.Lock()
	b.refreshAt = time.Time{}
	b.mu.Unlock()
}

// lookup returns the credentials for pulling from host, one of the control
// plane's registry hosts, fetching them first when none are cached or they
// are due for renewal. It returns nil when the control plane has none to
// give (no registry, an older control plane, an unreachable one): the pull
// then goes on without.
func (b *berthRegistry) lookup(ctx context.Context, host, instanceID string) *runtime.RegistryAuth {
	host = normalHost(host)
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return nil
	}
	defer func() { <-b.sem }()
	b.mu.Lock()
	due := !b.clock.Now().Before(b.refreshAt)
	b.mu.Unlock()
	if due && instanceID != "" {
		b.fetch(ctx, instanceID)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.logins[host]
	if !ok && slices.Contains(b.endpoint, host) && b.first != "" {
		l, ok = b.logins[b.first], true
	}
	if !ok {
		return nil
	}
	return &runtime.RegistryAuth{Username: l.Username, Password: l.Password, ServerAddress: host}
}

// fetch asks the control plane for credentials and caches them. After a
// failure the cache keeps what it had (still usable until it expires) and
// the next lookup asks again.
func (b *berthRegistry) fetch(ctx context.Context, instanceID string) {
	creds, err := b.client.RegistryCredentials(ctx, instanceID)
	if err != nil {
		if ctx.Err() == nil {
			b.log.Warn("registry credentials unavailable; pulling without them", "err", err)
		}
		return
	}
	now := b.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.logins)
	b.first = ""
	b.refreshAt = now.Add(registryNoneRecheck)
	for _, l := range creds.Registries {
		host := normalHost(registryHost(l.Host))
		if host == "" || l.Password == "" {
			continue
		}
		b.logins[host] = l
		if b.first == "" {
			b.first = host
		}
		// Renew registryRefreshBefore ahead of expiry, or half way for
		// short-lived credentials.
		lifetime := l.ExpiresAt.Sub(now)
		renew := now.Add(lifetime - min(registryRefreshBefore, lifetime/2))
		if renew.Before(b.refreshAt) || b.first == host {
			b.refreshAt = renew
		}
		b.log.Info("registry credentials fetched", "registry", host, "expires_at", l.ExpiresAt.Time)
	}
}

// pullAuth returns the credentials to pull image with: the user's
// (Config.RegistryAuth) for the hosts they name, else the control plane's
// for its registry's hosts, else nil. fromBerth reports the second case,
// in which a refused pull is worth retrying with fresh credentials.
func (a *Agent) pullAuth(ctx context.Context, image string) (auth *runtime.RegistryAuth, fromBerth bool) {
	if a.cfg.RegistryAuth != nil {
		if auth := a.cfg.RegistryAuth(image); auth != nil {
			return auth, false
		}
	}
	host := imageRegistry(image)
	if host == "docker.io" {
		return nil, false
	}
	// Which hosts are the control plane's is learnt at registration, which
	// a task restored at start-up may not have waited for.
	if !a.waitRegistered(ctx, registrationWait) {
		a.log.Warn("not registered yet; pulling without registry credentials", "image", image)
	}
	if !a.registry.owns(host) {
		return nil, false
	}
	return a.registry.lookup(ctx, host, a.InstanceID()), true
}

// waitRegistered waits up to d for the first registration; false means it
// has not happened.
func (a *Agent) waitRegistered(ctx context.Context, d time.Duration) bool {
	select {
	case <-a.registered:
		return true
	default:
	}
	t := a.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-a.registered:
		return true
	case <-ctx.Done():
	case <-t.C():
	}
	return false
}

// isAuthError reports whether a pull failed because the registry refused
// the credentials. The runtime has no error class for it, so this goes by
// the words registries and the Docker Engine use ("unauthorized:
// authentication required", "denied: ...", "no basic auth credentials").
func isAuthError(err error) bool {
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"unauthorized", "authentication required", "no basic auth credentials", "denied", "401"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// endpointHosts are the names an image reference may give the control
// plane's endpoint: its host[:port] as configured, and the bare host when
// the port is the scheme's default.
func endpointHosts(endpoint string) []string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil
	}
	hosts := []string{normalHost(u.Host)}
	if p := u.Port(); (p == "443" && u.Scheme == "https") || (p == "80" && u.Scheme == "http") {
		bare := u.Hostname()
		if strings.Contains(bare, ":") {
			bare = "[" + bare + "]" // IPv6
		}
		hosts = append(hosts, normalHost(bare))
	}
	return hosts
}

// normalHost makes registry hosts comparable: host names are not case
// sensitive.
func normalHost(h string) string { return strings.ToLower(h) }
