package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// AdminKey is the access key pair Berth's admin signs requests with.
type AdminKey struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// Files in the data directory that hold the admin key.
const (
	adminKeyFile    = "admin-key.json"
	credentialsFile = "credentials" // AWS shared-credentials format, profile "berth"
	envFile         = "env"         // shell exports: source it
	// ProfileName is the profile written to the credentials file.
	ProfileName = "berth"
)

// loadOrCreateKey returns the admin key: the explicit one if given, else
// the one stored in dir, else a new random one that it stores (0600).
func loadOrCreateKey(dir string, explicit AdminKey) (AdminKey, bool, error) {
	if explicit.AccessKeyID != "" || explicit.SecretAccessKey != "" {
		if explicit.AccessKeyID == "" || explicit.SecretAccessKey == "" {
			return AdminKey{}, false, errors.New("BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY must be set together")
		}
		return explicit, false, nil
	}
	path := filepath.Join(dir, adminKeyFile)
	buf, err := os.ReadFile(path)
	switch {
	case err == nil:
		var k AdminKey
		if err := json.Unmarshal(buf, &k); err != nil || k.AccessKeyID == "" || k.SecretAccessKey == "" {
			return AdminKey{}, false, fmt.Errorf("%s is damaged: remove it to create a new admin key", path)
		}
		return k, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return AdminKey{}, false, err
	}
	k, err := newKey()
	if err != nil {
		return AdminKey{}, false, err
	}
	buf, _ = json.MarshalIndent(k, "", "  ")
	if err := writeFileAtomic(path, append(buf, '\n'), 0o600); err != nil {
		return AdminKey{}, false, err
	}
	return k, true, nil
}

// joinTokenFile holds the token agents present to join.
const joinTokenFile = "join-token"

// loadOrCreateJoinToken returns the explicit token, else the stored one,
// else a new random one that it stores (0600).
func loadOrCreateJoinToken(dir, explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	path := filepath.Join(dir, joinTokenFile)
	buf, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(buf))) > 0 {
		return strings.TrimSpace(string(buf)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	tok := "berth-join-" + base64.RawURLEncoding.EncodeToString(b[:])
	return tok, writeFileAtomic(path, []byte(tok+"\n"), 0o600)
}

// newKey makes a key shaped like an AWS long-term key: AKIA + 16 base32
// characters, and a 40-character secret.
func newKey() (AdminKey, error) {
	var id [10]byte
	var secret [30]byte
	if _, err := rand.Read(id[:]); err != nil {
		return AdminKey{}, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return AdminKey{}, err
	}
	return AdminKey{
		AccessKeyID:     "AKIA" + base32.StdEncoding.EncodeToString(id[:]),
		SecretAccessKey: base64.StdEncoding.EncodeToString(secret[:]),
	}, nil
}

// writeProfiles writes the key as an AWS shared-credentials file and as a
// shell file of exports, both readable by the owner only.
func writeProfiles(dir string, k AdminKey, endpoint, region string) (credPath, envPath string, err error) {
	credPath = filepath.Join(dir, credentialsFile)
	envPath = filepath.Join(dir, envFile)
	cred := fmt.Sprintf("[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n", ProfileName, k.AccessKeyID, k.SecretAccessKey)
	if err := writeFileAtomic(credPath, []byte(cred), 0o600); err != nil {
		return "", "", err
	}
	var env strings.Builder
	fmt.Fprintf(&env, "# Berth admin credentials and endpoint. Use: source %s\n", envPath)
	fmt.Fprintf(&env, "export AWS_ACCESS_KEY_ID=%s\n", k.AccessKeyID)
	fmt.Fprintf(&env, "export AWS_SECRET_ACCESS_KEY=%s\n", k.SecretAccessKey)
	fmt.Fprintf(&env, "export AWS_REGION=%s\nexport AWS_DEFAULT_REGION=%s\n", region, region)
	fmt.Fprintf(&env, "export AWS_ENDPOINT_URL=%s\n", endpoint)
	fmt.Fprintf(&env, "unset AWS_SESSION_TOKEN AWS_PROFILE\n")
	if err := writeFileAtomic(envPath, []byte(env.String()), 0o600); err != nil {
		return "", "", err
	}
	return credPath, envPath, nil
}

// writeFileAtomic writes via a temporary file, fsync and rename, so a crash
// leaves the old file or the new one, never half of one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// registryKeyFile holds the key that signs registry tokens, so the
// passwords `aws ecr get-login-password` hands out survive a restart.
const registryKeyFile = "registry-token.key"

// loadOrCreateRegistryKey returns the registry token key stored in dir,
// creating a random 32-byte one (0600) on first use.
func loadOrCreateRegistryKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, registryKeyFile)
	buf, err := os.ReadFile(path)
	if err == nil {
		key, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(string(buf)))
		if derr != nil || len(key) < 32 {
			return nil, fmt.Errorf("%s is damaged: remove it to create a new key (registry logins then need a new get-login-password)", path)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return key, writeFileAtomic(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
}

// stickinessKey returns the key of the load balancers' stickiness cookies,
// which the store keeps (state.StickinessKey) so that sticky clients keep
// their targets across restarts; the first start creates it.
func stickinessKey(st store.Store) ([]byte, error) {
	candidate := make([]byte, 32)
	if _, err := rand.Read(candidate); err != nil {
		return nil, err
	}
	var key []byte
	_, err := st.Update(context.Background(), func(tx store.Tx) error {
		var err error
		key, err = state.StickinessKey(tx, candidate)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load balancer stickiness key: %w", err)
	}
	return key, nil
}
