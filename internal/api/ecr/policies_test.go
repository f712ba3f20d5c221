package ecr_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
)

const keepOneUntagged = `{"rules":[{"rulePriority":1,"description":"keep one untagged image","selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`

func TestLifecyclePolicy(t *testing.T) {
	f := newFixture(t)
	f.createRepo("app")
	get := func() error {
		_, err := f.api.GetLifecyclePolicy(f.ctx, &ecrtypes.GetLifecyclePolicyRequest{RepositoryName: "app"})
		return err
	}
	wantErr(t, get(), "LifecyclePolicyNotFoundException", "Lifecycle policy does not exist for the repository with name 'app' in the registry with id '000000000000'")

	put := must[*ecrtypes.PutLifecyclePolicyResponse](t)(f.api.PutLifecyclePolicy(f.ctx, &ecrtypes.PutLifecyclePolicyRequest{RepositoryName: "app", LifecyclePolicyText: keepOneUntagged}))
	if put.LifecyclePolicyText != keepOneUntagged || put.RegistryId != account || put.RepositoryName != "app" {
		t.Fatalf("put = %+v", put)
	}
	got := must[*ecrtypes.GetLifecyclePolicyResponse](t)(f.api.GetLifecyclePolicy(f.ctx, &ecrtypes.GetLifecyclePolicyRequest{RepositoryName: "app"}))
	if got.LifecyclePolicyText != keepOneUntagged || got.LastEvaluatedAt != nil {
		t.Fatalf("get = %+v", got)
	}
	del := must[*ecrtypes.DeleteLifecyclePolicyResponse](t)(f.api.DeleteLifecyclePolicy(f.ctx, &ecrtypes.DeleteLifecyclePolicyRequest{RepositoryName: "app"}))
	if del.LifecyclePolicyText != keepOneUntagged {
		t.Fatalf("delete = %+v", del)
	}
	wantErr(t, get(), "LifecyclePolicyNotFoundException", "'app'")
	_, err := f.api.DeleteLifecyclePolicy(f.ctx, &ecrtypes.DeleteLifecyclePolicyRequest{RepositoryName: "app"})
	wantErr(t, err, "LifecyclePolicyNotFoundException", "'app'")

	pad := ` {"rules":[{"rulePriority":1,"description":"padding to the model's 100 characters","selection":`
	cases := []struct {
		name, text, msg string
	}{
		{"not json", `this is not a lifecycle policy, but it is long enough for the model's minimum length of 100 characters.`, "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: the policy must be a JSON object'"},
		{"transition", pad + `{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"transition"}}]}`, "Berth supports only the expire action"},
		{"tagged without prefixes", pad + `{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`, "tagStatus tagged requires a tagPrefixList or a tagPatternList"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.call("PutLifecyclePolicy", map[string]any{"repositoryName": "app", "lifecyclePolicyText": c.text})
			wantErr(t, err, "InvalidParameterException", c.msg)
		})
	}
	// The model's minimum length applies first.
	if _, err := f.call("PutLifecyclePolicy", map[string]any{"repositoryName": "app", "lifecyclePolicyText": `{"rules":[]}`}); err == nil {
		t.Fatal("a 12-character policy was accepted")
	}
	_, err = f.call("PutLifecyclePolicy", map[string]any{"repositoryName": "nope", "lifecyclePolicyText": keepOneUntagged})
	wantErr(t, err, "RepositoryNotFoundException", "'nope'")
}

