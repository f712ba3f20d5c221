package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates every generated package and
// compares it with the committed one, so a generator change cannot land
// without its output (regenerate with `go generate ./internal/awsmodel`).
func TestGeneratedCodeIsCurrent(t *testing.T) {
	for svc, pkg := range map[string]string{"ecs": "ecstypes", "ecr": "ecrtypes", "elbv2": "elbv2types"} {
		t.Run(svc, func(t *testing.T) { checkGenerated(t, svc, pkg) })
	}
}

func checkGenerated(t *testing.T, svc, pkg string) {
	model := filepath.Join("..", "..", "..", "..", "shared", "aws-models", svc, "service-2.json")
	if _, err := os.Stat(model); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the AWS models are missing at %s: CI checks out shared/ beside the repository", model)
		}
		t.Skipf("no AWS models at %s", model)
	}
	out := t.TempDir()
	if err := run(model, pkg, out); err != nil {
		t.Fatal(err)
	}
	committed := filepath.Join("..", pkg)
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		want, _ := os.ReadFile(filepath.Join(out, e.Name()))
		got, err := os.ReadFile(filepath.Join(committed, e.Name()))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go generate ./internal/awsmodel", e.Name())
		}
	}
}

func TestEnumSuffix(t *testing.T) {
	for in, want := range map[string]string{
		"FARGATE_SPOT": "FargateSpot", "awsvpc": "Awsvpc", "1.4.0": "1_4_0", "CMD-SHELL": "CmdShell",
		"json-file": "JsonFile", "": "Empty", "ecs.capability": "EcsCapability",
	} {
		if got := enumSuffix(in); got != want {
			t.Errorf("enumSuffix(%q) = %q, want %q", in, got, want)
		}
	}
}
