package lifecycle_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/registry/lifecycle"
)

var now = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func daysAgo(d float64) time.Time { return now.Add(-time.Duration(d * float64(24*time.Hour))) }

func rule(priority int, selection string) string {
	return fmt.Sprintf(`{"rulePriority":%d,"description":"r","selection":%s,"action":{"type":"expire"}}`, priority, selection)
}

func policy(rules ...string) string { return `{"rules":[` + strings.Join(rules, ",") + `]}` }

func TestParseRefuses(t *testing.T) {
	countOne := `"countType":"imageCountMoreThan","countNumber":1`
	cases := []struct {
		name, text, want string
	}{
		{"not json", `rules`, "must be a JSON object"},
		{"no rules", `{}`, `no "rules" array`},
		{"empty rules", `{"rules":[]}`, "at least one rule"},
		{"unknown top", `{"rules":[],"x":1}`, `not allowed: "x"`},
		{"rule not object", `{"rules":[1]}`, "rule 1 must be a JSON object"},
		{"missing priority", `{"rules":[{"selection":{},"action":{}}]}`, `"rulePriority"`},
		{"priority zero", policy(rule(0, `{"tagStatus":"any",`+countOne+`}`)), "positive integer"},
		{"priority fraction", `{"rules":[{"rulePriority":1.5,"selection":{"tagStatus":"any",` + countOne + `},"action":{"type":"expire"}}]}`, "must be an integer"},
		{"duplicate priority", policy(rule(1, `{"tagStatus":"untagged",`+countOne+`}`), rule(1, `{"tagStatus":"tagged","tagPrefixList":["a"],`+countOne+`}`)), "unique rulePriority"},
		{"bad tagStatus", policy(rule(1, `{"tagStatus":"TAGGED",`+countOne+`}`)), "tagStatus \"TAGGED\""},
		{"tagged without list", policy(rule(1, `{"tagStatus":"tagged",`+countOne+`}`)), "requires a tagPrefixList or a tagPatternList"},
		{"tagged with both", policy(rule(1, `{"tagStatus":"tagged","tagPrefixList":["a"],"tagPatternList":["b*"],`+countOne+`}`)), "not both"},
		{"untagged with prefixes", policy(rule(1, `{"tagStatus":"untagged","tagPrefixList":["a"],`+countOne+`}`)), "only be used with tagStatus tagged"},
		{"empty prefix list", policy(rule(1, `{"tagStatus":"tagged","tagPrefixList":[],`+countOne+`}`)), "must not be empty"},
		{"five wildcards", policy(rule(1, `{"tagStatus":"tagged","tagPatternList":["a*b*c*d*e*f"],`+countOne+`}`)), "more than 4 wildcards"},
		{"any not last", policy(rule(1, `{"tagStatus":"any",`+countOne+`}`), rule(2, `{"tagStatus":"untagged",`+countOne+`}`)), "tagStatus any (rulePriority 1) must have the highest"},
		{"two untagged", policy(rule(1, `{"tagStatus":"untagged",`+countOne+`}`), rule(2, `{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":3}`)), "only one rule may select untagged"},
		{"same prefixes", policy(rule(1, `{"tagStatus":"tagged","tagPrefixList":["a","b"],`+countOne+`}`), rule(2, `{"tagStatus":"tagged","tagPrefixList":["b","a"],"countType":"sinceImagePushed","countUnit":"days","countNumber":3}`)), "unique set of tag prefixes"},
		{"bad countType", policy(rule(1, `{"tagStatus":"any","countType":"imageCountLessThan","countNumber":1}`)), "countType \"imageCountLessThan\""},
		{"pulled countType", policy(rule(1, `{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":1}`)), "sinceImagePulled is not supported"},
		{"count zero", policy(rule(1, `{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":0}`)), "countNumber must be at least 1"},
		{"unit with count", policy(rule(1, `{"tagStatus":"any","countType":"imageCountMoreThan","countUnit":"days","countNumber":1}`)), "countUnit may only be used"},
		{"age without unit", policy(rule(1, `{"tagStatus":"any","countType":"sinceImagePushed","countNumber":1}`)), `requires countUnit "days"`},
		{"hours", policy(rule(1, `{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"hours","countNumber":1}`)), `countUnit "hours"`},
		{"archive", policy(rule(1, `{"tagStatus":"any","storageClass":"archive",`+countOne+`}`)), "only the standard storage class"},
		{"unknown selection key", policy(rule(1, `{"tagStatus":"any","tagList":["a"],`+countOne+`}`)), `not allowed: "tagList"`},
		{"transition", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any",` + countOne + `},"action":{"type":"transition","targetStorageClass":"archive"}}]}`, "Berth supports only the expire action"},
		{"other action", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any",` + countOne + `},"action":{"type":"delete"}}]}`, `action type "delete" is not supported: Berth supports only the expire action`},
		{"missing action type", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any",` + countOne + `},"action":{}}]}`, `"type"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := lifecycle.Parse(c.text)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse(%s) = %v, want an error containing %q", c.text, err, c.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	p, err := lifecycle.Parse(policy(
		rule(10, `{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30}`),
		rule(2, `{"tagStatus":"tagged","tagPatternList":["*a*b*c*d"],"countType":"imageCountMoreThan","countNumber":5,"storageClass":"standard"}`),
		rule(1, `{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}`),
	))
	if err != nil {
		t.Fatal(err)
	}
	var prios []int
	for _, r := range p.Rules {
		prios = append(prios, r.Priority)
	}
	if !slices.Equal(prios, []int{1, 2, 10}) {
		t.Fatalf("rules in order %v, want [1 2 10]", prios)
	}
	if r := p.Rules[2]; r.CountType != lifecycle.SinceImagePushed || r.CountUnit != "days" || r.CountNumber != 30 || r.TagStatus != lifecycle.Any {
		t.Fatalf("rule 10 = %+v", r)
	}
}

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, tag string
		want         bool
	}{
		{"prod", "prod", true},
		{"prod", "prod1", false},
		{"prod*", "prod", true},
		{"prod*", "production-team1", true},
		{"prod*", "xprod", false},
		{"*prod*", "repo-production", true},
		{"*prod*", "prod-team", true},
		{"*prod", "preprod", true},
		{"*prod", "prod-x", false},
		{"a*a", "a", false},
		{"a*a", "aa", true},
		{"*test*1*2*3", "mytest-1-2-3", true},
		{"*test*1*2*3", "mytest-1-3-2", false},
		{"*", "anything", true},
	}
	for _, c := range cases {
		if got := lifecycle.Match(c.pattern, c.tag); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.tag, got, c.want)
		}
	}
}

