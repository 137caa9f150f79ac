package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
	"github.com/openvpc/openvpc/pipelines"
)

// Handler returns the controller's HTTP handler: health, status and flow
// dumps for `openvpc show` and `openvpc dump-flows`. (The tenant API comes
// with the store.)
func (c *Controller) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !c.inSync() {
			http.Error(w, "not in sync", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, c.Status())
	})
	mux.HandleFunc("GET /v1/hosts/{host}/trace", c.serveTrace)
	mux.HandleFunc("GET /v1/hosts/{host}/flows", func(w http.ResponseWriter, r *http.Request) {
		// ?stats=0 gives the plain form, like `ovs-ofctl --no-stats`.
		stats := true
		if v := r.URL.Query().Get("stats"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("stats=%q: want 0 or 1", v), "stats")
				return
			}
			stats = b
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		flows, err := c.DumpFlows(ctx, r.PathValue("host"))
		if err != nil {
			code := http.StatusBadGateway
			if errors.Is(err, ErrUnknownHost) {
				code = http.StatusNotFound
			} else if errors.Is(err, ErrNotConnected) {
				code = http.StatusServiceUnavailable
			}
			writeError(w, code, err.Error(), "")
			return
		}
		if t := r.URL.Query().Get("table"); t != "" {
			n, err := pipelines.TableByName(t)
			if err != nil {
				writeError(w, http.StatusBadRequest, err.Error(), "table")
				return
			}
			kept := flows[:0]
			for _, f := range flows {
				if f.Table == n {
					kept = append(kept, f)
				}
			}
			flows = kept
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		c.mu.Lock()
		n := c.net
		c.mu.Unlock()
		if stats {
			fmt.Fprint(w, FlowsTextWithStats(flows, n))
		} else {
			fmt.Fprint(w, FlowsText(flows, n))
		}
	})
	return mux
}

// writeError writes the API's error body: {"code","message","field"}.
func writeError(w http.ResponseWriter, status int, msg, field string) {
	code := map[int]string{http.StatusBadRequest: "invalid_argument", http.StatusNotFound: "not_found",
		http.StatusServiceUnavailable: "unavailable", http.StatusBadGateway: "internal"}[status]
	body := map[string]string{"code": code, "message": msg}
	if field != "" {
		body["field"] = field
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Listen opens a listener for an address written as "unix:/path",
// "tcp:host:port" or "host:port".
func Listen(addr string) (net.Listener, error) {
	network, address := SplitAddr(addr)
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

// SplitAddr splits "unix:/path" / "tcp:host:port" / "host:port".
func SplitAddr(addr string) (network, address string) {
	switch {
	case strings.HasPrefix(addr, "unix:"):
		return "unix", strings.TrimPrefix(addr, "unix:")
	case strings.HasPrefix(addr, "tcp:"):
		return "tcp", strings.TrimPrefix(addr, "tcp:")
	}
	return "tcp", addr
}

// FlowsText renders flows with table names, one per line, without
// statistics (the canonical form of golden tests and `openvpc compile`).
// With a policy, a security-group rule's flow ends in a comment naming the
// group and rule.
func FlowsText(flows []ofrules.Flow, n *model.Net) string {
	return flowsText(flows, n, (*ofrules.Flow).Text)
}

// FlowsTextWithStats renders flows like `ovs-ofctl dump-flows` with table
// names, one per line: with duration, n_packets, n_bytes and idle_age for
// flows that carry Stats (so the packets each rule allowed show).
func FlowsTextWithStats(flows []ofrules.Flow, n *model.Net) string {
	return flowsText(flows, n, (*ofrules.Flow).TextWithStats)
}

func flowsText(flows []ofrules.Flow, n *model.Net, text func(*ofrules.Flow, ofrules.TableNamer) string) string {
	var b strings.Builder
	for i := range flows {
		b.WriteString(text(&flows[i], pipelines.TableName))
		if d := pipelines.Describe(n, flows[i].Cookie); d != "" {
			b.WriteString("  # ")
			b.WriteString(d)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// serveTrace runs a packet through the flows the host's switch holds now
// (read over OpenFlow), explained with the current policy:
// ?from=NIC, ?from_host=H&vpc=V or ?from_uplink=1, &packet=ovs-ofctl-like fields, &ct=new|est|rel.
func (c *Controller) serveTrace(w http.ResponseWriter, r *http.Request) {
	host := r.PathValue("host")
	q := r.URL.Query()
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	flows, err := c.DumpFlows(ctx, host)
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, ErrUnknownHost) {
			code = http.StatusNotFound
		} else if errors.Is(err, ErrNotConnected) {
			code = http.StatusServiceUnavailable
		}
		writeError(w, code, err.Error(), "")
		return
	}
	c.mu.Lock()
	snap := c.snapshotLocked()
	c.mu.Unlock()
	if snap.Net == nil {
		writeError(w, http.StatusServiceUnavailable, "no policy loaded", "")
		return
	}
	text, _, err := pipelines.Trace(snap, host, flows, pipelines.TraceInput{
		FromNIC: q.Get("from"), FromHost: q.Get("from_host"), VPC: q.Get("vpc"), Packet: q.Get("packet"), CtState: q.Get("ct"),
		FromUplink: q.Get("from_uplink") != ""})
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "packet")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, text)
}
