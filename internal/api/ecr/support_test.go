package ecr_test

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
	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
)

// TestREADMEListsImplementedActions keeps the README's ECR table true: it
// lists exactly the operations that do not answer NotImplementedError to an
// empty request (which also proves no handler panics on one).
func TestREADMEListsImplementedActions(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	i := strings.Index(section, "\n### ECR ")
	if i < 0 {
		t.Fatal("README has no ### ECR section")
	}
	section = section[i+1:]
	if j := strings.Index(section, "\n#"); j >= 0 {
		section = section[:j]
	}
	var listed []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z]+)` \\| supported \\|").FindAllStringSubmatch(section, -1) {
		listed = append(listed, m[1])
	}
	f := newFixture(t)
	v := reflect.ValueOf(f.api)
	var impl []string
	for _, op := range ecrtypes.Operations {
		m := v.MethodByName(op)
		in := reflect.New(m.Type().In(1).Elem())
		res := m.Call([]reflect.Value{reflect.ValueOf(context.Background()), in})
		err, _ := res[1].Interface().(error)
		var nie *awsmodel.NotImplementedError
		if !errors.As(err, &nie) {
			impl = append(impl, op)
		}
	}
	slices.Sort(listed)
	slices.Sort(impl)
	if !slices.Equal(listed, impl) {
		t.Fatalf("README lists %v\nimplemented: %v", listed, impl)
	}
}
