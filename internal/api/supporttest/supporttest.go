// Package supporttest holds what the AWS API packages' tests share: the
// check that keeps the README's supported-actions tables true (a service's
// table must list exactly the operations its handler implements), and the
// fuzz targets' verdict on an error.
package supporttest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/awsmodel"
)

var row = regexp.MustCompile("(?m)^\\| `([A-Za-z]+)` \\| supported \\|")

// Listed returns the actions the README (found from the repository root,
// three levels above an internal/api/<svc> package) marks supported in the
// section whose heading starts with "### "+section.
func Listed(t *testing.T, section string) []string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	i := strings.Index(text, "\n### "+section+" ")
	if i < 0 {
		t.Fatalf("README has no ### %s section", section)
	}
	text = text[i+1:]
	if j := strings.Index(text, "\n#"); j >= 0 {
		text = text[:j]
	}
	var out []string
	for _, m := range row.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return out
}

// Implemented calls each operation of handler with an empty input and
// returns those that do not answer awsmodel.NotImplementedError. It also
// proves that no handler panics on an empty input.
func Implemented(t *testing.T, handler any, operations []string) []string {
	t.Helper()
	v := reflect.ValueOf(handler)
	var out []string
	for _, op := range operations {
		m := v.MethodByName(op)
		if !m.IsValid() {
			t.Fatalf("the handler has no method %s", op)
		}
		in := reflect.New(m.Type().In(1).Elem())
		res := m.Call([]reflect.Value{reflect.ValueOf(context.Background()), in})
		err, _ := res[1].Interface().(error)
		var nie *awsmodel.NotImplementedError
		if !errors.As(err, &nie) {
			out = append(out, op)
		}
	}
	slices.Sort(out)
	return out
}

// Check fails the test unless the README's section lists exactly what the
// handler implements.
func Check(t *testing.T, section string, handler any, operations []string) {
	t.Helper()
	listed, impl := Listed(t, section), Implemented(t, handler, operations)
	if !slices.Equal(listed, impl) {
		t.Fatalf("README lists %v\nimplemented: %v", listed, impl)
	}
}

// RequireClientError fails the test unless err is nil or one the front
// door answers as a client error: an APIError below 500, a serialization or
// validation error, or an operation not implemented. Fuzz targets call it
// for every answer.
func RequireClientError(t *testing.T, op string, input any, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var (
		api *awsmodel.APIError
		se  *awsmodel.SerializationError
		ve  *awsmodel.ValidationError
		nie *awsmodel.NotImplementedError
	)
	switch {
	case errors.As(err, &api):
		if api.Status >= 500 {
			t.Fatalf("%s(%q) answered a server error: %v", op, input, err)
		}
	case errors.As(err, &se), errors.As(err, &ve), errors.As(err, &nie):
	default:
		t.Fatalf("%s(%q) failed with an unmapped error %T: %v", op, input, err, err)
	}
}