func TestLifecyclePolicyPreview(t *testing.T) {
	f := newFixture(t)
	f.createRepo("app")
	_, err := f.api.StartLifecyclePolicyPreview(f.ctx, &ecrtypes.StartLifecyclePolicyPreviewRequest{RepositoryName: "app"})
	wantErr(t, err, "LifecyclePolicyNotFoundException", "'app'")
	_, err = f.call("GetLifecyclePolicyPreview", map[string]any{"repositoryName": "app"})
	wantErr(t, err, "LifecyclePolicyPreviewNotFoundException", "'app'")

	d := f.tagged("app", "", "", "", "v1")
	must[*ecrtypes.PutLifecyclePolicyResponse](t)(f.api.PutLifecyclePolicy(f.ctx, &ecrtypes.PutLifecyclePolicyRequest{RepositoryName: "app", LifecyclePolicyText: keepOneUntagged}))
	start := must[*ecrtypes.StartLifecyclePolicyPreviewResponse](t)(f.api.StartLifecyclePolicyPreview(f.ctx, &ecrtypes.StartLifecyclePolicyPreviewRequest{RepositoryName: "app"}))
	if start.Status != ecrtypes.LifecyclePolicyPreviewStatusInProgress || start.LifecyclePolicyText != keepOneUntagged {
		t.Fatalf("start = %+v", start)
	}
	want := []string{d[0], d[1]}
	slices.Sort(want)
	for size := 0; size <= 3; size++ {
		var got []string
		token := ""
		for range 5 {
			body := map[string]any{"repositoryName": "app"}
			if size > 0 {
				body["maxResults"] = size
			}
			if token != "" {
				body["nextToken"] = token
			}
			out, err := f.call("GetLifecyclePolicyPreview", body)
			if err != nil {
				t.Fatal(err)
			}
			resp := out.(*ecrtypes.GetLifecyclePolicyPreviewResponse)
			if resp.Status != ecrtypes.LifecyclePolicyPreviewStatusComplete || resp.Summary.ExpiringImageTotalCount != 2 {
				t.Fatalf("preview = %+v", resp)
			}
			for _, r := range resp.PreviewResults {
				if r.AppliedRulePriority != 1 || r.Action.Type != ecrtypes.ImageActionTypeExpire || r.ImagePushedAt == nil {
					t.Fatalf("result = %+v", r)
				}
				got = append(got, r.ImageDigest)
			}
			if token = resp.NextToken; token == "" {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("size %d: preview expires %v, want %v", size, got, want)
		}
	}
	// A preview of another policy text, filtered by imageIds.
	tagged := `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}`
	f.clk.Advance(48 * time.Hour)
	must[*ecrtypes.StartLifecyclePolicyPreviewResponse](t)(f.api.StartLifecyclePolicyPreview(f.ctx, &ecrtypes.StartLifecyclePolicyPreviewRequest{RepositoryName: "app", LifecyclePolicyText: tagged}))
	out := must[*ecrtypes.GetLifecyclePolicyPreviewResponse](t)(f.api.GetLifecyclePolicyPreview(f.ctx, &ecrtypes.GetLifecyclePolicyPreviewRequest{RepositoryName: "app", ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: "v1"}}}))
	if len(out.PreviewResults) != 1 || out.PreviewResults[0].ImageDigest != d[3] || fmt.Sprint(out.PreviewResults[0].ImageTags) != "[v1]" {
		t.Fatalf("tagged preview = %+v", out.PreviewResults)
	}
	// The repository's own policy is untouched by a preview.
	if got := must[*ecrtypes.GetLifecyclePolicyResponse](t)(f.api.GetLifecyclePolicy(f.ctx, &ecrtypes.GetLifecyclePolicyRequest{RepositoryName: "app"})); got.LifecyclePolicyText != keepOneUntagged {
		t.Fatalf("policy = %s", got.LifecyclePolicyText)
	}
}

func TestRepositoryPolicy(t *testing.T) {
	f := newFixture(t)
	f.createRepo("app")
	policy := `{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage"]}]}`
	_, err := f.api.GetRepositoryPolicy(f.ctx, &ecrtypes.GetRepositoryPolicyRequest{RepositoryName: "app"})
	wantErr(t, err, "RepositoryPolicyNotFoundException", "Repository policy does not exist for the repository with name 'app' in the registry with id '000000000000'")
	set := must[*ecrtypes.SetRepositoryPolicyResponse](t)(f.api.SetRepositoryPolicy(f.ctx, &ecrtypes.SetRepositoryPolicyRequest{RepositoryName: "app", PolicyText: policy}))
	if set.PolicyText != policy || set.RegistryId != account || set.RepositoryName != "app" {
		t.Fatalf("set = %+v", set)
	}
	if got := must[*ecrtypes.GetRepositoryPolicyResponse](t)(f.api.GetRepositoryPolicy(f.ctx, &ecrtypes.GetRepositoryPolicyRequest{RepositoryName: "app"})); got.PolicyText != policy {
		t.Fatalf("get = %+v", got)
	}
	if del := must[*ecrtypes.DeleteRepositoryPolicyResponse](t)(f.api.DeleteRepositoryPolicy(f.ctx, &ecrtypes.DeleteRepositoryPolicyRequest{RepositoryName: "app"})); del.PolicyText != policy {
		t.Fatalf("delete = %+v", del)
	}
	cases := []struct {
		op        string
		body      map[string]any
		code, msg string
	}{
		{"DeleteRepositoryPolicy", map[string]any{"repositoryName": "app"}, "RepositoryPolicyNotFoundException", "'app'"},
		{"SetRepositoryPolicy", map[string]any{"repositoryName": "app", "policyText": "not json"}, "InvalidParameterException", "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'"},
		{"SetRepositoryPolicy", map[string]any{"repositoryName": "app", "policyText": `{"Version":"2012-10-17"}`}, "InvalidParameterException", "no Statement"},
		{"SetRepositoryPolicy", map[string]any{"repositoryName": "nope", "policyText": policy}, "RepositoryNotFoundException", "'nope'"},
		{"GetRepositoryPolicy", map[string]any{"repositoryName": "nope"}, "RepositoryNotFoundException", "'nope'"},
	}
	for _, c := range cases {
		_, err := f.call(c.op, c.body)
		wantErr(t, err, c.code, c.msg)
	}
}
