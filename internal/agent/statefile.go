package agent

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// identity is the agent's persisted identity (StateDir/agent.json).
type identity struct {
	// AgentID names this agent in its containers' labels; it survives
	// re-registration as a new instance.
	AgentID string `json:"agentId"`
	// InstanceID and ContainerInstanceArn are the control plane's names for
	// this host, empty before the first registration.
	InstanceID           string `json:"instanceId,omitempty"`
	ContainerInstanceArn string `json:"containerInstanceArn,omitempty"`
	// InstanceSecret authenticates this agent as that instance; the state
	// directory is therefore readable by its owner only.
	InstanceSecret string `json:"instanceSecret,omitempty"`
	Cluster        string `json:"cluster,omitempty"`
}

// stateStore keeps the agent's identity and one file per task in a
// directory, each written atomically (temporary file, fsync, rename, fsync
// of the directory), so a crash leaves either the old or the new version.
type stateStore struct{ dir string }

func openStateStore(dir string) (*stateStore, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tasks"), 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	return &stateStore{dir: dir}, nil
}

// loadIdentity reads the identity, making a new agent id on first use.
func (s *stateStore) loadIdentity() (identity, error) {
	var id identity
	err := readJSON(filepath.Join(s.dir, "agent.json"), &id)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	if id.AgentID == "" {
		id.AgentID = randomHex(16)
		if err := s.saveIdentity(id); err != nil {
			return id, err
		}
	}
	return id, nil
}

func (s *stateStore) saveIdentity(id identity) error {
	return writeFileJSON(filepath.Join(s.dir, "agent.json"), id)
}

func (s *stateStore) taskPath(taskArn string) string {
	return filepath.Join(s.dir, "tasks", taskIDOf(taskArn)+".json")
}

// saveTask persists a task record.
func (s *stateStore) saveTask(r *taskRecord) error {
	return writeFileJSON(s.taskPath(r.TaskArn), r)
}

// deleteTask forgets a task; a missing file is not an error.
func (s *stateStore) deleteTask(taskArn string) error {
	err := os.Remove(s.taskPath(taskArn))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// loadTasks reads every persisted task record.
func (s *stateStore) loadTasks() ([]*taskRecord, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, "tasks"))
	if err != nil {
		return nil, err
	}
	var out []*taskRecord
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		r := &taskRecord{}
		if err := readJSON(filepath.Join(s.dir, "tasks", e.Name()), r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeFileJSON replaces path atomically.
func writeFileJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
