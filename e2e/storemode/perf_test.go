package storemode

import (
	"flag"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openvpc/openvpc/model"
)

var perf = flag.Bool("perf", false, "measure API write throughput and write→flows latency (make bench)")

// TestAPIPerf measures (figures only, with -perf): NIC creates per second
// with 8 concurrent clients, and the time from an API write to the flows
// being on a lab switch, over 200 changes.
func TestAPIPerf(t *testing.T) {
	if !*perf {
		t.Skip("API performance figures: run with -perf (make bench)")
	}
	ctx := ctxT(t)
	admin, err := env.Client("")
	must(t, err)
	must(t, admin.Create(ctx, "account", &model.Account{Name: "perf"}))
	must(t, admin.Create(ctx, "vpc", &model.VPC{Name: "pv", Account: "perf", CIDR: "10.9.0.0/16"}))
	for i := 0; i < 9; i++ { // ps0..ps7 for the writers, ps8 for latency
		must(t, admin.Create(ctx, "subnet", &model.Subnet{Name: fmt.Sprintf("ps%d", i), VPC: "pv", CIDR: fmt.Sprintf("10.9.%d.0/24", i)}))
	}
	// Throughput: 8 clients × 50 creates.
	const clients, each = 8, 50
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients*each)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			cl, _ := env.Client("")
			for i := 0; i < each; i++ {
				if err := cl.Create(ctx, "nic", &model.NIC{Name: fmt.Sprintf("p%d-%d", c, i), Subnet: fmt.Sprintf("ps%d", c)}); err != nil {
					errs <- err
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("RESULT api_creates=%d clients=%d took=%v rate=%.0f/s", clients*each, clients, took.Round(time.Millisecond), float64(clients*each)/took.Seconds())

	// Latency: a NIC placed on h2 with a VM of its VPC on h1 → h1 gets its
	// ARP responder flow. Timed from the API call to the flow on h1's switch.
	must(t, admin.Create(ctx, "nic", &model.NIC{Name: "anchor", Subnet: "ps0", Host: "h1"}))
	plug(t, "anchor")
	h1 := env.Lab.Host("h1").OVS()
	var lat []time.Duration
	for i := 0; i < 200; i++ {
		ip := fmt.Sprintf("10.9.8.%d", 10+i%200)
		name := fmt.Sprintf("lat%d", i)
		t0 := time.Now()
		must(t, admin.Create(ctx, "nic", &model.NIC{Name: name, Subnet: "ps8", Host: "h2", IP: ip}))
		for {
			out, err := h1.Ofctl(ctx, "dump-flows", "br-int", "table=15,arp,arp_tpa="+ip)
			if err == nil && strings.Contains(out, "arp_tpa="+ip) {
				break
			}
			if time.Since(t0) > 30*time.Second {
				t.Fatalf("flow for %s not installed after 30 s", ip)
			}
		}
		lat = append(lat, time.Since(t0))
		must(t, admin.Delete(ctx, "nic", name))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("RESULT write_to_flow changes=%d median=%v p99=%v", len(lat), lat[len(lat)/2].Round(100*time.Microsecond), lat[len(lat)*99/100].Round(100*time.Microsecond))
}
