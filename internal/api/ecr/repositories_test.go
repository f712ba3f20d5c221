package ecr_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
)

func TestCreateRepositoryDefaults(t *testing.T) {
	f := newFixture(t)
	repo := f.createRepo("team/web")
	checks := []struct {
		name      string
		got, want any
	}{
		{"arn", repo.RepositoryArn, arnBase + "team/web"},
		{"registryId", repo.RegistryId, account},
		{"name", repo.RepositoryName, "team/web"},
		{"uri", repo.RepositoryUri, host + "/team/web"},
		{"createdAt", repo.CreatedAt.Time, f.clk.Now()},
		{"mutability", repo.ImageTagMutability, ecrtypes.ImageTagMutabilityMutable},
		{"scanOnPush", repo.ImageScanningConfiguration.ScanOnPush, false},
		{"encryption", *repo.EncryptionConfiguration, ecrtypes.EncryptionConfiguration{EncryptionType: ecrtypes.EncryptionTypeAes256}},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// The wire shape: ECR's member names, none of Berth's bookkeeping.
	out, err := f.call("DescribeRepositories", map[string]any{"repositoryNames": []string{"team/web"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out)
	for _, want := range []string{`"imageScanningConfiguration":{"scanOnPush":false}`, `"encryptionConfiguration":{"encryptionType":"AES256"}`, `"createdAt":1893553445`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("reply lacks %s: %s", want, b)
		}
	}
	if strings.Contains(string(b), "berth") {
		t.Errorf("reply leaks the envelope: %s", b)
	}
}

func TestCreateRepositoryOptions(t *testing.T) {
	f := newFixture(t)
	repo := f.createRepo("kms", func(in *ecrtypes.CreateRepositoryRequest) {
		in.ImageTagMutability = ecrtypes.ImageTagMutabilityImmutableWithExclusion
		in.ImageTagMutabilityExclusionFilters = []ecrtypes.ImageTagMutabilityExclusionFilter{{FilterType: ecrtypes.ImageTagMutabilityExclusionFilterTypeWildcard, Filter: "latest*"}}
		in.ImageScanningConfiguration = &ecrtypes.ImageScanningConfiguration{ScanOnPush: true}
		in.EncryptionConfiguration = &ecrtypes.EncryptionConfiguration{EncryptionType: ecrtypes.EncryptionTypeKms, KmsKey: "arn:aws:kms:us-east-1:000000000000:key/abc"}
		in.Tags = []ecrtypes.Tag{{Key: "team", Value: "core"}}
	})
	if repo.ImageTagMutability != ecrtypes.ImageTagMutabilityImmutableWithExclusion || len(repo.ImageTagMutabilityExclusionFilters) != 1 ||
		!repo.ImageScanningConfiguration.ScanOnPush || repo.EncryptionConfiguration.KmsKey == "" {
		t.Fatalf("repository = %+v", repo)
	}
	tags := must[*ecrtypes.ListTagsForResourceResponse](t)(f.api.ListTagsForResource(f.ctx, &ecrtypes.ListTagsForResourceRequest{ResourceArn: repo.RepositoryArn}))
	if len(tags.Tags) != 1 || tags.Tags[0].Key != "team" {
		t.Fatalf("tags = %+v", tags.Tags)
	}
}

func TestCreateRepositoryRefuses(t *testing.T) {
	f := newFixture(t)
	f.createRepo("taken")
	many := make([]map[string]string, 51)
	for i := range many {
		many[i] = map[string]string{"Key": fmt.Sprint("k", i), "Value": "v"}
	}
	cases := []struct {
		name      string
		body      map[string]any
		code, msg string
	}{
		{"exists", map[string]any{"repositoryName": "taken"}, "RepositoryAlreadyExistsException", "The repository with name 'taken' already exists in the registry with id '000000000000'"},
		{"upper case", map[string]any{"repositoryName": "Web"}, "", "repositoryName"},
		{"too short", map[string]any{"repositoryName": "a"}, "", "repositoryName"},
		{"bad mutability", map[string]any{"repositoryName": "x1", "imageTagMutability": "SOMETIMES"}, "", "imageTagMutability"},
		{"filters without exclusion", map[string]any{"repositoryName": "x1", "imageTagMutability": "IMMUTABLE", "imageTagMutabilityExclusionFilters": []map[string]string{{"filterType": "WILDCARD", "filter": "a*"}}}, "InvalidParameterException", "only be used with imageTagMutability IMMUTABLE_WITH_EXCLUSION"},
		{"exclusion without filters", map[string]any{"repositoryName": "x1", "imageTagMutability": "MUTABLE_WITH_EXCLUSION"}, "InvalidParameterException", "requires at least one exclusion filter"},
		{"aes with key", map[string]any{"repositoryName": "x1", "encryptionConfiguration": map[string]string{"encryptionType": "AES256", "kmsKey": "k"}}, "InvalidParameterException", "kmsKey"},
		{"aws tag", map[string]any{"repositoryName": "x1", "tags": []map[string]string{{"Key": "aws:x", "Value": "v"}}}, "InvalidTagParameterException", "reserved"},
		{"duplicate tag", map[string]any{"repositoryName": "x1", "tags": []map[string]string{{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}}}, "InvalidTagParameterException", "more than once"},
		{"too many tags", map[string]any{"repositoryName": "x1", "tags": many}, "TooManyTagsException", "limit is 50"},
		{"foreign registry", map[string]any{"repositoryName": "x1", "registryId": "123456789012"}, "InvalidParameterException", "Berth serves one registry, '000000000000'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.call("CreateRepository", c.body)
			if c.code == "" {
				var ve *awsmodel.ValidationError
				if !errors.As(err, &ve) || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("got %v, want a validation error on %s", err, c.msg)
				}
				return
			}
			wantErr(t, err, c.code, c.msg)
		})
	}
}

