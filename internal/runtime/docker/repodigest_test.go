package docker

import "testing"

func TestRepoDigest(t *testing.T) {
	digests := []string{"127.0.0.1:4566/team/web@sha256:aaa", "nginx@sha256:bbb", "localhost:5000/x@sha256:ccc"}
	for image, want := range map[string]string{
		"127.0.0.1:4566/team/web:v1":         "sha256:aaa",
		"127.0.0.1:4566/team/web":            "sha256:aaa",
		"127.0.0.1:4566/team/web@sha256:aaa": "sha256:aaa",
		"nginx:1.27":                         "sha256:bbb",
		"localhost:5000/x:latest":            "sha256:ccc",
		"127.0.0.1:4566/team/api:v1":         "",
		"team/web:v1":                        "",
	} {
		if got := repoDigest(image, digests); got != want {
			t.Errorf("repoDigest(%q) = %q, want %q", image, got, want)
		}
	}
}
