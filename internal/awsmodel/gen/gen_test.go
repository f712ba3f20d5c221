package main

import (
	"bytes"
	"fmt"
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

// TestQueryModels: a Query model's exceptions are sent with the model's
// error code, its operations get DispatchQuery and result wrappers, and
// traits the Query codec does not follow are refused.
func TestQueryModels(t *testing.T) {
	const base = `{"metadata":{"apiVersion":"2020-01-01","protocol":"query","serviceId":"Tiny","signingName":"tiny",
		"xmlNamespace":"http://tiny/doc/2020-01-01/"},
	"operations":{"Get":{"name":"Get","input":{"shape":"GetInput"},"output":{"shape":"GetOutput","resultWrapper":"GetResult"}}},
	"shapes":{"GetInput":{"type":"structure","members":{"Names":{"shape":"Names"}}},
		"GetOutput":{"type":"structure","members":{}},
		"Name":{"type":"string"},
		"Names":{"type":"list",%s},
		"ThingNotFoundException":{"type":"structure","members":{},"exception":true,"error":{"code":"ThingNotFound","httpStatusCode":404,"senderFault":true}}}}`
	dir := t.TempDir()
	write := func(listTraits string) string {
		p := filepath.Join(dir, "service-2.json")
		if err := os.WriteFile(p, []byte(fmt.Sprintf(base, listTraits)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	out := filepath.Join(dir, "out")
	if err := run(write(`"member":{"shape":"Name"}`), "tinytypes", out); err != nil {
		t.Fatal(err)
	}
	errs, _ := os.ReadFile(filepath.Join(out, "errors.go"))
	ops, _ := os.ReadFile(filepath.Join(out, "operations.go"))
	for _, want := range []string{`awsmodel.NewAPIError("ThingNotFound", 404,`} {
		if !bytes.Contains(errs, []byte(want)) {
			t.Errorf("errors.go lacks %s:\n%s", want, errs)
		}
	}
	for _, want := range []string{`const APIVersion = "2020-01-01"`, `const XMLNamespace = "http://tiny/doc/2020-01-01/"`,
		`return "GetResult"`, `return awsmodel.CallQuery(ctx, form, h.Get)`} {
		if !bytes.Contains(ops, []byte(want)) {
			t.Errorf("operations.go lacks %s", want)
		}
	}
	for _, traits := range []string{`"member":{"shape":"Name"},"flattened":true`, `"member":{"shape":"Name","locationName":"item"}`} {
		if err := run(write(traits), "tinytypes", out); err == nil {
			t.Errorf("a Query list with %s was accepted", traits)
		}
	}
}