func TestDescribeRepositories(t *testing.T) {
	f := newFixture(t)
	names := []string{"a/one", "a/two", "b1", "c1", "d1"}
	for _, n := range names {
		f.createRepo(n)
	}
	// Every page size walks every repository once, in name order; maxResults
	// left out (as clients usually do) means pages of 100.
	for size := 0; size <= 6; size++ {
		var got []string
		token := ""
		for pages := 0; ; pages++ {
			body := map[string]any{}
			if size > 0 {
				body["maxResults"] = size
			}
			if token != "" {
				body["nextToken"] = token
			}
			out, err := f.call("DescribeRepositories", body)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			resp := out.(*ecrtypes.DescribeRepositoriesResponse)
			if size > 0 && len(resp.Repositories) > size {
				t.Fatalf("size %d: page of %d", size, len(resp.Repositories))
			}
			for _, r := range resp.Repositories {
				got = append(got, r.RepositoryName)
			}
			token = resp.NextToken
			if token == "" || pages > 10 {
				break
			}
		}
		if !slices.Equal(got, names) {
			t.Errorf("size %d: listed %v, want %v", size, got, names)
		}
	}

	byName := must[*ecrtypes.DescribeRepositoriesResponse](t)(f.api.DescribeRepositories(f.ctx, &ecrtypes.DescribeRepositoriesRequest{RepositoryNames: []string{"c1", "a/one"}}))
	if len(byName.Repositories) != 2 || byName.Repositories[0].RepositoryName != "c1" {
		t.Fatalf("by name = %+v", byName.Repositories)
	}
	cases := []struct {
		name      string
		body      map[string]any
		code, msg string
	}{
		{"unknown name", map[string]any{"repositoryNames": []string{"c1", "nope"}}, "RepositoryNotFoundException", "The repository with name 'nope' does not exist in the registry with id '000000000000'"},
		{"foreign registry", map[string]any{"repositoryNames": []string{"c1"}, "registryId": "123456789012"}, "RepositoryNotFoundException", "in the registry with id '123456789012'"},
		{"names with paging", map[string]any{"repositoryNames": []string{"c1"}, "maxResults": 1}, "InvalidParameterException", "cannot be used when repositories are specified"},
		{"bad token", map[string]any{"nextToken": "!!"}, "InvalidParameterException", "nextToken"},
	}
	for _, c := range cases {
		_, err := f.call("DescribeRepositories", c.body)
		wantErr(t, err, c.code, c.msg)
	}
	// An explicit maxResults of 0 still breaks the model's range.
	if _, err := f.call("DescribeRepositories", map[string]any{"maxResults": 0}); err == nil || !strings.Contains(err.Error(), "maxResults") {
		t.Fatalf("maxResults 0: %v", err)
	}
	if _, err := f.call("DescribeRepositories", map[string]any{"maxResults": 1001}); err == nil || !strings.Contains(err.Error(), "maxResults") {
		t.Fatalf("maxResults 1001: %v", err)
	}
}

