package fake_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/berthdev/berth/internal/runtime"
	"github.com/berthdev/berth/internal/runtime/fake"
)

// A test plays the engine: the code under test starts a container, the test
// makes it exit, and the code sees the die event.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rt := fake.New(fake.Options{Images: []string{"app:1"}})
	events, _ := rt.Events(ctx, map[string]string{"task": "t1"})

	id, _ := rt.Create(ctx, runtime.ContainerSpec{
		Name: "web", Image: "app:1", Labels: map[string]string{"task": "t1"},
		PortBindings: []runtime.PortBinding{{ContainerPort: 8080}},
	})
	rt.Start(ctx, id)
	st, _ := rt.Inspect(ctx, "web")
	fmt.Println(st.Status, st.Ports[0].HostPort)

	rt.Exit(id, 3)
	for ev := range events {
		fmt.Println(ev.Action, ev.ExitCode)
		if ev.Action == "die" {
			break
		}
	}

	rt.FailNext(fake.MethodStart, errors.New("no space left on device"))
	fmt.Println(rt.Start(ctx, id))
	// Output:
	// running 32768
	// start 0
	// die 3
	// no space left on device
}
