package lb_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/berthdev/berth/internal/lb"
)

// A load balancer with one listener: /api/* goes to the "api" target
// group, everything else gets a fixed answer.
func Example() {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "api saw %s from %s", r.URL.Path, r.Header.Get("X-Forwarded-For"))
	}))
	defer target.Close()

	b, err := lb.New(lb.Config{})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx) // health checks

	err = b.Apply(ctx, lb.Snapshot{
		LoadBalancers: []lb.LoadBalancer{{
			ID: "web", Address: "127.0.0.1",
			Listeners: []lb.Listener{{ID: "http", Port: 0, Protocol: lb.ProtocolHTTP, Rules: []lb.Rule{
				{Priority: 10, Conditions: []lb.Condition{{Field: lb.FieldPathPattern, Values: []string{"/api/*"}}},
					Action: lb.Action{Type: lb.ActionForward, Forward: []lb.WeightedGroup{{TargetGroupID: "api"}}}},
				{IsDefault: true, Action: lb.Action{Type: lb.ActionFixedResponse,
					Fixed: &lb.FixedResponse{StatusCode: 404, Body: "no such page"}}},
			}}},
		}},
		TargetGroups: []lb.TargetGroup{{
			ID:      "api",
			Targets: []lb.Target{{ID: "t1", Addr: target.Listener.Addr().String()}},
		}},
	})
	if err != nil {
		panic(err)
	}
	url := "http://" + b.Status()[0].Addr
	for _, path := range []string{"/api/users", "/elsewhere"} {
		resp, err := http.Get(url + path)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(body))
	}
	// Output:
	// 200 api saw /api/users from 127.0.0.1
	// 404 no such page
}
