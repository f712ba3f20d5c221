package e2e

import (
	"fmt"
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

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func TestTagging(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	cl := must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("tags")})).Cluster
	td := must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), web("tagged"))).TaskDefinition
	for _, arn := range []string{aws.ToString(cl.ClusterArn), aws.ToString(td.TaskDefinitionArn)} {
		t.Run(arn, func(t *testing.T) {
			must[*ecs.TagResourceOutput](t)(c.TagResource(ctx(t), &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{
				{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("b"), Value: aws.String("2")},
			}}))
			must[*ecs.TagResourceOutput](t)(c.TagResource(ctx(t), &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{
				{Key: aws.String("a"), Value: aws.String("updated")},
			}}))
			got := tagMap(must[*ecs.ListTagsForResourceOutput](t)(c.ListTagsForResource(ctx(t), &ecs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})).Tags)
			if len(got) != 2 || got["a"] != "updated" || got["b"] != "2" {
				t.Fatalf("tags after tagging: %v", got)
			}
			must[*ecs.UntagResourceOutput](t)(c.UntagResource(ctx(t), &ecs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"a", "never-set"}}))
			got = tagMap(must[*ecs.ListTagsForResourceOutput](t)(c.ListTagsForResource(ctx(t), &ecs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})).Tags)
			if len(got) != 1 || got["b"] != "2" {
				t.Fatalf("tags after untagging: %v", got)
			}
			_, err := c.TagResource(ctx(t), &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("AWS:x"), Value: aws.String("1")}}})
			wantErr[*types.InvalidParameterException](t, err)
			var many []types.Tag
			for i := 0; i < 50; i++ {
				many = append(many, types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")})
			}
			_, err = c.TagResource(ctx(t), &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: many})
			if e := wantErr[*types.InvalidParameterException](t, err); !strings.Contains(e.ErrorMessage(), "50") {
				t.Fatalf("tag limit message %q", e.ErrorMessage())
			}
		})
	}
	_, err := c.ListTagsForResource(ctx(t), &ecs.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:000000000000:cluster/none")})
	wantErr[*types.ClusterNotFoundException](t, err)
	_, err = c.ListTagsForResource(ctx(t), &ecs.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:000000000000:task-definition/none:1")})
	wantErr[*types.ResourceNotFoundException](t, err)
	_, err = c.TagResource(ctx(t), &ecs.TagResourceInput{ResourceArn: aws.String("tags"), Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}}})
	wantErr[*types.InvalidParameterException](t, err)
}

// seedInstance stores a container instance as the agent's registration will.
func seedInstance(t *testing.T, b *berth, cluster, id string) string {
	t.Helper()
	arn := fmt.Sprintf("arn:aws:ecs:us-east-1:000000000000:container-instance/%s/%s", cluster, id)
	ci := ecstypes.ContainerInstance{ContainerInstanceArn: arn, Status: "ACTIVE", Attributes: []ecstypes.Attribute{{Name: "ecs.os-type", Value: "linux"}}}
	if _, err := b.cp.Store().Update(ctx(t), func(tx store.Tx) error { return state.Put(tx, state.InstanceKey(cluster, id), ci) }); err != nil {
		t.Fatal(err)
	}
	return arn
}

