package demo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/openvpc/openvpc/internal/labpolicy"
	"github.com/openvpc/openvpc/internal/labrun"
	"github.com/openvpc/openvpc/lab"
)

// internetGateway: a-web3 (public subnet, public IP 203.0.113.10) reaches the
// far internet host through the gateway host h3, and the internet sees its
// public address, never the private one; a-app1 (its subnet uses the main
// table, no route to the gateway) does not get out.
func internetGateway(ctx context.Context, e *labrun.Env) (string, error) {
	const public, private = "203.0.113.10", "10.0.1.12"
	inet := e.Lab.Internet()
	if inet == nil {
		return "", fmt.Errorf("the lab has no internet namespace (no host with an uplink)")
	}
	far := addr(labpolicy.FarInternetHost)
	capture, err := inet.Capture(ctx, "icmp")
	if err != nil {
		return "", err
	}
	defer capture.Stop()
	web3, err := vm(e, "a-web3")
	if err != nil {
		return "", err
	}
	// The gateway resolves its router by ARP once its switch is connected:
	// allow it a few seconds.
	var r lab.PingResult
	for deadline := time.Now().Add(15 * time.Second); ; {
		r, err = web3.Ping(ctx, far, lab.PingOpts{Count: 3, Interval: 50 * time.Millisecond, Timeout: time.Second})
		if err == nil && r.Received == r.Sent || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || r.Received != r.Sent {
		return "", fmt.Errorf("a-web3 → %s: %d/%d replies (%v)", far, r.Received, r.Sent, err)
	}
	lines := capture.Stop()
	seen := false
	for _, l := range lines {
		if strings.Contains(l, private+" >") {
			return "", fmt.Errorf("the internet saw a-web3's private address: %s", l)
		}
		seen = seen || strings.Contains(l, public+" > "+far.String())
	}
	if !seen {
		return "", fmt.Errorf("the internet never saw %s as the source:\n  %s", public, strings.Join(lines, "\n  "))
	}
	if r2, err := ping(ctx, e, "a-app1", far.String(), 2); err != nil || r2.Received != 0 {
		return "", fmt.Errorf("a-app1 (private subnet) → %s: %d replies, want none (%v)", far, r2.Received, err)
	}
	return fmt.Sprintf("a-web3 → %s: %d/%d, seen from %s; a-app1 (private subnet): no way out", far, r.Received, r.Sent, public), nil
}