func TestDeleteRepository(t *testing.T) {
	f := newFixture(t)
	f.createRepo("app")
	f.push("app", "v1", "a")
	_, err := f.api.DeleteRepository(f.ctx, &ecrtypes.DeleteRepositoryRequest{RepositoryName: "app"})
	wantErr(t, err, "RepositoryNotEmptyException", "The repository with name 'app' in registry with id '000000000000' cannot be deleted because it still contains images")

	out := must[*ecrtypes.DeleteRepositoryResponse](t)(f.api.DeleteRepository(f.ctx, &ecrtypes.DeleteRepositoryRequest{RepositoryName: "app", Force: true}))
	if out.Repository.RepositoryName != "app" || out.Repository.RepositoryArn != arnBase+"app" {
		t.Fatalf("deleted = %+v", out.Repository)
	}
	_, err = f.api.DescribeImages(f.ctx, &ecrtypes.DescribeImagesRequest{RepositoryName: "app"})
	wantErr(t, err, "RepositoryNotFoundException", "'app'")
	_, err = f.api.DeleteRepository(f.ctx, &ecrtypes.DeleteRepositoryRequest{RepositoryName: "app"})
	wantErr(t, err, "RepositoryNotFoundException", "'app'")

	// A new repository of the same name starts empty: force purged the
	// images and their tags.
	f.createRepo("app")
	if imgs := f.describe("app"); len(imgs) != 0 {
		t.Fatalf("recreated repository holds %+v", imgs)
	}
	_, err = f.api.BatchGetImage(f.ctx, &ecrtypes.BatchGetImageRequest{RepositoryName: "app", ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: "v1"}}})
	if err != nil {
		t.Fatal(err)
	}
	// An empty repository needs no force.
	must[*ecrtypes.DeleteRepositoryResponse](t)(f.api.DeleteRepository(f.ctx, &ecrtypes.DeleteRepositoryRequest{RepositoryName: "app"}))
}

