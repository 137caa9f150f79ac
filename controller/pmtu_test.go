package controller

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"
)

// ipFrame is an Ethernet/IPv4/UDP frame of n bytes of IP, DF as given.
func ipFrame(n int, df bool) []byte {
	f := make([]byte, 14+n)
	copy(f[0:6], []byte{0x0a, 0x76, 0x70, 0, 0, 1})
	copy(f[6:12], []byte{0x02, 0, 0, 0, 0, 9})
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(n))
	if df {
		binary.BigEndian.PutUint16(ip[6:], 0x4000)
	}
	ip[8], ip[9] = 64, 17
	copy(ip[12:16], []byte{10, 0, 1, 10})
	copy(ip[16:20], []byte{10, 0, 2, 10})
	binary.BigEndian.PutUint16(ip[20:], 5000)
	binary.BigEndian.PutUint16(ip[22:], 53)
	return f
}

func TestFragNeeded(t *testing.T) {
	router, _ := net.ParseMAC("0a:76:70:00:00:01")
	gw := netip.MustParseAddr("10.0.1.1")
	r := fragNeeded(ipFrame(1500, true), router, gw, 1450)
	if r == nil {
		t.Fatal("no reply to a DF frame")
	}
	if got := net.HardwareAddr(r[0:6]).String(); got != "02:00:00:00:00:09" {
		t.Errorf("to MAC %s, want the sender's", got)
	}
	ip := r[14:]
	if src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20])); src != gw || dst.String() != "10.0.1.10" {
		t.Errorf("ICMP %s → %s", src, dst)
	}
	if checksum(ip[:20]) != 0 || checksum(ip[20:]) != 0 {
		t.Error("bad IP or ICMP checksum")
	}
	icmp := ip[20:]
	if icmp[0] != 3 || icmp[1] != 4 || binary.BigEndian.Uint16(icmp[6:]) != 1450 {
		t.Errorf("ICMP type %d code %d mtu %d", icmp[0], icmp[1], binary.BigEndian.Uint16(icmp[6:]))
	}
	if len(icmp) != 8+28 || icmp[8] != 0x45 || binary.BigEndian.Uint16(icmp[8+22:]) != 53 {
		t.Errorf("quote: % x", icmp[8:])
	}
	if fragNeeded(ipFrame(1500, false), router, gw, 1450) != nil {
		t.Error("answered a frame without DF")
	}
	echoReply := ipFrame(1500, true)
	echoReply[14+9], echoReply[14+20] = 1, 3 // an ICMP error
	if fragNeeded(echoReply, router, gw, 1450) != nil {
		t.Error("answered an ICMP error")
	}
}

func TestPMTULimiter(t *testing.T) {
	var l pmtuLimiter
	now := time.Now()
	l.last = now
	n := 0
	for i := 0; i < 1000; i++ {
		if l.allow(now.Add(time.Duration(i) * time.Microsecond)) {
			n++
		}
	}
	if n != 0 {
		t.Fatalf("an empty bucket allowed %d", n)
	}
	for i := 0; i < 300; i++ {
		if l.allow(now.Add(2*time.Second + time.Duration(i)*time.Microsecond)) {
			n++
		}
	}
	if n != pmtuBurst {
		t.Fatalf("after 2 s: %d allowed, want the burst %d", n, pmtuBurst)
	}
}
