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

// ELBv2 ARNs. Load balancers and target groups carry their name and a
// 16-hex-digit id, as AWS's do; listeners and rules carry their load
// balancer's name and id and their own ids:
//
//	…:loadbalancer/app/<name>/<id>
//	…:targetgroup/<name>/<id>
//	…:listener/app/<lb name>/<lb id>/<id>
//	…:listener-rule/app/<lb name>/<lb id>/<listener id>/<id>

func (a ARNs) elbPrefix() string {
	return "arn:aws:elasticloadbalancing:" + a.Region + ":" + a.Account + ":"
}

// LoadBalancer is the ARN of Application Load Balancer name with id.
func (a ARNs) LoadBalancer(name, id string) string {
	return a.elbPrefix() + "loadbalancer/app/" + name + "/" + id
}

// TargetGroup is the ARN of target group name with id.
func (a ARNs) TargetGroup(name, id string) string {
	return a.elbPrefix() + "targetgroup/" + name + "/" + id
}

// Listener is the ARN of listener id of load balancer lbName/lbID.
func (a ARNs) Listener(lbName, lbID, id string) string {
	return a.elbPrefix() + "listener/app/" + lbName + "/" + lbID + "/" + id
}

// ListenerRule is the ARN of rule id of a listener.
func (a ARNs) ListenerRule(lbName, lbID, listenerID, id string) string {
	return a.elbPrefix() + "listener-rule/app/" + lbName + "/" + lbID + "/" + listenerID + "/" + id
}

// Certificate is the ARN Berth gives the certificate name: the PEM pair
// <name>.crt and <name>.key in the certificate directory (CertificateFiles).
func (a ARNs) Certificate(name string) string {
	return "arn:aws:acm:" + a.Region + ":" + a.Account + ":certificate/" + name
}

// CertificateName resolves a certificate ARN of this region and account to
// the certificate's name; ok is false for anything else, including names
// that could leave the certificate directory.
func (a ARNs) CertificateName(arn string) (string, bool) {
	name, ok := strings.CutPrefix(arn, a.Certificate(""))
	if !ok || name == "" || name == "." || name == ".." {
		return "", false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return "", false
		}
	}
	return name, true
}

// ELB resource types, as ELBResource.Type names them.
const (
	ELBLoadBalancer = "loadbalancer"
	ELBTargetGroup  = "targetgroup"
	ELBListener     = "listener"
	ELBRule         = "listener-rule"
)

// ELBResource is a parsed ELBv2 ARN of this region and account.
type ELBResource struct {
	// Type is ELBLoadBalancer, ELBTargetGroup, ELBListener or ELBRule.
	Type string
	// Name is the load balancer's name (the target group's for a target
	// group); LoadBalancerID is the load balancer's id.
	Name           string
	LoadBalancerID string
	// ListenerID is set for listeners and rules.
	ListenerID string
	// ID is the resource's own id (the load balancer's or target group's
	// for those).
	ID string
}

// ParseELB parses an ELBv2 ARN of this region and account; ok is false for
// anything else, including AWS's network and gateway load balancers.
func (a ARNs) ParseELB(arn string) (ELBResource, bool) {
	rest, ok := strings.CutPrefix(arn, a.elbPrefix())
	if !ok {
		return ELBResource{}, false
	}
	parts := strings.Split(rest, "/")
	for _, p := range parts {
		if p == "" {
			return ELBResource{}, false
		}
	}
	switch {
	case parts[0] == ELBLoadBalancer && len(parts) == 4 && parts[1] == "app":
		return ELBResource{Type: ELBLoadBalancer, Name: parts[2], LoadBalancerID: parts[3], ID: parts[3]}, true
	case parts[0] == ELBTargetGroup && len(parts) == 3:
		return ELBResource{Type: ELBTargetGroup, Name: parts[1], ID: parts[2]}, true
	case parts[0] == ELBListener && len(parts) == 5 && parts[1] == "app":
		return ELBResource{Type: ELBListener, Name: parts[2], LoadBalancerID: parts[3], ListenerID: parts[4], ID: parts[4]}, true
	case parts[0] == ELBRule && len(parts) == 6 && parts[1] == "app":
		return ELBResource{Type: ELBRule, Name: parts[2], LoadBalancerID: parts[3], ListenerID: parts[4], ID: parts[5]}, true
	}
	return ELBResource{}, false
}