func TestAttributes(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("attrs")}))
	i1 := seedInstance(t, b, "attrs", "aaa111")
	i2 := seedInstance(t, b, "attrs", "bbb222")
	put := must[*ecs.PutAttributesOutput](t)(c.PutAttributes(ctx(t), &ecs.PutAttributesInput{Cluster: aws.String("attrs"), Attributes: []types.Attribute{
		{Name: aws.String("stack"), Value: aws.String("prod"), TargetId: aws.String(i1)},
		{Name: aws.String("stack"), Value: aws.String("dev"), TargetId: aws.String("bbb222"), TargetType: types.TargetTypeContainerInstance},
		{Name: aws.String("gpu"), TargetId: aws.String(i2)},
	}}))
	if len(put.Attributes) != 3 {
		t.Fatalf("put answered %d attributes", len(put.Attributes))
	}
	list := func(in ecs.ListAttributesInput) []string {
		in.Cluster, in.TargetType = aws.String("attrs"), types.TargetTypeContainerInstance
		var out []string
		p := ecs.NewListAttributesPaginator(c, &in)
		for p.HasMorePages() {
			for _, a := range must[*ecs.ListAttributesOutput](t)(p.NextPage(ctx(t))).Attributes {
				out = append(out, fmt.Sprintf("%s=%s@%s", aws.ToString(a.Name), aws.ToString(a.Value), strings.TrimPrefix(aws.ToString(a.TargetId), "arn:aws:ecs:us-east-1:000000000000:container-instance/attrs/")))
			}
		}
		return out
	}
	if got := list(ecs.ListAttributesInput{AttributeName: aws.String("stack")}); !slices.Equal(got, []string{"stack=prod@aaa111", "stack=dev@bbb222"}) {
		t.Fatalf("by name: %v", got)
	}
	if got := list(ecs.ListAttributesInput{AttributeName: aws.String("stack"), AttributeValue: aws.String("dev")}); !slices.Equal(got, []string{"stack=dev@bbb222"}) {
		t.Fatalf("by name and value: %v", got)
	}
	// Pages never exceed maxResults, even inside one instance's attributes.
	var all []string
	p := ecs.NewListAttributesPaginator(c, &ecs.ListAttributesInput{Cluster: aws.String("attrs"), TargetType: types.TargetTypeContainerInstance, MaxResults: aws.Int32(1)})
	for p.HasMorePages() {
		page := must[*ecs.ListAttributesOutput](t)(p.NextPage(ctx(t)))
		if len(page.Attributes) > 1 {
			t.Fatalf("page of %d attributes with maxResults 1", len(page.Attributes))
		}
		for _, a := range page.Attributes {
			all = append(all, aws.ToString(a.Name)+"@"+aws.ToString(a.TargetId)[len(aws.ToString(a.TargetId))-6:])
		}
	}
	if want := []string{"ecs.os-type@aaa111", "stack@aaa111", "ecs.os-type@bbb222", "stack@bbb222", "gpu@bbb222"}; !slices.Equal(all, want) {
		t.Fatalf("all attributes, one per page: %v, want %v", all, want)
	}
	must[*ecs.DeleteAttributesOutput](t)(c.DeleteAttributes(ctx(t), &ecs.DeleteAttributesInput{Cluster: aws.String("attrs"), Attributes: []types.Attribute{{Name: aws.String("gpu"), TargetId: aws.String(i2)}}}))
	if got := list(ecs.ListAttributesInput{AttributeName: aws.String("gpu")}); len(got) != 0 {
		t.Fatalf("deleted attribute still listed: %v", got)
	}
	_, err := c.PutAttributes(ctx(t), &ecs.PutAttributesInput{Cluster: aws.String("attrs"), Attributes: []types.Attribute{{Name: aws.String("x"), TargetId: aws.String("nope"), TargetType: types.TargetTypeContainerInstance}}})
	wantErr[*types.TargetNotFoundException](t, err)
	// A short-form ID needs targetType, as the model documents.
	_, err = c.PutAttributes(ctx(t), &ecs.PutAttributesInput{Cluster: aws.String("attrs"), Attributes: []types.Attribute{{Name: aws.String("x"), TargetId: aws.String("aaa111")}}})
	wantErr[*types.InvalidParameterException](t, err)
	_, err = c.PutAttributes(ctx(t), &ecs.PutAttributesInput{Cluster: aws.String("attrs"), Attributes: []types.Attribute{{Name: aws.String("bad name!"), TargetId: aws.String(i1)}}})
	wantErr[*types.InvalidParameterException](t, err)
	var ten []types.Attribute
	for i := 0; i < 10; i++ {
		ten = append(ten, types.Attribute{Name: aws.String(fmt.Sprintf("custom%d", i)), TargetId: aws.String(i1)})
	}
	_, err = c.PutAttributes(ctx(t), &ecs.PutAttributesInput{Cluster: aws.String("attrs"), Attributes: ten})
	wantErr[*types.AttributeLimitExceededException](t, err)
	_, err = c.ListAttributes(ctx(t), &ecs.ListAttributesInput{Cluster: aws.String("none"), TargetType: types.TargetTypeContainerInstance})
	wantErr[*types.ClusterNotFoundException](t, err)
}

