package state

import (
	"fmt"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/store"
)

// stoppedKey indexes a STOPPED task by when it stopped, so the reaper reads
// only the tasks that are due.
func stoppedKey(at time.Time, cluster, id string) string {
	return fmt.Sprintf("%s%013d/%s/%s", StoppedTasksPrefix, at.UnixMilli(), cluster, id)
}

// StoppedBefore is the index range of tasks stopped before t: list
// StoppedTasksPrefix and stop at the first key not below it.
func StoppedBefore(t time.Time) string {
	return fmt.Sprintf("%s%013d", StoppedTasksPrefix, t.UnixMilli())
}

// PutTask writes a task and, when it has just become STOPPED (prevStatus
// was not), adds it to the stopped index at now (the control plane's clock,
// not the agent's).
func PutTask(tx store.Tx, cluster string, t *Task, prevStatus string, now time.Time) error {
	if err := Put(tx, TaskKey(cluster, t.ID), t); err != nil {
		return err
	}
	if t.LastStatus == "STOPPED" && prevStatus != "STOPPED" {
		return tx.Put(stoppedKey(now, cluster, t.ID), nil)
	}
	return nil
}

// DesiredChanged marks that the desired state of an instance changed (a task
// placed or to stop, the instance drained or deregistered). Agents' polls
// wake on these keys only, not on every report.
func DesiredChanged(tx store.Tx, instanceID string) error {
	return tx.Put(InstanceDesiredPrefix+instanceID, nil)
}

// DeleteStoppedTask removes a reaped task: its record, spec and index
// entries. indexKey is its key in the stopped index.
func DeleteStoppedTask(tx store.Tx, indexKey string) error {
	rest := strings.TrimPrefix(indexKey, StoppedTasksPrefix)
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 {
		return tx.Delete(indexKey)
	}
	cluster, id := parts[1], parts[2]
	t, ok, err := Get[Task](tx, TaskKey(cluster, id))
	if err != nil {
		return err
	}
	if ok {
		for _, k := range []string{TaskKey(cluster, id), TaskSpecKey(id)} {
			if err := deleteIfPresent(tx, k); err != nil {
				return err
			}
		}
		if t.InstanceID != "" {
			if err := deleteIfPresent(tx, InstanceTaskKey(t.InstanceID, id)); err != nil {
				return err
			}
		}
		if svc, ok := ServiceOf(t.Group); ok {
			if err := deleteIfPresent(tx, ServiceTaskKey(cluster, svc, id)); err != nil {
				return err
			}
		}
	}
	return tx.Delete(indexKey)
}

func deleteIfPresent(tx store.Tx, key string) error {
	if _, ok, err := tx.Get(key); err != nil || !ok {
		return err
	}
	return tx.Delete(key)
}

// EachInstanceTask calls fn for every task indexed under an instance.
func EachInstanceTask(tx store.ReadTx, instanceID string, fn func(*Task) error) error {
	prefix := InstanceTasksKeyPrefix(instanceID)
	kvs, err := tx.List(prefix, "", 0)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		t, ok, err := Get[Task](tx, TaskKey(string(kv.Value), strings.TrimPrefix(kv.Key, prefix)))
		if err != nil {
			return err
		}
		if ok {
			if err := fn(t); err != nil {
				return err
			}
		}
	}
	return nil
}