func TestRepositorySettings(t *testing.T) {
	f := newFixture(t)
	f.createRepo("app")
	mut := must[*ecrtypes.PutImageTagMutabilityResponse](t)(f.api.PutImageTagMutability(f.ctx, &ecrtypes.PutImageTagMutabilityRequest{RepositoryName: "app", ImageTagMutability: ecrtypes.ImageTagMutabilityImmutable}))
	if mut.ImageTagMutability != ecrtypes.ImageTagMutabilityImmutable || mut.RegistryId != account || mut.ImageTagMutabilityExclusionFilters == nil {
		t.Fatalf("PutImageTagMutability = %+v", mut)
	}
	scan := must[*ecrtypes.PutImageScanningConfigurationResponse](t)(f.api.PutImageScanningConfiguration(f.ctx, &ecrtypes.PutImageScanningConfigurationRequest{RepositoryName: "app", ImageScanningConfiguration: &ecrtypes.ImageScanningConfiguration{ScanOnPush: true}}))
	if !scan.ImageScanningConfiguration.ScanOnPush {
		t.Fatalf("PutImageScanningConfiguration = %+v", scan)
	}
	repo := must[*ecrtypes.DescribeRepositoriesResponse](t)(f.api.DescribeRepositories(f.ctx, &ecrtypes.DescribeRepositoriesRequest{RepositoryNames: []string{"app"}})).Repositories[0]
	if repo.ImageTagMutability != ecrtypes.ImageTagMutabilityImmutable || !repo.ImageScanningConfiguration.ScanOnPush {
		t.Fatalf("stored = %+v", repo)
	}
	cases := []struct {
		op        string
		body      map[string]any
		code, msg string
	}{
		{"PutImageTagMutability", map[string]any{"repositoryName": "nope", "imageTagMutability": "MUTABLE"}, "RepositoryNotFoundException", "'nope'"},
		{"PutImageTagMutability", map[string]any{"repositoryName": "app", "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION"}, "InvalidParameterException", "exclusion filter"},
	}
	for _, c := range cases {
		_, err := f.call(c.op, c.body)
		wantErr(t, err, c.code, c.msg)
	}
	if _, err := f.call("PutImageTagMutability", map[string]any{"repositoryName": "app"}); err == nil || !strings.Contains(err.Error(), "'imageTagMutability' failed to satisfy constraint: Member must not be null") {
		t.Fatalf("missing imageTagMutability: %v", err)
	}
	reg := must[*ecrtypes.DescribeRegistryResponse](t)(f.api.DescribeRegistry(f.ctx, &ecrtypes.DescribeRegistryRequest{}))
	if reg.RegistryId != account || reg.ReplicationConfiguration == nil {
		t.Fatalf("DescribeRegistry = %+v", reg)
	}
}

func TestTags(t *testing.T) {
	f := newFixture(t)
	arn := f.createRepo("app").RepositoryArn
	list := func() string {
		out := must[*ecrtypes.ListTagsForResourceResponse](t)(f.api.ListTagsForResource(f.ctx, &ecrtypes.ListTagsForResourceRequest{ResourceArn: arn}))
		var s []string
		for _, tg := range out.Tags {
			s = append(s, tg.Key+"="+tg.Value)
		}
		return strings.Join(s, ",")
	}
	must[*ecrtypes.TagResourceResponse](t)(f.api.TagResource(f.ctx, &ecrtypes.TagResourceRequest{ResourceArn: arn, Tags: []ecrtypes.Tag{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}}))
	must[*ecrtypes.TagResourceResponse](t)(f.api.TagResource(f.ctx, &ecrtypes.TagResourceRequest{ResourceArn: arn, Tags: []ecrtypes.Tag{{Key: "a", Value: "3"}}}))
	if got := list(); got != "a=3,b=2" {
		t.Fatalf("tags = %s", got)
	}
	must[*ecrtypes.UntagResourceResponse](t)(f.api.UntagResource(f.ctx, &ecrtypes.UntagResourceRequest{ResourceArn: arn, TagKeys: []string{"a", "zzz"}}))
	if got := list(); got != "b=2" {
		t.Fatalf("tags = %s", got)
	}
	var fifty []ecrtypes.Tag
	for i := range 49 {
		fifty = append(fifty, ecrtypes.Tag{Key: fmt.Sprint("k", i), Value: "v"})
	}
	must[*ecrtypes.TagResourceResponse](t)(f.api.TagResource(f.ctx, &ecrtypes.TagResourceRequest{ResourceArn: arn, Tags: fifty}))
	cases := []struct {
		op        string
		body      map[string]any
		code, msg string
	}{
		{"TagResource", map[string]any{"resourceArn": arn, "tags": []map[string]string{{"Key": "one-more", "Value": "v"}}}, "TooManyTagsException", "would have 51 tags"},
		{"TagResource", map[string]any{"resourceArn": arn, "tags": []map[string]string{{"Key": strings.Repeat("k", 129), "Value": "v"}}}, "InvalidTagParameterException", "1 to 128"},
		{"TagResource", map[string]any{"resourceArn": "app", "tags": []map[string]string{{"Key": "k", "Value": "v"}}}, "InvalidParameterException", "Invalid ARN"},
		{"TagResource", map[string]any{"resourceArn": arnBase + "nope", "tags": []map[string]string{{"Key": "k", "Value": "v"}}}, "RepositoryNotFoundException", "'nope'"},
		{"ListTagsForResource", map[string]any{"resourceArn": "arn:aws:ecr:eu-west-1:000000000000:repository/app"}, "RepositoryNotFoundException", "'app'"},
		{"UntagResource", map[string]any{"resourceArn": arn, "tagKeys": []string{"aws:x"}}, "InvalidTagParameterException", "reserved"},
	}
	for _, c := range cases {
		_, err := f.call(c.op, c.body)
		wantErr(t, err, c.code, c.msg)
	}
}