func TestAccountSettings(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	root := "arn:aws:iam::000000000000:root"
	user := "arn:aws:iam::000000000000:user/dev"
	eff := func(principal string) map[string]types.Setting {
		in := &ecs.ListAccountSettingsInput{EffectiveSettings: true, MaxResults: 3}
		if principal != "" {
			in.PrincipalArn = aws.String(principal)
		}
		m := map[string]types.Setting{}
		p := ecs.NewListAccountSettingsPaginator(c, in)
		for p.HasMorePages() {
			for _, s := range must[*ecs.ListAccountSettingsOutput](t)(p.NextPage(ctx(t))).Settings {
				m[string(s.Name)] = s
			}
		}
		return m
	}
	defaults := eff("")
	if len(defaults) != len(types.SettingName("").Values()) {
		t.Fatalf("effective settings cover %d of %d names", len(defaults), len(types.SettingName("").Values()))
	}
	if s := defaults["containerInsights"]; aws.ToString(s.Value) != "disabled" || s.Type != types.SettingTypeAwsManaged {
		t.Fatalf("default containerInsights: %+v", s)
	}
	must[*ecs.PutAccountSettingDefaultOutput](t)(c.PutAccountSettingDefault(ctx(t), &ecs.PutAccountSettingDefaultInput{Name: types.SettingNameContainerInsights, Value: aws.String("enabled")}))
	set := must[*ecs.PutAccountSettingOutput](t)(c.PutAccountSetting(ctx(t), &ecs.PutAccountSettingInput{Name: types.SettingNameAwsvpcTrunking, Value: aws.String("enabled"), PrincipalArn: aws.String(user)}))
	if aws.ToString(set.Setting.PrincipalArn) != user || set.Setting.Type != types.SettingTypeUser {
		t.Fatalf("put for user: %+v", set.Setting)
	}
	u := eff(user)
	if aws.ToString(u["containerInsights"].Value) != "enabled" || aws.ToString(u["containerInsights"].PrincipalArn) != root {
		t.Fatalf("user inherits the account default: %+v", u["containerInsights"])
	}
	if aws.ToString(u["awsvpcTrunking"].Value) != "enabled" {
		t.Fatalf("user's own setting: %+v", u["awsvpcTrunking"])
	}
	own := must[*ecs.ListAccountSettingsOutput](t)(c.ListAccountSettings(ctx(t), &ecs.ListAccountSettingsInput{PrincipalArn: aws.String(user)}))
	if len(own.Settings) != 1 || own.Settings[0].Name != types.SettingNameAwsvpcTrunking {
		t.Fatalf("user's explicit settings: %+v", own.Settings)
	}
	filtered := must[*ecs.ListAccountSettingsOutput](t)(c.ListAccountSettings(ctx(t), &ecs.ListAccountSettingsInput{EffectiveSettings: true, Name: types.SettingNameContainerInsights, Value: aws.String("enabled")}))
	if len(filtered.Settings) != 1 {
		t.Fatalf("filter by name and value: %+v", filtered.Settings)
	}
	// New clusters take containerInsights from the account setting.
	cl := must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("insights")})).Cluster
	if aws.ToString(cl.Settings[0].Value) != "enabled" {
		t.Fatalf("cluster containerInsights %q, want the account default", aws.ToString(cl.Settings[0].Value))
	}
	del := must[*ecs.DeleteAccountSettingOutput](t)(c.DeleteAccountSetting(ctx(t), &ecs.DeleteAccountSettingInput{Name: types.SettingNameAwsvpcTrunking, PrincipalArn: aws.String(user)}))
	if aws.ToString(del.Setting.Value) != "enabled" {
		t.Fatalf("delete answered %+v", del.Setting)
	}
	if v := aws.ToString(eff(user)["awsvpcTrunking"].Value); v != "disabled" {
		t.Fatalf("after delete the user's awsvpcTrunking is %q", v)
	}
	// Terraform treats exactly this message as success when destroying a
	// long-ARN setting, so the wording is ECS's own.
	_, err := c.PutAccountSettingDefault(ctx(t), &ecs.PutAccountSettingDefaultInput{Name: types.SettingNameTaskLongArnFormat, Value: aws.String("disabled")})
	if e := wantErr[*types.InvalidParameterException](t, err); e.ErrorMessage() != "You can no longer disable Long Arn settings" {
		t.Fatalf("long ARN message %q", e.ErrorMessage())
	}
	for _, in := range []*ecs.PutAccountSettingInput{
		{Name: types.SettingNameContainerInsights, Value: aws.String("maybe")},
		{Name: types.SettingNameGuardDutyActivate, Value: aws.String("on")},
		{Name: types.SettingNameServiceLongArnFormat, Value: aws.String("disabled")},
		{Name: types.SettingNameFargateTaskRetirementWaitPeriod, Value: aws.String("3")},
		{Name: types.SettingNameFargateTaskRetirementWaitPeriod, Value: aws.String("7"), PrincipalArn: aws.String(user)},
		{Name: types.SettingNameAwsvpcTrunking, Value: aws.String("enabled"), PrincipalArn: aws.String("arn:aws:iam::111111111111:user/x")},
	} {
		_, err := c.PutAccountSetting(ctx(t), in)
		wantErr[*types.InvalidParameterException](t, err)
	}
}

func TestUnimplementedActionNamesItself(t *testing.T) {
	b := startBerth(t)
	_, err := b.ecsClient().DescribeCapacityProviders(ctx(t), &ecs.DescribeCapacityProvidersInput{})
	e := wantErr[*types.UnsupportedFeatureException](t, err)
	if !strings.Contains(e.ErrorMessage(), "DescribeCapacityProviders") {
		t.Fatalf("message %q does not name the action", e.ErrorMessage())
	}
}
