package agent

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/berthdev/berth/internal/runtime"
)

// LoadDockerConfig reads registry credentials in the Docker CLI's
// config.json format ({"auths": {"registry.example.com": {"auth": ...}}}),
// the agent-side way ECS on EC2 pulls from private registries
// (ECS_ENGINE_AUTH_TYPE=dockercfg), and returns a Config.RegistryAuth.
func LoadDockerConfig(path string) (func(image string) *runtime.RegistryAuth, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Auths map[string]struct {
			Auth     string `json:"auth"`
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(buf, &cfg); err != nil {
		return nil, fmt.Errorf("%s is not a Docker config.json: %w", path, err)
	}
	creds := map[string]runtime.RegistryAuth{}
	for server, a := range cfg.Auths {
		user, pass := a.Username, a.Password
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("%s: the auth of %s is not base64", path, server)
			}
			user, pass, _ = strings.Cut(string(raw), ":")
		}
		host := registryHost(server)
		creds[host] = runtime.RegistryAuth{Username: user, Password: pass, ServerAddress: host}
	}
	return func(image string) *runtime.RegistryAuth {
		if c, ok := creds[imageRegistry(image)]; ok {
			return &c
		}
		return nil
	}, nil
}

// registryHost normalises a config.json key ("https://index.docker.io/v1/",
// "registry.example.com:5000/") to a host.
func registryHost(server string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	if s == "index.docker.io" || s == "registry-1.docker.io" {
		return "docker.io"
	}
	return s
}

// imageRegistry is the registry host of an image reference: its first
// component when that looks like a host, else Docker Hub.
func imageRegistry(image string) string {
	first, _, found := strings.Cut(image, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}
