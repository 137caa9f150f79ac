package tunnels

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openvpc/openvpc/internal/labtest"
	"github.com/openvpc/openvpc/model"
)

// underlayCapture runs tcpdump on a host's underlay for d and returns what it
// printed.
func underlayCapture(t *testing.T, host, filter string, d time.Duration) func() string {
	t.Helper()
	h := env.Lab.Host(host)
	if h == nil {
		t.Fatalf("no host %s", host)
	}
	var out string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		out, _ = h.Exec(labtest.Ctx(t), "timeout", fmt.Sprint(d.Seconds()), "tcpdump", "-lni", "any", "-c", "4", filter)
	}()
	time.Sleep(300 * time.Millisecond) // tcpdump attaching
	return func() string { wg.Wait(); return out }
}

// 1. The ping/TCP/UDP matrix passes between every pair of hosts, each pair
// over its own kind, as the underlay shows: GRE (IP protocol 47) h1–h2,
// Geneve (UDP 6081) h2–h3, VXLAN (UDP 4789) h1–h3.
func TestEncapMatrix(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t1", "10.91")
		p.NICs = append(p.NICs, nic("t1", "t1a", "s1", "h1", "10.91.1.10"), nic("t1", "t1b", "s1", "h2", "10.91.1.11"),
			nic("t1", "t1c", "s2", "h3", "10.91.2.10"))
	})
	v := env.Plug(t, "t1a", "t1b", "t1c")
	vms := []*labtest.VM{v["t1a"], v["t1b"], v["t1c"]}
	for _, vm := range vms {
		labtest.Serve(t, vm, "tcp:80", "udp:53")
	}
	var exps []labtest.Expectation
	for _, a := range vms {
		for _, b := range vms {
			if a != b {
				exps = append(exps, labtest.Ping(a, b).OK(), labtest.TCP(a, b, 80).OK(), labtest.UDP(a, b, 53).OK())
			}
		}
	}
	env.Expect(t, "every pair, every protocol", exps...)
	for _, c := range []struct{ host, filter, pair, kind string }{
		{"h1", "ip proto 47 and host 172.31.0.12", "t1a→t1b", "GRE"},
		{"h2", "udp port 6081 and host 172.31.0.13", "t1b→t1c", "Geneve"},
		{"h3", "udp port 4789 and host 172.31.0.11", "t1c→t1a", "VXLAN"},
	} {
		done := underlayCapture(t, c.host, c.filter, 3*time.Second)
		from, to := map[string]*labtest.VM{"t1a→t1b": vms[0], "t1b→t1c": vms[1], "t1c→t1a": vms[2]}[c.pair],
			map[string]*labtest.VM{"t1a→t1b": vms[1], "t1b→t1c": vms[2], "t1c→t1a": vms[0]}[c.pair]
		env.Expect(t, c.pair, labtest.Ping(from, to).OK())
		if out := done(); !strings.Contains(out, "172.31.0.") {
			t.Errorf("%s: no %s on %s's underlay (%s):\n%s", c.pair, c.kind, c.host, c.filter, out)
		}
	}
	st := env.Controller().Status()
	for _, h := range st.Hosts {
		want := map[string]map[string]string{"h1": {"h2": "gre", "h3": "vxlan"}, "h2": {"h1": "gre", "h3": "geneve"}}[h.Name]
		for peer, kind := range want {
			if h.Tunnels[peer] != kind {
				t.Errorf("%s: tunnel to %s is %q, want %s (status %v)", h.Name, peer, h.Tunnels[peer], kind, h.Tunnels)
			}
		}
	}
}