func TestUnimplemented(t *testing.T) {
	f := newFixture(t)
	svc := f.api.JSONService()
	if svc.NotImplementedCode != "UnsupportedCommandException" || svc.ValidationCode != "InvalidParameterException" || svc.ServerErrorCode != "ServerException" || svc.MaxBodyBytes < 28<<20-1 {
		t.Fatalf("service = %+v", svc)
	}
	_, err := f.call("GetRegistryPolicy", map[string]any{})
	var nie *awsmodel.NotImplementedError
	if !errors.As(err, &nie) || !strings.Contains(err.Error(), "GetRegistryPolicy") {
		t.Fatalf("got %v", err)
	}
}

// TestAbsentMembersAreNotValidated checks the dispatcher's correction of the
// generated validator: constraints apply to the members a request carries.
// Leaving out an optional maxResults or imageTag is fine; sending an empty
// imageTag or a maxResults of 0 is not; a missing required member never is.
func TestAbsentMembersAreNotValidated(t *testing.T) {
	f := newFixture(t)
	f.createRepo("app")
	manifest := string(f.image("app", "a"))
	cases := []struct {
		op      string
		body    map[string]any
		invalid string // the member named in the validation error; "" for none
	}{
		{"ListImages", map[string]any{"repositoryName": "app"}, ""},
		{"ListImages", map[string]any{"repositoryName": "app", "maxResults": 0}, "maxResults"},
		{"PutImage", map[string]any{"repositoryName": "app", "imageManifest": manifest}, ""},
		{"PutImage", map[string]any{"repositoryName": "app", "imageManifest": manifest, "imageTag": ""}, "imageTag"},
		{"BatchGetImage", map[string]any{"repositoryName": "app", "imageIds": []map[string]string{{"imageDigest": digestOf([]byte(manifest))}}}, ""},
		{"BatchGetImage", map[string]any{"repositoryName": "app", "imageIds": []map[string]string{{"imageTag": ""}}}, "imageIds[0].imageTag"},
		{"BatchGetImage", map[string]any{"repositoryName": "app"}, "imageIds"},
		{"GetLifecyclePolicyPreview", map[string]any{"repositoryName": "app", "maxResults": 101}, "maxResults"},
	}
	for _, c := range cases {
		_, err := f.call(c.op, c.body)
		var ve *awsmodel.ValidationError
		isValidation := errors.As(err, &ve)
		switch {
		case c.invalid == "" && isValidation:
			t.Errorf("%s %v: %v", c.op, c.body, err)
		case c.invalid != "" && (!isValidation || !strings.Contains(err.Error(), "'"+c.invalid+"'")):
			t.Errorf("%s %v: got %v, want a validation error on %s", c.op, c.body, err, c.invalid)
		}
	}
	if _, err := f.api.JSONService().Dispatch(f.ctx, "NoSuchOperation", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "NoSuchOperation") {
		t.Fatalf("unknown operation: %v", err)
	}
}
