package ecs_test

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

	"github.com/berthdev/berth/internal/api/ecs"
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/store/bolt"
)

// implemented calls every operation with an empty input and returns those
// that do not answer NotImplementedError. It also proves no handler panics
// on an empty input.
func implemented(t *testing.T) []string {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := ecs.New(ecs.Config{Store: st, Region: "us-east-1", Account: "000000000000"})
	if err != nil {
		t.Fatal(err)
	}
	v := reflect.ValueOf(svc)
	var out []string
	for _, op := range ecstypes.Operations {
		m := v.MethodByName(op)
		in := reflect.New(m.Type().In(1).Elem())
		res := m.Call([]reflect.Value{reflect.ValueOf(context.Background()), in})
		err, _ := res[1].Interface().(error)
		var nie *awsmodel.NotImplementedError
		if !errors.As(err, &nie) {
			out = append(out, op)
		}
	}
	return out
}

// TestREADMEListsImplementedActions keeps the README's supported-actions
// table true: it must list exactly the operations the handler implements.
func TestREADMEListsImplementedActions(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	if i := strings.Index(section, "\n### ECS "); i >= 0 {
		section = section[i+1:]
		if j := strings.Index(section, "\n#"); j >= 0 {
			section = section[:j]
		}
	}
	row := regexp.MustCompile("(?m)^\\| `([A-Za-z]+)` \\| supported \\|")
	var listed []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		listed = append(listed, m[1])
	}
	impl := implemented(t)
	slices.Sort(listed)
	if !slices.Equal(listed, impl) {
		t.Fatalf("README lists %v\nimplemented: %v", listed, impl)
	}
}