func TestEvaluate(t *testing.T) {
	cases := []struct {
		name   string
		policy string
		images []lifecycle.Image
		// want: digest -> rulePriority, in expiry order (oldest first).
		want []string
	}{
		{
			name:   "count keeps the newest",
			policy: policy(rule(1, `{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":2}`)),
			images: []lifecycle.Image{
				{Digest: "a", PushedAt: daysAgo(4)}, {Digest: "b", PushedAt: daysAgo(3)},
				{Digest: "c", PushedAt: daysAgo(2)}, {Digest: "d", PushedAt: daysAgo(1)},
				{Digest: "t", Tags: []string{"v1"}, PushedAt: daysAgo(9)},
			},
			want: []string{"a:1", "b:1"},
		},
		{
			name:   "age expires strictly older",
			policy: policy(rule(1, `{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":14}`)),
			images: []lifecycle.Image{
				{Digest: "old", Tags: []string{"x"}, PushedAt: daysAgo(14.01)},
				{Digest: "edge", PushedAt: daysAgo(14)},
				{Digest: "new", PushedAt: daysAgo(1)},
			},
			want: []string{"old:1"},
		},
		{
			name:   "tagged prefixes: every prefix matches some tag",
			policy: policy(rule(1, `{"tagStatus":"tagged","tagPrefixList":["prod","v"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1}`)),
			images: []lifecycle.Image{
				{Digest: "both", Tags: []string{"prod-1", "v1"}, PushedAt: daysAgo(5)},
				{Digest: "one-tag-both", Tags: []string{"prodv"}, PushedAt: daysAgo(5)},
				{Digest: "prod-only", Tags: []string{"prod-2"}, PushedAt: daysAgo(5)},
				{Digest: "untagged", PushedAt: daysAgo(5)},
			},
			want: []string{"both:1"},
		},
		{
			name:   "tagged patterns",
			policy: policy(rule(1, `{"tagStatus":"tagged","tagPatternList":["*-rc*"],"countType":"imageCountMoreThan","countNumber":1}`)),
			images: []lifecycle.Image{
				{Digest: "rc1", Tags: []string{"1.0-rc1"}, PushedAt: daysAgo(3)},
				{Digest: "rc2", Tags: []string{"1.0-rc2", "latest"}, PushedAt: daysAgo(2)},
				{Digest: "final", Tags: []string{"1.0"}, PushedAt: daysAgo(1)},
			},
			want: []string{"rc1:1"},
		},
		{
			// ECR's documented example: images A ["beta-1","prod-1"] 10 days,
			// B ["beta-2","prod-2"] 9 days, C ["beta-3"] 8 days; rule 1 keeps
			// one prod, rule 2 keeps one beta. Rule 2 would mark A and B, but
			// B matched rule 1's selection: only A is expired.
			name: "priority exclusion (ECR example 1)",
			policy: policy(
				rule(1, `{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":1}`),
				rule(2, `{"tagStatus":"tagged","tagPrefixList":["beta"],"countType":"imageCountMoreThan","countNumber":1}`),
			),
			images: []lifecycle.Image{
				{Digest: "A", Tags: []string{"beta-1", "prod-1"}, PushedAt: daysAgo(10)},
				{Digest: "B", Tags: []string{"beta-2", "prod-2"}, PushedAt: daysAgo(9)},
				{Digest: "C", Tags: []string{"beta-3"}, PushedAt: daysAgo(8)},
			},
			want: []string{"A:1"},
		},
		{
			// ECR's second example: all three carry beta and prod; rule 1
			// (both prefixes) keeps one and expires A and B; rule 2 finds
			// nothing it may expire.
			name: "priority exclusion (ECR example 2)",
			policy: policy(
				rule(1, `{"tagStatus":"tagged","tagPrefixList":["beta","prod"],"countType":"imageCountMoreThan","countNumber":1}`),
				rule(2, `{"tagStatus":"tagged","tagPrefixList":["beta"],"countType":"imageCountMoreThan","countNumber":1}`),
			),
			images: []lifecycle.Image{
				{Digest: "A", Tags: []string{"beta-1", "prod-1"}, PushedAt: daysAgo(10)},
				{Digest: "B", Tags: []string{"beta-2", "prod-2"}, PushedAt: daysAgo(9)},
				{Digest: "C", Tags: []string{"beta-3", "prod-3"}, PushedAt: daysAgo(8)},
			},
			want: []string{"A:1", "B:1"},
		},
		{
			name: "any rule after tagged and untagged rules",
			policy: policy(
				rule(1, `{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}`),
				rule(2, `{"tagStatus":"tagged","tagPrefixList":["release"],"countType":"imageCountMoreThan","countNumber":100}`),
				rule(3, `{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30}`),
			),
			images: []lifecycle.Image{
				{Digest: "u-old", PushedAt: daysAgo(60)},
				{Digest: "u-new", PushedAt: daysAgo(50)},
				{Digest: "rel", Tags: []string{"release-1"}, PushedAt: daysAgo(90)},
				{Digest: "dev-old", Tags: []string{"dev"}, PushedAt: daysAgo(40)},
				{Digest: "dev-new", Tags: []string{"dev2"}, PushedAt: daysAgo(10)},
			},
			// u-new is old but rule 1 claimed it; rel is claimed by rule 2.
			want: []string{"u-old:1", "dev-old:3"},
		},
		{
			name:   "referenced images are never selected",
			policy: policy(rule(1, `{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}`)),
			images: []lifecycle.Image{
				{Digest: "index", Tags: []string{"v1"}, PushedAt: daysAgo(5), Manifests: []string{"child-a", "child-b"}},
				{Digest: "child-a", PushedAt: daysAgo(5)},
				{Digest: "child-b", PushedAt: daysAgo(4)},
				{Digest: "loose-old", PushedAt: daysAgo(3)},
				{Digest: "loose-new", PushedAt: daysAgo(2)},
			},
			want: []string{"loose-old:1"},
		},
		{
			name:   "push-time ties break by digest",
			policy: policy(rule(1, `{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}`)),
			images: []lifecycle.Image{
				{Digest: "b", PushedAt: daysAgo(1)}, {Digest: "a", PushedAt: daysAgo(1)}, {Digest: "c", PushedAt: daysAgo(1)},
			},
			want: []string{"b:1", "c:1"},
		},
		{
			name:   "nothing to do",
			policy: policy(rule(1, `{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5}`)),
			images: []lifecycle.Image{{Digest: "a", PushedAt: daysAgo(400)}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := lifecycle.Parse(c.policy)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range p.Evaluate(c.images, now) {
				got = append(got, fmt.Sprintf("%s:%d", e.Digest, e.Rule.Priority))
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("expired %v, want %v", got, c.want)
			}
		})
	}
}
