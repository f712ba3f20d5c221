package agent_test

import (
	"fmt"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/runtime/fake"
)

// Validate fills in the defaults of everything optional.
func ExampleConfig_Validate() {
	cfg := agent.Config{
		Cluster:  "default",
		Endpoint: "http://127.0.0.1:4566",
		Token:    "join-token",
		Runtime:  fake.New(fake.Options{}),
		StateDir: "/var/lib/berth/agent",
	}
	if err := cfg.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.MetadataListen, cfg.PauseImage, cfg.CleanupDelay, cfg.StopTimeout, cfg.PollWait)
	// Output: 0.0.0.0:51679 berth-pause:1 3h0m0s 30s 30s
}
