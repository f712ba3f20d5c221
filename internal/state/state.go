// Package state is the layout of ECS objects in the store: which key holds
// which object, the records stored there (the AWS API shapes plus a small
// envelope), and typed reads and writes inside a store transaction.
//
// The API handlers and the controllers both go through this package, so the
// key layout is written down once.
//
// Key layout (ordered as the List APIs need to walk them):
//
//	/ecs/clusters/<name>                                   Cluster
//	/ecs/families/<family>                                 Family
//	/ecs/taskdefs/<family>\x00<revision, 10 digits>        TaskDefinition
//	/ecs/taskdef-status/<status>/<family>\x00<revision>     index: the ARN, by status
//	/ecs/instances/<cluster>/<instance id>                 ContainerInstance
//	/ecs/instance-ids/<instance id>                        index: the instance's cluster
//	/ecs/services/<cluster>/<name>                         Service
//	/ecs/service-tasks/<cluster>/<service>\x00<task id>     index: a service's tasks (value: deployment id)
//	/ecs/service-deployments/<cluster>/<service>\x00<seq>   ServiceDeployment
//	/ecs/tasks/<cluster>/<task id>                         Task
//	/ecs/taskspecs/<task id>                               TaskSpec (immutable, what the agent runs)
//	/ecs/instance-tasks/<instance id>/<task id>            index: the task's cluster
//	/ecs/stopped-tasks/<stopped at, unix ms>/<cluster>/<id> index: for the reaper
//	/ecs/instance-desired/<instance id>                    touched when the instance's desired state changes
//	/ecs/client-tokens/<cluster>/<token>                   RunTask idempotency: the request's outcome
//	/ecs/client-token-times/<unix ms>/<cluster>/<token>    index: for expiry
//	/ecs/settings/<principal arn>\x00<setting name>        Setting
package state

import (
	"encoding/json"
	"fmt"

	"github.com/berthdev/berth/internal/store"
)

// Key prefixes.
const (
	ClustersPrefix      = "/ecs/clusters/"
	FamiliesPrefix      = "/ecs/families/"
	TaskDefsPrefix      = "/ecs/taskdefs/"
	TaskDefStatusPrefix = "/ecs/taskdef-status/"
	InstancesPrefix     = "/ecs/instances/"
	ServicesPrefix      = "/ecs/services/"
	InstanceIDsPrefix   = "/ecs/instance-ids/"
	TaskSpecsPrefix     = "/ecs/taskspecs/"
	InstanceTasksPrefix = "/ecs/instance-tasks/"
	StoppedTasksPrefix  = "/ecs/stopped-tasks/"
	// InstanceDesiredPrefix keys change whenever an instance's desired state does.
	InstanceDesiredPrefix = "/ecs/instance-desired/"
	// ClientTokensPrefix holds RunTask idempotency tokens; ClientTokenTimesPrefix
	// indexes them by time for expiry.
	ClientTokensPrefix     = "/ecs/client-tokens/"
	ClientTokenTimesPrefix = "/ecs/client-token-times/"
	TasksPrefix            = "/ecs/tasks/"
	SettingsPrefix         = "/ecs/settings/"
)

// sep separates the parts of a key whose first part is a name that may be a
// prefix of another name: it sorts below every character names may hold, so
// "web" and its revisions come before "web-api".
const sep = "\x00"

// ClusterKey is the key of cluster name.
func ClusterKey(name string) string { return ClustersPrefix + name }

// FamilyKey is the key of a task definition family.
func FamilyKey(family string) string { return FamiliesPrefix + family }

// TaskDefFamilyPrefix is the prefix of every revision of family.
func TaskDefFamilyPrefix(family string) string { return TaskDefsPrefix + family + sep }

// TaskDefKey is the key of one task definition revision.
func TaskDefKey(family string, revision int32) string {
	return fmt.Sprintf("%s%010d", TaskDefFamilyPrefix(family), revision)
}

// TaskDefStatusFamilyPrefix is the index prefix of the revisions with status,
// of one family, or of every family when family is empty.
func TaskDefStatusFamilyPrefix(status, family string) string {
	p := TaskDefStatusPrefix + status + "/"
	if family != "" {
		p += family + sep
	}
	return p
}

