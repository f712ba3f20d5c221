package e2e

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

func TestCreateClusterDefaultsAndIdempotence(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	out := must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{}))
	cl := out.Cluster
	if aws.ToString(cl.ClusterName) != "default" || aws.ToString(cl.ClusterArn) != "arn:aws:ecs:us-east-1:000000000000:cluster/default" {
		t.Fatalf("default cluster: got %q %q", aws.ToString(cl.ClusterName), aws.ToString(cl.ClusterArn))
	}
	if aws.ToString(cl.Status) != "ACTIVE" || cl.RegisteredContainerInstancesCount != 0 || cl.RunningTasksCount != 0 {
		t.Fatalf("new cluster: status %q counts %d/%d", aws.ToString(cl.Status), cl.RegisteredContainerInstancesCount, cl.RunningTasksCount)
	}
	if len(cl.Settings) != 1 || cl.Settings[0].Name != types.ClusterSettingNameContainerInsights || aws.ToString(cl.Settings[0].Value) != "disabled" {
		t.Fatalf("settings: %+v", cl.Settings)
	}

	tagged := must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{
		ClusterName:       aws.String("prod"),
		Tags:              []types.Tag{{Key: aws.String("team"), Value: aws.String("core")}},
		CapacityProviders: []string{"FARGATE", "FARGATE_SPOT"},
		DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{
			{CapacityProvider: aws.String("FARGATE"), Weight: 1},
		},
		Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enhanced")}},
	}))
	if len(tagged.Cluster.Tags) != 1 || aws.ToString(tagged.Cluster.Tags[0].Key) != "team" {
		t.Fatalf("tags not echoed: %+v", tagged.Cluster.Tags)
	}
	if got := tagged.Cluster.CapacityProviders; !slices.Equal(got, []string{"FARGATE", "FARGATE_SPOT"}) {
		t.Fatalf("capacity providers: %v", got)
	}
	// CreateCluster of an existing ACTIVE cluster returns it unchanged.
	again := must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("prod")}))
	if len(again.Cluster.Tags) != 1 || aws.ToString(again.Cluster.Settings[0].Value) != "enhanced" {
		t.Fatalf("second create changed the cluster: %+v", again.Cluster)
	}
	list := must[*ecs.ListClustersOutput](t)(c.ListClusters(ctx(t), &ecs.ListClustersInput{}))
	if len(list.ClusterArns) != 2 {
		t.Fatalf("want 2 clusters, got %v", list.ClusterArns)
	}
}

func TestCreateClusterRejectsBadInput(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	cases := []struct {
		name string
		in   *ecs.CreateClusterInput
		want string
	}{
		{"bad name", &ecs.CreateClusterInput{ClusterName: aws.String("no spaces allowed")}, "Cluster name"},
		{"long name", &ecs.CreateClusterInput{ClusterName: aws.String(strings.Repeat("a", 256))}, "255"},
		{"reserved tag", &ecs.CreateClusterInput{ClusterName: aws.String("x"), Tags: []types.Tag{{Key: aws.String("aws:owner"), Value: aws.String("me")}}}, "reserved"},
		{"long tag key", &ecs.CreateClusterInput{ClusterName: aws.String("x"), Tags: []types.Tag{{Key: aws.String(strings.Repeat("k", 129)), Value: aws.String("v")}}}, "tags[0].key"},
		{"unknown capacity provider", &ecs.CreateClusterInput{ClusterName: aws.String("x"), CapacityProviders: []string{"my-asg"}}, "my-asg"},
		{"strategy without provider", &ecs.CreateClusterInput{ClusterName: aws.String("x"), DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE")}}}, "not associated"},
		{"bad insights value", &ecs.CreateClusterInput{ClusterName: aws.String("x"), Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("sometimes")}}}, "containerInsights"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateCluster(ctx(t), tc.in)
			e := wantErr[*types.InvalidParameterException](t, err)
			if !strings.Contains(e.ErrorMessage(), tc.want) {
				t.Fatalf("message %q does not mention %q", e.ErrorMessage(), tc.want)
			}
		})
	}
	_, err := c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("sc"), ServiceConnectDefaults: &types.ClusterServiceConnectDefaultsRequest{Namespace: aws.String("ns")}})
	wantErr[*types.NamespaceNotFoundException](t, err)
	list := must[*ecs.ListClustersOutput](t)(c.ListClusters(ctx(t), &ecs.ListClustersInput{}))
	if len(list.ClusterArns) != 0 {
		t.Fatalf("refused requests created clusters: %v", list.ClusterArns)
	}
}

