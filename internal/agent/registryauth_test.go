package agent

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoadDockerConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(path, []byte(`{"auths":{
		"registry.example.com:5000": {"auth": "dXNlcjpzZWNyZXQ="},
		"https://index.docker.io/v1/": {"username": "hub", "password": "pw"},
		"localhost:5001/": {"auth": "YTpi"}
	}}`), 0o600)
	auth, err := LoadDockerConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"registry.example.com:5000/team/app:1": "user:secret",
		"nginx:1.27":                           "hub:pw",
		"library/nginx":                        "hub:pw",
		"localhost:5001/app":                   "a:b",
		"other.example.com/app":                "",
	}
	for image, want := range cases {
		got := ""
		if a := auth(image); a != nil {
			got = a.Username + ":" + a.Password
		}
		if got != want {
			t.Errorf("%s: credentials %q, want %q", image, got, want)
		}
	}
	os.WriteFile(path, []byte(`{"auths":{"x":{"auth":"!!"}}}`), 0o600)
	if _, err := LoadDockerConfig(path); err == nil {
		t.Fatal("a bad auth was accepted")
	}
}
