package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/openvpc/openvpc/internal/demo"
)

// TestDemoChecks runs every behaviour check of the demo, in order, against
// the shared lab: pings, TTL, VPC isolation, ARP, gateway, BUM drop,
// promiscuous mode, spoofing, live secondary IP, controller and vswitchd
// restarts.
func TestDemoChecks(t *testing.T) {
	for _, c := range demo.Checks() {
		t.Run(c.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			detail, err := c.Run(ctx, env)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(detail)
		})
	}
}
