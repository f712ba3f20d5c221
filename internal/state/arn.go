package state

import (
	"strconv"
	"strings"
)

// ARNs builds and parses the ARNs of one Berth (one region, one account).
type ARNs struct {
	Region  string
	Account string
}

func (a ARNs) prefix() string { return "arn:aws:ecs:" + a.Region + ":" + a.Account + ":" }

// Cluster is the ARN of cluster name.
func (a ARNs) Cluster(name string) string { return a.prefix() + "cluster/" + name }

// TaskDefinition is the ARN of family:revision.
func (a ARNs) TaskDefinition(family string, revision int32) string {
	return a.prefix() + "task-definition/" + family + ":" + strconv.Itoa(int(revision))
}

// TaskDefinitionFamily is the ARN prefix of every revision of family
// ("...:task-definition/<family>:").
func (a ARNs) TaskDefinitionFamily(family string) string {
	return a.prefix() + "task-definition/" + family + ":"
}

// Task is the ARN of a task.
func (a ARNs) Task(cluster, id string) string { return a.prefix() + "task/" + cluster + "/" + id }

// Container is the ARN of one container of a task.
func (a ARNs) Container(cluster, taskID, id string) string {
	return a.prefix() + "container/" + cluster + "/" + taskID + "/" + id
}

// ContainerInstance is the ARN of a container instance.
func (a ARNs) ContainerInstance(cluster, id string) string {
	return a.prefix() + "container-instance/" + cluster + "/" + id
}

// Service is the ARN of a service (the long form, with the cluster).
func (a ARNs) Service(cluster, name string) string {
	return a.prefix() + "service/" + cluster + "/" + name
}

// ServiceDeployment is the ARN of a service deployment.
func (a ARNs) ServiceDeployment(cluster, service, id string) string {
	return a.prefix() + "service-deployment/" + cluster + "/" + service + "/" + id
}

// ServiceRevision is the ARN of a service revision.
func (a ARNs) ServiceRevision(cluster, service, id string) string {
	return a.prefix() + "service-revision/" + cluster + "/" + service + "/" + id
}

// Root is the ARN of the account's root principal, which Berth's admin key
// acts as.
func (a ARNs) Root() string { return "arn:aws:iam::" + a.Account + ":root" }

// Resource splits an ECS ARN of this region and account into its resource
// type and the rest ("cluster", "default"). ok is false for anything else.
func (a ARNs) Resource(arn string) (typ, rest string, ok bool) {
	p := a.prefix()
	if !strings.HasPrefix(arn, p) {
		return "", "", false
	}
	typ, rest, ok = strings.Cut(arn[len(p):], "/")
	return typ, rest, ok && rest != ""
}

// IsARN reports whether s looks like an ARN at all (of any partition,
// region or account).
func IsARN(s string) bool { return strings.HasPrefix(s, "arn:") }

// ClusterName resolves a cluster name or ARN to the name. ok is false for an
// ARN of another type, region or account.
func (a ARNs) ClusterName(nameOrARN string) (string, bool) {
	if !IsARN(nameOrARN) {
		return nameOrARN, nameOrARN != ""
	}
	typ, rest, ok := a.Resource(nameOrARN)
	if !ok || typ != "cluster" || strings.Contains(rest, "/") {
		return "", false
	}
	return rest, true
}

// TaskDefinitionRef parses "family", "family:revision" or a task definition
// ARN. revision is 0 when none was given.
func (a ARNs) TaskDefinitionRef(s string) (family string, revision int32, ok bool) {
	if IsARN(s) {
		typ, rest, ok := a.Resource(s)
		if !ok || typ != "task-definition" {
			return "", 0, false
		}
		s = rest
		if !strings.Contains(s, ":") {
			return "", 0, false // an ARN always names the revision
		}
	}
	family, rev, hasRev := strings.Cut(s, ":")
	if family == "" || strings.ContainsAny(family, "/:") {
		return "", 0, false
	}
	if !hasRev {
		return family, 0, true
	}
	n, err := strconv.ParseInt(rev, 10, 32)
	if err != nil || n < 1 {
		return "", 0, false
	}
	return family, int32(n), true
}

// ContainerInstanceID resolves an instance id or ARN to (cluster, id); the
// cluster is empty when only an id was given.
func (a ARNs) ContainerInstanceID(s string) (cluster, id string, ok bool) {
	if !IsARN(s) {
		return "", s, s != "" && !strings.Contains(s, "/")
	}
	typ, rest, ok := a.Resource(s)
	if !ok || typ != "container-instance" {
		return "", "", false
	}
	cluster, id, found := strings.Cut(rest, "/")
	if !found {
		// The short ARN form container-instance/<id> has no cluster.
		return "", rest, true
	}
	return cluster, id, id != "" && !strings.Contains(id, "/")
}