func taskDefStatusKey(status, family string, revision int32) string {
	return fmt.Sprintf("%s%010d", TaskDefStatusFamilyPrefix(status, family), revision)
}

// PutTaskDefinition writes a revision and keeps the status index in step.
// prevStatus is the status stored before ("" for a new revision).
func PutTaskDefinition(tx store.Tx, rec *TaskDefinition, prevStatus string) error {
	td := &rec.TaskDefinition
	status := string(td.Status)
	if prevStatus != "" && prevStatus != status {
		if err := tx.Delete(taskDefStatusKey(prevStatus, td.Family, td.Revision)); err != nil {
			return err
		}
	}
	if prevStatus == "" {
		if err := Create(tx, TaskDefKey(td.Family, td.Revision), rec); err != nil {
			return err
		}
	} else if err := Put(tx, TaskDefKey(td.Family, td.Revision), rec); err != nil {
		return err
	}
	if prevStatus != status {
		return tx.Put(taskDefStatusKey(status, td.Family, td.Revision), []byte(td.TaskDefinitionArn))
	}
	return nil
}

// DeleteTaskDefinition removes a revision stored with status, and its index entry.
func DeleteTaskDefinition(tx store.Tx, family string, revision int32, status string) error {
	if err := tx.Delete(taskDefStatusKey(status, family, revision)); err != nil {
		return err
	}
	return tx.Delete(TaskDefKey(family, revision))
}

// InstancesClusterPrefix is the prefix of the container instances of cluster.
func InstancesClusterPrefix(cluster string) string { return InstancesPrefix + cluster + "/" }

// InstanceKey is the key of one container instance.
func InstanceKey(cluster, id string) string { return InstancesClusterPrefix(cluster) + id }

// InstanceIDKey indexes an instance id to its cluster.
func InstanceIDKey(id string) string { return InstanceIDsPrefix + id }

// TaskKey is the key of one task.
func TaskKey(cluster, id string) string { return TasksClusterPrefix(cluster) + id }

// TaskSpecKey is the key of a task's immutable spec.
func TaskSpecKey(id string) string { return TaskSpecsPrefix + id }

// InstanceTasksKeyPrefix is the index prefix of the tasks placed on an instance.
func InstanceTasksKeyPrefix(instanceID string) string { return InstanceTasksPrefix + instanceID + "/" }

// InstanceTaskKey indexes one task under its instance.
func InstanceTaskKey(instanceID, taskID string) string {
	return InstanceTasksKeyPrefix(instanceID) + taskID
}

// ServicesClusterPrefix is the prefix of the services of cluster.
func ServicesClusterPrefix(cluster string) string { return ServicesPrefix + cluster + "/" }

// TasksClusterPrefix is the prefix of the tasks of cluster.
func TasksClusterPrefix(cluster string) string { return TasksPrefix + cluster + "/" }

// SettingsPrincipalPrefix is the prefix of one principal's account settings.
func SettingsPrincipalPrefix(principal string) string { return SettingsPrefix + principal + sep }

// SettingKey is the key of one account setting of one principal.
func SettingKey(principal, name string) string { return SettingsPrincipalPrefix(principal) + name }

// Get reads the JSON record at key into a new T.
func Get[T any](tx store.ReadTx, key string) (*T, bool, error) {
	kv, ok, err := tx.Get(key)
	if err != nil || !ok {
		return nil, false, err
	}
	v := new(T)
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return nil, false, fmt.Errorf("decoding %q: %w", key, err)
	}
	return v, true, nil
}

// Put writes v as JSON at key.
func Put(tx store.Tx, key string, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %q: %w", key, err)
	}
	return tx.Put(key, buf)
}

// Create writes v as JSON at key, which must not exist yet.
func Create(tx store.Tx, key string, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %q: %w", key, err)
	}
	return tx.Create(key, buf)
}

// Decode decodes one listed record.
func Decode[T any](kv store.KV) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return nil, fmt.Errorf("decoding %q: %w", kv.Key, err)
	}
	return v, nil
}