func TestDescribeClustersIncludeAndMissing(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{
		ClusterName: aws.String("blue"),
		Tags:        []types.Tag{{Key: aws.String("env"), Value: aws.String("test")}},
		Configuration: &types.ClusterConfiguration{ExecuteCommandConfiguration: &types.ExecuteCommandConfiguration{
			Logging: types.ExecuteCommandLoggingDefault,
		}},
	}))
	arn := "arn:aws:ecs:us-east-1:000000000000:cluster/blue"
	plain := must[*ecs.DescribeClustersOutput](t)(c.DescribeClusters(ctx(t), &ecs.DescribeClustersInput{
		Clusters: []string{"blue", arn, "nope", "arn:aws:ecs:us-east-1:000000000000:cluster/gone", "arn:aws:ecs:eu-west-1:000000000000:cluster/blue"},
	}))
	if len(plain.Clusters) != 2 || aws.ToString(plain.Clusters[1].ClusterArn) != arn {
		t.Fatalf("clusters by name and ARN: %+v", plain.Clusters)
	}
	if cl := plain.Clusters[0]; cl.Tags != nil || cl.Settings != nil || cl.Statistics != nil || cl.Configuration != nil {
		t.Fatalf("describe without include returned extras: %+v", cl)
	}
	wantFailures := []string{
		"arn:aws:ecs:us-east-1:000000000000:cluster/nope",
		"arn:aws:ecs:us-east-1:000000000000:cluster/gone",
		"arn:aws:ecs:eu-west-1:000000000000:cluster/blue",
	}
	if len(plain.Failures) != len(wantFailures) {
		t.Fatalf("failures: %+v", plain.Failures)
	}
	for i, f := range plain.Failures {
		if aws.ToString(f.Arn) != wantFailures[i] || aws.ToString(f.Reason) != "MISSING" {
			t.Fatalf("failure %d: %s %s", i, aws.ToString(f.Arn), aws.ToString(f.Reason))
		}
	}
	full := must[*ecs.DescribeClustersOutput](t)(c.DescribeClusters(ctx(t), &ecs.DescribeClustersInput{
		Clusters: []string{"blue"},
		Include:  []types.ClusterField{types.ClusterFieldTags, types.ClusterFieldSettings, types.ClusterFieldStatistics, types.ClusterFieldConfigurations},
	}))
	cl := full.Clusters[0]
	if len(cl.Tags) != 1 || len(cl.Settings) != 1 || cl.Configuration == nil || cl.Configuration.ExecuteCommandConfiguration.Logging != types.ExecuteCommandLoggingDefault {
		t.Fatalf("include did not return tags/settings/configuration: %+v", cl)
	}
	stats := map[string]string{}
	for _, kv := range cl.Statistics {
		stats[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
	}
	for _, k := range []string{"runningEC2TasksCount", "pendingEC2TasksCount", "runningFargateTasksCount", "activeEC2ServiceCount", "drainingFargateServiceCount"} {
		if stats[k] != "0" {
			t.Fatalf("statistic %s = %q, want 0 (all: %v)", k, stats[k], stats)
		}
	}
	// No names means the default cluster.
	def := must[*ecs.DescribeClustersOutput](t)(c.DescribeClusters(ctx(t), &ecs.DescribeClustersInput{}))
	if len(def.Failures) != 1 || aws.ToString(def.Failures[0].Arn) != "arn:aws:ecs:us-east-1:000000000000:cluster/default" {
		t.Fatalf("describe with no names: %+v", def)
	}
}

func TestListClustersPagination(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	var want []string
	for _, n := range []string{"c5", "c1", "c3", "c2", "c4", "c7", "c6"} {
		must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String(n)}))
	}
	for i := 1; i <= 7; i++ {
		want = append(want, "arn:aws:ecs:us-east-1:000000000000:cluster/c"+string(rune('0'+i)))
	}
	var got []string
	pages := 0
	p := ecs.NewListClustersPaginator(c, &ecs.ListClustersInput{MaxResults: aws.Int32(3)})
	for p.HasMorePages() {
		page := must[*ecs.ListClustersOutput](t)(p.NextPage(ctx(t)))
		if len(page.ClusterArns) > 3 {
			t.Fatalf("page of %d > maxResults 3", len(page.ClusterArns))
		}
		got = append(got, page.ClusterArns...)
		pages++
	}
	if !slices.Equal(got, want) || pages != 3 {
		t.Fatalf("paginated %d pages: %v", pages, got)
	}
	_, err := c.ListClusters(ctx(t), &ecs.ListClustersInput{MaxResults: aws.Int32(101)})
	wantErr[*types.InvalidParameterException](t, err)
	_, err = c.ListClusters(ctx(t), &ecs.ListClustersInput{NextToken: aws.String("!!not a token!!")})
	wantErr[*types.InvalidParameterException](t, err)
}

