package ecs

import (
	"context"
	"regexp"
	"slices"
	"strconv"

	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// Cluster statuses.
const (
	statusActive   = "ACTIVE"
	statusInactive = "INACTIVE"
)

const defaultCluster = "default"

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,255}$`)

// fargateProviders are the capacity providers AWS manages, which every
// cluster may use without creating them.
var fargateProviders = []string{"FARGATE", "FARGATE_SPOT"}

// CreateCluster creates a cluster, or returns the existing ACTIVE one of the
// same name unchanged, as ECS does.
func (s *Service) CreateCluster(ctx context.Context, in *ecstypes.CreateClusterRequest) (*ecstypes.CreateClusterResponse, error) {
	name := in.ClusterName
	if name == "" {
		name = defaultCluster
	}
	if !nameRE.MatchString(name) {
		return nil, invalidParam("Cluster name can have up to 255 characters. Valid characters are letters (uppercase and lowercase), numbers, hyphens, and underscores.")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if err := checkClusterSettings(in.Settings); err != nil {
		return nil, err
	}
	if err := checkCapacityProviders(in.CapacityProviders, in.DefaultCapacityProviderStrategy); err != nil {
		return nil, err
	}
	if in.ServiceConnectDefaults != nil {
		return nil, ecstypes.NewNamespaceNotFoundException("Namespace %q not found: Berth does not provide Cloud Map namespaces yet, so serviceConnectDefaults cannot be set.", in.ServiceConnectDefaults.Namespace)
	}
	caller := s.caller(ctx)
	var out *state.Cluster
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		existing, ok, err := state.Get[state.Cluster](tx, state.ClusterKey(name))
		if err != nil {
			return err
		}
		if ok && existing.Status == statusActive {
			out = existing
			return nil
		}
		insights, err := s.effectiveSetting(tx, caller, "containerInsights")
		if err != nil {
			return err
		}
		c := &state.Cluster{
			ClusterArn:                      s.arns.Cluster(name),
			ClusterName:                     name,
			Status:                          statusActive,
			Tags:                            dedupeTags(in.Tags),
			Settings:                        []ecstypes.ClusterSetting{{Name: ecstypes.ClusterSettingNameContainerInsights, Value: insights}},
			Configuration:                   in.Configuration,
			CapacityProviders:               in.CapacityProviders,
			DefaultCapacityProviderStrategy: in.DefaultCapacityProviderStrategy,
		}
		mergeClusterSettings(c, in.Settings)
		out = c
		return state.Put(tx, state.ClusterKey(name), c)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("cluster created", "cluster", name)
	view, err := s.clusterView(ctx, out, nil, true)
	if err != nil {
		return nil, err
	}
	// CreateCluster answers these as [] when empty, as ECS does.
	if view.Tags == nil {
		view.Tags = []ecstypes.Tag{}
	}
	view.Statistics = []ecstypes.KeyValuePair{}
	return &ecstypes.CreateClusterResponse{Cluster: view}, nil
}

// DescribeClusters describes clusters by name or ARN; unknown ones come back
// as MISSING failures.
func (s *Service) DescribeClusters(ctx context.Context, in *ecstypes.DescribeClustersRequest) (*ecstypes.DescribeClustersResponse, error) {
	refs := in.Clusters
	if len(refs) == 0 {
		refs = []string{defaultCluster}
	}
	if len(refs) > 100 {
		return nil, invalidParam("clusters can have at most 100 items.")
	}
	out := &ecstypes.DescribeClustersResponse{}
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		for _, ref := range refs {
			name, ok := s.arns.ClusterName(ref)
			var c *state.Cluster
			var err error
			if ok {
				c, ok, err = state.Get[state.Cluster](tx, state.ClusterKey(name))
				if err != nil {
					return err
				}
			}
			if !ok {
				out.Failures = append(out.Failures, ecstypes.Failure{Arn: s.missingClusterARN(ref), Reason: "MISSING"})
				continue
			}
			view, err := s.clusterViewTx(tx, c, in.Include, false)
			if err != nil {
				return err
			}
			out.Clusters = append(out.Clusters, *view)
		}
		return nil
	})
	return out, err
}

func (s *Service) missingClusterARN(ref string) string {
	if state.IsARN(ref) {
		return ref
	}
	return s.arns.Cluster(ref)
}

// ListClusters lists the ARNs of ACTIVE clusters in name order.
func (s *Service) ListClusters(ctx context.Context, in *ecstypes.ListClustersRequest) (*ecstypes.ListClustersResponse, error) {
	p, err := newPage(in.MaxResults, in.NextToken, 100)
	if err != nil {
		return nil, err
	}
	out := &ecstypes.ListClustersResponse{}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		out.NextToken, err = scan(tx, state.ClustersPrefix, p, func(kv store.KV) (bool, error) {
			c, err := state.Decode[state.Cluster](kv)
			if err != nil || c.Status != statusActive {
				return false, err
			}
			out.ClusterArns = append(out.ClusterArns, c.ClusterArn)
			return true, nil
		})
		return err
	})
	return out, err
}

// UpdateCluster changes a cluster's settings, configuration or Service
// Connect defaults.
func (s *Service) UpdateCluster(ctx context.Context, in *ecstypes.UpdateClusterRequest) (*ecstypes.UpdateClusterResponse, error) {
	if err := checkClusterSettings(in.Settings); err != nil {
		return nil, err
	}
	if in.ServiceConnectDefaults != nil {
		return nil, ecstypes.NewNamespaceNotFoundException("Namespace %q not found: Berth does not provide Cloud Map namespaces yet, so serviceConnectDefaults cannot be set.", in.ServiceConnectDefaults.Namespace)
	}
	c, err := s.updateCluster(ctx, in.Cluster, func(c *state.Cluster) {
		mergeClusterSettings(c, in.Settings)
		if in.Configuration != nil {
			c.Configuration = in.Configuration
		}
	})
	if err != nil {
		return nil, err
	}
	return &ecstypes.UpdateClusterResponse{Cluster: c}, nil
}

// UpdateClusterSettings changes a cluster's settings (containerInsights).
func (s *Service) UpdateClusterSettings(ctx context.Context, in *ecstypes.UpdateClusterSettingsRequest) (*ecstypes.UpdateClusterSettingsResponse, error) {
	if err := checkClusterSettings(in.Settings); err != nil {
		return nil, err
	}
	c, err := s.updateCluster(ctx, in.Cluster, func(c *state.Cluster) { mergeClusterSettings(c, in.Settings) })
	if err != nil {
		return nil, err
	}
	return &ecstypes.UpdateClusterSettingsResponse{Cluster: c}, nil
}

func (s *Service) updateCluster(ctx context.Context, ref string, change func(*state.Cluster)) (*ecstypes.Cluster, error) {
	var updated *state.Cluster
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		c, err := s.activeCluster(tx, ref)
		if err != nil {
			return err
		}
		change(c)
		updated = c
		return state.Put(tx, state.ClusterKey(c.ClusterName), c)
	})
	if err != nil {
		return nil, err
	}
	return s.clusterView(ctx, updated, []ecstypes.ClusterField{ecstypes.ClusterFieldSettings, ecstypes.ClusterFieldConfigurations}, false)
}

// DeleteCluster marks an empty cluster INACTIVE. A cluster that still holds
// container instances, services or tasks is refused with the matching
// ClusterContains* error.
func (s *Service) DeleteCluster(ctx context.Context, in *ecstypes.DeleteClusterRequest) (*ecstypes.DeleteClusterResponse, error) {
	var deleted *state.Cluster
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		c, err := s.activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		counts, err := countCluster(tx, c.ClusterName)
		if err != nil {
			return err
		}
		switch {
		case counts.instances > 0:
			return ecstypes.NewClusterContainsContainerInstancesException("The Cluster cannot be deleted while Container Instances are active or draining.")
		case counts.activeServices+counts.drainingServices > 0:
			return ecstypes.NewClusterContainsServicesException("The Cluster cannot be deleted while Services are active.")
		case counts.running+counts.pending > 0:
			return ecstypes.NewClusterContainsTasksException("The Cluster cannot be deleted while Tasks are active.")
		}
		c.Status = statusInactive
		deleted = c
		return state.Put(tx, state.ClusterKey(c.ClusterName), c)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("cluster deleted", "cluster", deleted.ClusterName)
	view, err := s.clusterView(ctx, deleted, nil, true)
	if err != nil {
		return nil, err
	}
	return &ecstypes.DeleteClusterResponse{Cluster: view}, nil
}

// activeCluster resolves a cluster name or ARN ("" means default) to its
// ACTIVE record, or ClusterNotFoundException.
func (s *Service) activeCluster(tx store.ReadTx, ref string) (*state.Cluster, error) {
	if ref == "" {
		ref = defaultCluster
	}
	name, ok := s.arns.ClusterName(ref)
	if !ok {
		return nil, clusterNotFound()
	}
	c, ok, err := state.Get[state.Cluster](tx, state.ClusterKey(name))
	if err != nil {
		return nil, err
	}
	if !ok || c.Status != statusActive {
		return nil, clusterNotFound()
	}
	return c, nil
}

func (s *Service) clusterView(ctx context.Context, c *state.Cluster, include []ecstypes.ClusterField, withTagsAndSettings bool) (*ecstypes.Cluster, error) {
	var view *ecstypes.Cluster
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		var err error
		view, err = s.clusterViewTx(tx, c, include, withTagsAndSettings)
		return err
	})
	return view, err
}

// clusterViewTx returns the cluster as Describe shows it: live counts, and
// tags, settings, configuration and statistics only when asked for.
func (s *Service) clusterViewTx(tx store.ReadTx, c *state.Cluster, include []ecstypes.ClusterField, withTagsAndSettings bool) (*ecstypes.Cluster, error) {
	v := *c
	counts, err := countCluster(tx, c.ClusterName)
	if err != nil {
		return nil, err
	}
	v.RegisteredContainerInstancesCount = int32(counts.instances)
	v.RunningTasksCount = int32(counts.running)
	v.PendingTasksCount = int32(counts.pending)
	v.ActiveServicesCount = int32(counts.activeServices)
	if v.CapacityProviders == nil {
		v.CapacityProviders = []string{}
	}
	if v.DefaultCapacityProviderStrategy == nil {
		v.DefaultCapacityProviderStrategy = []ecstypes.CapacityProviderStrategyItem{}
	}
	if !withTagsAndSettings && !slices.Contains(include, ecstypes.ClusterFieldTags) {
		v.Tags = nil
	}
	if !withTagsAndSettings && !slices.Contains(include, ecstypes.ClusterFieldSettings) {
		v.Settings = nil
	}
	if !slices.Contains(include, ecstypes.ClusterFieldConfigurations) && !withTagsAndSettings {
		v.Configuration = nil
	}
	v.Statistics = nil
	if slices.Contains(include, ecstypes.ClusterFieldStatistics) {
		v.Statistics = counts.statistics()
	}
	return &v, nil
}

// clusterCounts are the live counts of a cluster's contents.
type clusterCounts struct {
	instances                        int
	running, pending                 int
	runningByLaunch, pendingByLaunch map[string]int
	activeServices, drainingServices int
	activeByLaunch, drainingByLaunch map[string]int
}

// taskSummary and serviceSummary decode only what counting needs.
type taskSummary struct {
	LastStatus    string `json:"lastStatus"`
	DesiredStatus string `json:"desiredStatus"`
	LaunchType    string `json:"launchType"`
}

type serviceSummary struct {
	Status     string `json:"status"`
	LaunchType string `json:"launchType"`
}

func countCluster(tx store.ReadTx, cluster string) (clusterCounts, error) {
	c := clusterCounts{
		runningByLaunch: map[string]int{}, pendingByLaunch: map[string]int{},
		activeByLaunch: map[string]int{}, drainingByLaunch: map[string]int{},
	}
	// Task counts come from the instances' counters (every task runs on an
	// instance, with the EC2 launch type), so this costs the number of
	// instances, not of tasks.
	err := eachUnder(tx, state.InstancesClusterPrefix(cluster), func(ci *state.ContainerInstance) {
		if ci.Status == state.InstanceInactive {
			return
		}
		c.instances++
		c.running += ci.RunningTasks
		c.pending += ci.LiveTasks - ci.RunningTasks
	})
	if err != nil {
		return c, err
	}
	c.runningByLaunch["EC2"], c.pendingByLaunch["EC2"] = c.running, c.pending
	err = eachUnder(tx, state.ServicesClusterPrefix(cluster), func(sv *serviceSummary) {
		lt := launchOrEC2(sv.LaunchType)
		switch sv.Status {
		case "ACTIVE":
			c.activeServices++
			c.activeByLaunch[lt]++
		case "DRAINING":
			c.drainingServices++
			c.drainingByLaunch[lt]++
		}
	})
	return c, err
}

func launchOrEC2(lt string) string {
	if lt == "" {
		return "EC2"
	}
	return lt
}

func eachUnder[T any](tx store.ReadTx, prefix string, fn func(*T)) error {
	_, err := scan(tx, prefix, page{Limit: -1}, func(kv store.KV) (bool, error) {
		v, err := state.Decode[T](kv)
		if err != nil {
			return false, err
		}
		fn(v)
		return false, nil
	})
	return err
}

// statistics are DescribeClusters' STATISTICS, split by launch type as ECS
// reports them.
func (c clusterCounts) statistics() []ecstypes.KeyValuePair {
	var out []ecstypes.KeyValuePair
	add := func(name string, n int) {
		out = append(out, ecstypes.KeyValuePair{Name: name, Value: strconv.Itoa(n)})
	}
	for _, lt := range []struct{ key, name string }{{"EC2", "EC2"}, {"FARGATE", "Fargate"}, {"EXTERNAL", "External"}} {
		add("running"+lt.name+"TasksCount", c.runningByLaunch[lt.key])
		add("pending"+lt.name+"TasksCount", c.pendingByLaunch[lt.key])
		add("active"+lt.name+"ServiceCount", c.activeByLaunch[lt.key])
		add("draining"+lt.name+"ServiceCount", c.drainingByLaunch[lt.key])
	}
	return out
}

func checkClusterSettings(settings []ecstypes.ClusterSetting) error {
	for _, st := range settings {
		if st.Name != ecstypes.ClusterSettingNameContainerInsights {
			return invalidParam("Unsupported cluster setting %q: the only cluster setting is containerInsights.", st.Name)
		}
		switch st.Value {
		case "enabled", "disabled", "enhanced":
		default:
			return invalidParam("Invalid value %q for cluster setting containerInsights: valid values are enabled, disabled and enhanced.", st.Value)
		}
	}
	return nil
}

func mergeClusterSettings(c *state.Cluster, settings []ecstypes.ClusterSetting) {
	for _, st := range settings {
		i := slices.IndexFunc(c.Settings, func(x ecstypes.ClusterSetting) bool { return x.Name == st.Name })
		if i >= 0 {
			c.Settings[i] = st
		} else {
			c.Settings = append(c.Settings, st)
		}
	}
}

func checkCapacityProviders(providers []string, strategy []ecstypes.CapacityProviderStrategyItem) error {
	for _, p := range providers {
		if !slices.Contains(fargateProviders, p) {
			return invalidParam("The specified capacity provider %q does not exist. Berth provides FARGATE and FARGATE_SPOT; custom capacity providers are not supported yet.", p)
		}
	}
	for _, item := range strategy {
		if !slices.Contains(providers, item.CapacityProvider) {
			return invalidParam("The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate %q with the cluster first.", item.CapacityProvider)
		}
	}
	return nil
}
