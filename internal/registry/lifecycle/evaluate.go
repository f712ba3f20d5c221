package lifecycle

import (
	"slices"
	"strings"
	"time"
)

// Image is what evaluation needs to know of one image in the repository.
type Image struct {
	Digest   string
	Tags     []string
	PushedAt time.Time
	// Manifests are the images an index lists. An image that an index of
	// the repository lists lives and goes with that index: no rule selects
	// it (ECR does not expire an image a manifest list references).
	Manifests []string
}

// Expiry is an image a rule expires.
type Expiry struct {
	Digest string
	// Rule is the rule that expired it.
	Rule Rule
}

// Evaluate returns the images the policy expires at now, oldest first,
// following ECR's evaluation rules:
//
//   - rules apply in ascending rulePriority, and an image is expired by at
//     most one rule;
//   - a rule counts every image its selection matches, but cannot expire an
//     image that a higher-priority rule's selection matched (whether or not
//     that rule expired it);
//   - imageCountMoreThan keeps the newest countNumber selected images, by
//     push time, and expires the rest; sinceImagePushed expires the selected
//     images pushed more than countNumber days before now;
//   - with several prefixes or patterns, an image is selected when each of
//     them matches one of its tags.
func (p *Policy) Evaluate(images []Image, now time.Time) []Expiry {
	// Youngest first, ties by digest, so counts are deterministic.
	sorted := slices.Clone(images)
	slices.SortFunc(sorted, func(a, b Image) int {
		if c := b.PushedAt.Compare(a.PushedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Digest, b.Digest)
	})
	referenced := map[string]bool{}
	for _, img := range images {
		for _, m := range img.Manifests {
			referenced[m] = true
		}
	}
	claimed := map[string]bool{} // matched by a higher-priority rule's selection
	var out []Expiry
	for _, r := range p.Rules {
		var selected []Image
		for _, img := range sorted {
			if !referenced[img.Digest] && r.Selects(img.Tags) {
				selected = append(selected, img)
			}
		}
		for i, img := range selected {
			if !claimed[img.Digest] && r.expires(i, img, now) {
				out = append(out, Expiry{Digest: img.Digest, Rule: r})
			}
		}
		for _, img := range selected {
			claimed[img.Digest] = true
		}
	}
	return oldestFirst(out, images)
}

// expires reports whether the rule expires img, the i-th youngest image it
// selected.
func (r Rule) expires(i int, img Image, now time.Time) bool {
	switch r.CountType {
	case ImageCountMoreThan:
		return i >= r.CountNumber
	case SinceImagePushed:
		return now.Sub(img.PushedAt) > time.Duration(r.CountNumber)*24*time.Hour
	}
	return false
}

// Selects reports whether the rule's tag selection matches an image with tags.
func (r Rule) Selects(tags []string) bool {
	switch r.TagStatus {
	case Any:
		return true
	case Untagged:
		return len(tags) == 0
	}
	if len(tags) == 0 {
		return false
	}
	for _, p := range r.TagPrefixes {
		if !slices.ContainsFunc(tags, func(t string) bool { return strings.HasPrefix(t, p) }) {
			return false
		}
	}
	for _, p := range r.TagPatterns {
		if !slices.ContainsFunc(tags, func(t string) bool { return Match(p, t) }) {
			return false
		}
	}
	return true
}

// Match reports whether tag matches pattern, where '*' matches any run of
// characters (including none) and every other character matches itself.
func Match(pattern, tag string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == tag
	}
	if !strings.HasPrefix(tag, parts[0]) {
		return false
	}
	tag = tag[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(tag, part)
		if i < 0 {
			return false
		}
		tag = tag[i+len(part):]
	}
	return strings.HasSuffix(tag, last)
}

// oldestFirst orders expiries by the images' push time, oldest first (ECR
// always expires older images before newer ones), ties by digest.
func oldestFirst(out []Expiry, images []Image) []Expiry {
	pushed := make(map[string]time.Time, len(images))
	for _, img := range images {
		pushed[img.Digest] = img.PushedAt
	}
	slices.SortFunc(out, func(a, b Expiry) int {
		if c := pushed[a.Digest].Compare(pushed[b.Digest]); c != 0 {
			return c
		}
		return strings.Compare(a.Digest, b.Digest)
	})
	return out
}