func TestUpdateClusterAndSettings(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("u")}))
	out := must[*ecs.UpdateClusterSettingsOutput](t)(c.UpdateClusterSettings(ctx(t), &ecs.UpdateClusterSettingsInput{
		Cluster:  aws.String("arn:aws:ecs:us-east-1:000000000000:cluster/u"),
		Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enabled")}},
	}))
	if len(out.Cluster.Settings) != 1 || aws.ToString(out.Cluster.Settings[0].Value) != "enabled" {
		t.Fatalf("settings after update: %+v", out.Cluster.Settings)
	}
	upd := must[*ecs.UpdateClusterOutput](t)(c.UpdateCluster(ctx(t), &ecs.UpdateClusterInput{
		Cluster: aws.String("u"),
		Configuration: &types.ClusterConfiguration{ExecuteCommandConfiguration: &types.ExecuteCommandConfiguration{
			Logging: types.ExecuteCommandLoggingNone,
		}},
	}))
	if upd.Cluster.Configuration == nil || upd.Cluster.Configuration.ExecuteCommandConfiguration.Logging != types.ExecuteCommandLoggingNone {
		t.Fatalf("configuration after update: %+v", upd.Cluster.Configuration)
	}
	desc := must[*ecs.DescribeClustersOutput](t)(c.DescribeClusters(ctx(t), &ecs.DescribeClustersInput{Clusters: []string{"u"}, Include: []types.ClusterField{types.ClusterFieldSettings}}))
	if aws.ToString(desc.Clusters[0].Settings[0].Value) != "enabled" {
		t.Fatalf("update not stored: %+v", desc.Clusters[0].Settings)
	}
	_, err := c.UpdateClusterSettings(ctx(t), &ecs.UpdateClusterSettingsInput{Cluster: aws.String("nope"), Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enabled")}}})
	wantErr[*types.ClusterNotFoundException](t, err)
	_, err = c.UpdateCluster(ctx(t), &ecs.UpdateClusterInput{Cluster: aws.String("u"), ServiceConnectDefaults: &types.ClusterServiceConnectDefaultsRequest{Namespace: aws.String("ns")}})
	wantErr[*types.NamespaceNotFoundException](t, err)
}

func TestDeleteCluster(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("d")}))
	del := must[*ecs.DeleteClusterOutput](t)(c.DeleteCluster(ctx(t), &ecs.DeleteClusterInput{Cluster: aws.String("d")}))
	if aws.ToString(del.Cluster.Status) != "INACTIVE" {
		t.Fatalf("deleted cluster status %q", aws.ToString(del.Cluster.Status))
	}
	desc := must[*ecs.DescribeClustersOutput](t)(c.DescribeClusters(ctx(t), &ecs.DescribeClustersInput{Clusters: []string{"d"}}))
	if len(desc.Clusters) != 1 || aws.ToString(desc.Clusters[0].Status) != "INACTIVE" {
		t.Fatalf("describe after delete: %+v", desc)
	}
	if l := must[*ecs.ListClustersOutput](t)(c.ListClusters(ctx(t), &ecs.ListClustersInput{})); len(l.ClusterArns) != 0 {
		t.Fatalf("inactive cluster listed: %v", l.ClusterArns)
	}
	_, err := c.DeleteCluster(ctx(t), &ecs.DeleteClusterInput{Cluster: aws.String("d")})
	wantErr[*types.ClusterNotFoundException](t, err)
	// Re-creating an INACTIVE cluster makes it ACTIVE again.
	re := must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("d")}))
	if aws.ToString(re.Cluster.Status) != "ACTIVE" {
		t.Fatalf("re-created cluster status %q", aws.ToString(re.Cluster.Status))
	}
}

// TestDeleteClusterRefusesNonEmpty seeds the store with the objects later
// APIs create (instances, services, tasks) and checks each ClusterContains*
// refusal.
func TestDeleteClusterRefusesNonEmpty(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	cases := []struct {
		name string
		key  func(cluster string) string
		val  any
		want func(error)
	}{
		{"instance", func(cl string) string { return state.InstanceKey(cl, "i1") }, ecstypes.ContainerInstance{Status: "ACTIVE"},
			func(err error) { wantErr[*types.ClusterContainsContainerInstancesException](t, err) }},
		{"service", func(cl string) string { return state.ServicesClusterPrefix(cl) + "web" }, map[string]string{"status": "ACTIVE"},
			func(err error) { wantErr[*types.ClusterContainsServicesException](t, err) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := "full-" + tc.name
			must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String(name)}))
			if _, err := b.cp.Store().Update(ctx(t), func(tx store.Tx) error { return state.Put(tx, tc.key(name), tc.val) }); err != nil {
				t.Fatal(err)
			}
			_, err := c.DeleteCluster(ctx(t), &ecs.DeleteClusterInput{Cluster: aws.String(name)})
			tc.want(err)
			desc := must[*ecs.DescribeClustersOutput](t)(c.DescribeClusters(ctx(t), &ecs.DescribeClustersInput{Clusters: []string{name}}))
			if aws.ToString(desc.Clusters[0].Status) != "ACTIVE" {
				t.Fatalf("refused delete changed status to %q", aws.ToString(desc.Clusters[0].Status))
			}
		})
	}
	desc := must[*ecs.DescribeClustersOutput](t)(c.DescribeClusters(ctx(t), &ecs.DescribeClustersInput{Clusters: []string{"full-instance"}}))
	if desc.Clusters[0].RegisteredContainerInstancesCount != 1 {
		t.Fatalf("counts: instances %d", desc.Clusters[0].RegisteredContainerInstancesCount)
	}
}
