package controller

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/ofrules"
)

// The flows endpoint shows statistics like ovs-ofctl dump-flows, and the
// plain form with ?stats=0.
func TestFlowsEndpointStats(t *testing.T) {
	h := start(t, basePolicy, map[string]Bindings{"h1": bound(map[string]uint32{"n1": 5}), "h2": bound(map[string]uint32{"n2": 7})})
	sw := h.connect("h1")
	h.waitFor(func() bool { return sw.text() != "" && sw.text() == h.expected("h1") }, "h1 programmed")
	// The switch reports counters, as OVS does in a flow dump.
	sw.mu.Lock()
	for k, f := range sw.fl {
		f.Stats = &ofrules.FlowStats{Duration: 2500 * time.Millisecond, IdleAge: time.Second, Packets: 4, Bytes: 392}
		sw.fl[k] = f
	}
	sw.mu.Unlock()
	plain := sw.text()

	srv := httptest.NewServer(h.c.Handler())
	t.Cleanup(srv.Close)
	get := func(q string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/v1/hosts/h1/flows" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// Security-group rule flows end in a comment naming group and rule;
	// without it the dump equals the switch's text.
	uncomment := func(s string) string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			l, _, _ = strings.Cut(l, "  # ")
			out = append(out, l)
		}
		return strings.Join(out, "\n")
	}
	code, body := get("")
	if !strings.Contains(body, "  # security group ") {
		t.Errorf("no rule named in the dump:\n%s", body)
	}
	body = uncomment(body)
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if code != 200 || len(lines) != strings.Count(plain, "\n") {
		t.Fatalf("%d, %d lines:\n%s", code, len(lines), body)
	}
	for _, l := range lines {
		if !strings.Contains(l, ", duration=2.500s, table=") || !strings.Contains(l, ", n_packets=4, n_bytes=392, idle_age=1, priority=") {
			t.Errorf("no stats: %s", l)
		}
	}
	for _, q := range []string{"?stats=0", "?stats=false", "?stats=0&table=L3Route"} {
		code, body := get(q)
		body = uncomment(body)
		if code != 200 || strings.Contains(body, "n_packets") || !strings.Contains(plain, body) || body == "" {
			t.Errorf("%s: %d\n%s", q, code, body)
		}
	}
	if code, body := get("?stats=0"); uncomment(body) != plain {
		t.Errorf("?stats=0 (%d) differs from FlowsText:\n%s", code, body)
	}
	if code, body := get("?stats=maybe"); code != http.StatusBadRequest || !strings.Contains(body, "stats") {
		t.Errorf("?stats=maybe: %d %s", code, body)
	}
}
