package state

import (
	"fmt"
	"strings"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/store"
)

// Service statuses.
const (
	ServiceActive   = "ACTIVE"
	ServiceDraining = "DRAINING"
	ServiceInactive = "INACTIVE"
)

// Deployment statuses (in Service.deployments) and rollout states.
const (
	DeploymentPrimary  = "PRIMARY"
	DeploymentActive   = "ACTIVE"
	DeploymentInactive = "INACTIVE"
)

// MaxServiceEvents is how many events a service keeps, newest first, as ECS
// shows them.
const MaxServiceEvents = 100

// Service is one stored service: the ECS Service shape (with its tags,
// deployments and events) plus what the service controller keeps.
type Service struct {
	ecstypes.Service
	// Cluster is the cluster name.
	Cluster string `json:"berthCluster"`
	// Deploys is the controller's bookkeeping per deployment, by deployment
	// id; it holds an entry for every deployment in Deployments.
	Deploys map[string]*DeployState `json:"berthDeploys,omitempty"`
	// Generation increases with every change made through the API, so the
	// controller can tell a new request from its own writes.
	Generation int64 `json:"berthGeneration"`
	// StartFailures counts tasks in a row that stopped before they ran;
	// launches back off while it is high. A task that reaches RUNNING
	// healthy resets it.
	StartFailures int `json:"berthStartFailures,omitempty"`
	// NextLaunchAt is when the backoff allows launching again.
	NextLaunchAt *awsmodel.Time `json:"berthNextLaunchAt,omitempty"`
	// DeploymentSeq numbers the service deployments (their keys).
	DeploymentSeq int `json:"berthDeploymentSeq"`
	// Steady records that the "reached a steady state" event was given for
	// the service's current state.
	Steady bool `json:"berthSteady,omitempty"`
	// LastStable is the latest deployment that COMPLETED: where a rollback goes.
	LastStable *StableDeployment `json:"berthLastStable,omitempty"`
}

// StableDeployment names a deployment that completed.
type StableDeployment struct {
	ID                   string `json:"id"`
	TaskDefinition       string `json:"taskDefinition"`
	ServiceDeploymentArn string `json:"serviceDeploymentArn"`
	RevisionArn          string `json:"revisionArn"`
}

// DeployState is what the controller keeps about one deployment.
type DeployState struct {
	// ServiceDeploymentKey is the key of the deployment's ServiceDeployment
	// record (ListServiceDeployments).
	ServiceDeploymentKey string `json:"serviceDeploymentKey"`
	// BreakerFailures counts failed tasks toward the circuit breaker.
	BreakerFailures int `json:"breakerFailures,omitempty"`
	// RolledBackFrom names the deployment this one rolls back, if any.
	RolledBackFrom string `json:"rolledBackFrom,omitempty"`
	// RevisionArn is the service revision the deployment rolls out.
	RevisionArn string `json:"revisionArn"`
	// ServiceDeploymentArn is the ARN of its ServiceDeployment record.
	ServiceDeploymentArn string `json:"serviceDeploymentArn"`
}

// ServiceKey is the key of one service.
func ServiceKey(cluster, name string) string { return ServicesClusterPrefix(cluster) + name }

// ServiceTasksPrefix is the index of a service's tasks: every task the
// service started, until the controller has accounted for its stop.
const ServiceTasksPrefix = "/ecs/service-tasks/"

// ServiceTasksKeyPrefix is the index prefix of one service's tasks.
func ServiceTasksKeyPrefix(cluster, service string) string {
	return ServiceTasksPrefix + cluster + "/" + service + sep
}

// ServiceTaskKey indexes a task under its service; the value is the id of
// the deployment that started it.
func ServiceTaskKey(cluster, service, taskID string) string {
	return ServiceTasksKeyPrefix(cluster, service) + taskID
}

// ServiceDeploymentsPrefix holds ServiceDeployment records.
const ServiceDeploymentsPrefix = "/ecs/service-deployments/"

// ServiceDeploymentsKeyPrefix is the prefix of one service's deployments,
// in the order they were created.
func ServiceDeploymentsKeyPrefix(cluster, service string) string {
	return ServiceDeploymentsPrefix + cluster + "/" + service + sep
}

// ServiceDeploymentKey is the key of a service's seq-th deployment.
func ServiceDeploymentKey(cluster, service string, seq int) string {
	return fmt.Sprintf("%s%010d", ServiceDeploymentsKeyPrefix(cluster, service), seq)
}

// ServiceDeployment is one stored service deployment: the ECS shape plus
// the deployment id it corresponds to in Service.deployments.
type ServiceDeployment struct {
	ecstypes.ServiceDeployment
	DeploymentID string `json:"berthDeploymentId"`
	// TaskDefinition is the target revision's task definition ARN.
	TaskDefinition string `json:"berthTaskDefinition"`
}

// ServiceOf returns the service a task group belongs to ("service:<name>").
func ServiceOf(group string) (string, bool) {
	return strings.CutPrefix(group, "service:")
}

// EachServiceTask calls fn for every task indexed under a service with the
// deployment that started it; tasks already reaped are skipped after their
// index entry is dropped.
func EachServiceTask(tx store.Tx, cluster, service string, fn func(t *Task, deployment string) error) error {
	prefix := ServiceTasksKeyPrefix(cluster, service)
	kvs, err := tx.List(prefix, "", 0)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		id := strings.TrimPrefix(kv.Key, prefix)
		t, ok, err := Get[Task](tx, TaskKey(cluster, id))
		if err != nil {
			return err
		}
		if !ok {
			if err := tx.Delete(kv.Key); err != nil {
				return err
			}
			continue
		}
		if err := fn(t, string(kv.Value)); err != nil {
			return err
		}
	}
	return nil
}

// AddServiceEvent puts an event first in the service's list, keeping the
// newest MaxServiceEvents.
func AddServiceEvent(s *Service, id, message string, at awsmodel.Time) {
	ev := ecstypes.ServiceEvent{Id: id, CreatedAt: &at, Message: message}
	s.Events = append([]ecstypes.ServiceEvent{ev}, s.Events...)
	if len(s.Events) > MaxServiceEvents {
		s.Events = s.Events[:MaxServiceEvents]
	}
}