// 2. A host configured for STT on the userspace datapath is reported (in the
// controller's status and the model) and reaches nobody; the others keep
// working.
func TestSTTReported(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t2", "10.92")
		p.NICs = append(p.NICs, nic("t2", "t2a", "s1", "h1", "10.92.1.10"), nic("t2", "t2b", "s1", "h2", "10.92.1.11"),
			nic("t2", "t2s", "s1", "h4", "10.92.1.12"))
	})
	v := env.Plug(t, "t2a", "t2b", "t2s")
	env.Expect(t, "h4 (stt on netdev) reaches nobody, the others work",
		labtest.Ping(v["t2a"], v["t2b"]).OK(), labtest.Ping(v["t2a"], v["t2s"]).Blocked(), labtest.Ping(v["t2s"], v["t2b"]).Blocked())
	found := false
	for _, h := range env.Controller().Status().Hosts {
		if h.Name == "h4" {
			found = true
			p := strings.Join(h.Problems, "\n")
			if !strings.Contains(p, "encap stt unusable") || !strings.Contains(p, "cannot transmit") || len(h.Encaps) != 0 {
				t.Errorf("h4: encaps %v, problems:\n%s", h.Encaps, p)
			}
		}
	}
	if !found {
		t.Fatal("h4 not in the controller's status")
	}
}

// 3. A tunnelled packet with a valid VPC key is taken only from a known
// host's underlay address (and on its pair's kind): the same VXLAN packet
// from h3's address reaches the VM, from an unknown address it is dropped.
func TestUnknownUnderlaySource(t *testing.T) {
	env.Create(t, func(p *model.Policy) {
		vpc(p, "t3", "10.93")
		p.NICs = append(p.NICs, nic("t3", "t3a", "s1", "h1", "10.93.1.10"))
	})
	v := env.Plug(t, "t3a")
	a := v["t3a"]
	n, err := env.Net()
	labtest.Must(t, err)
	vni := n.VPCs["t3v"].VNI
	router := n.VPCs["t3v"].RouterMAC.String()
	h3 := env.Lab.Host("h3")
	const stranger = "172.31.0.99"
	labtest.Must(t, execOK(h3.Exec(labtest.Ctx(t), "ip", "addr", "add", stranger+"/24", "dev", "br-phy")))
	t.Cleanup(func() { h3.Exec(context.Background(), "ip", "addr", "del", stranger+"/24", "dev", "br-phy") })

	send := func(src string) {
		t.Helper()
		out, err := h3.Exec(labtest.Ctx(t), "python3", "-c", vxlanPy, src, "172.31.0.11", fmt.Sprint(vni), a.MAC().String(), router,
			"10.93.1.99", a.Addr)
		if err != nil {
			t.Fatalf("send from %s: %v: %s", src, err, out)
		}
	}
	at := labtest.Capture(t, a, "icmp and host 10.93.1.99")
	for i := 0; i < 3; i++ {
		send(stranger)
	}
	time.Sleep(time.Second)
	if lines := at.Lines(); len(lines) != 0 {
		t.Fatalf("a packet from unknown underlay address %s reached the VM:\n%s", stranger, strings.Join(lines, "\n"))
	}
	// The control: the same packet from h3's own address (h1–h3 use VXLAN).
	for i := 0; i < 3; i++ {
		send("172.31.0.13")
	}
	env.WaitFrames(t, at, "the same packet from a known host", "10.93.1.99 > "+a.Addr, "ICMP echo request")
}

func execOK(out string, err error) error {
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// vxlanPy sends a VXLAN packet (UDP 4789) from SRC to DST carrying an ICMP
// echo request IP_SRC → IP_DST in an Ethernet frame DST_MAC ← SRC_MAC, VNI.
const vxlanPy = `
import socket, struct, sys
src, dst, vni, dmac, smac, isrc, idst = sys.argv[1:8]
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b)//2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
mac = lambda m: bytes(int(x, 16) for x in m.split(':'))
icmp = struct.pack('!BBHHH', 8, 0, 0, 0x4242, 1) + b'openvpc'
icmp = icmp[:2] + struct.pack('!H', csum(icmp)) + icmp[4:]
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20+len(icmp), 1, 0, 64, 1, 0, socket.inet_aton(isrc), socket.inet_aton(idst))
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
frame = mac(dmac) + mac(smac) + b'\x08\x00' + ip + icmp
vx = struct.pack('!II', 0x08000000, int(vni) << 8)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
s.sendto(vx + frame, (dst, 4789))
`
