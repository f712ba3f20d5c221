package agent

import (
	"errors"
	"net/http"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// Registry is the control plane's container registry as the agent
// protocol uses it: the host images on it are named by, and the tokens
// that let an agent pull from it. *registry.Registry implements it.
type Registry interface {
	// Host is the registry's host[:port] as image references name it.
	Host() string
	// MintToken issues a password for `docker login --username AWS` on
	// behalf of principal, and when it expires.
	MintToken(principal string) (token string, expiresAt time.Time)
}

// RegistryUsername is the user name of every registry login, as in ECR.
const RegistryUsername = "AWS"

// registryHosts are the hosts of the control plane's registry, announced
// at registration.
func (s *Server) registryHosts() []string {
	if s.cfg.Registry == nil {
		return nil
	}
	if h := s.cfg.Registry.Host(); h != "" {
		return []string{h}
	}
	return nil
}

// registryCredentials issues an instance the pull credentials for the
// control plane's registry, minted for the instance's ARN; without a
// registry the list is empty. The password is never logged.
func (s *Server) registryCredentials(w http.ResponseWriter, r *http.Request, id string) {
	var ci *state.ContainerInstance
	err := s.cfg.Store.View(r.Context(), func(tx store.ReadTx) error {
		found, ok, err := lookupInstance(tx, id)
		if err == nil && !ok {
			err = errdefs.ErrNotFound
		}
		ci = found
		return err
	})
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		writeErr(w, http.StatusNotFound, "UnknownInstance", "container instance "+id+" is not registered")
		return
	case err != nil:
		s.log.Error("registry credentials: instance read failed", "instance_id", id, "err", err)
		writeErr(w, http.StatusInternalServerError, "Internal", "reading the container instance failed")
		return
	case !secretMatches(ci.SecretHash, r.Header.Get(agentapi.SecretHeader)):
		writeErr(w, http.StatusUnauthorized, "InstanceSecret", "this call must carry the instance secret issued at registration")
		return
	case ci.Status == state.InstanceInactive:
		writeErr(w, http.StatusGone, "Deregistered", "container instance "+id+" was deregistered")
		return
	}
	s.touch(id, 0)
	out := agentapi.RegistryCredentials{Registries: []agentapi.RegistryLogin{}}
	for _, host := range s.registryHosts() {
		token, expires := s.cfg.Registry.MintToken(ci.ContainerInstanceArn)
		if token == "" {
			continue
		}
		out.Registries = append(out.Registries, agentapi.RegistryLogin{
			Host: host, Username: RegistryUsername, Password: token, ExpiresAt: awsmodel.Time{Time: expires},
		})
		s.log.Debug("registry credentials issued", "instance_id", id, "registry", host, "expires_at", expires)
	}
	// Credentials must not linger in a cache between agent and control plane.
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}
