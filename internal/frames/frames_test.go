package frames

import (
	"net"
	"net/netip"
	"testing"
)

func TestChecksumsVerify(t *testing.T) {
	src, dst := netip.MustParseAddr("10.0.1.10"), netip.MustParseAddr("10.0.1.11")
	ip := IPv4(src, dst, 1, ICMPEcho(7, 1, []byte("hello")))
	if Checksum(ip[:20]) != 0 {
		t.Error("IPv4 header checksum does not verify")
	}
	if Checksum(ip[20:]) != 0 {
		t.Error("ICMP checksum does not verify")
	}
	u := UDP(src, dst, 67, 68, []byte("x"))
	s, d := src.As4(), dst.As4()
	pseudo := append(append(append([]byte{}, s[:]...), d[:]...), 0, 17, 0, byte(len(u)))
	if Checksum(append(pseudo, u...)) != 0 {
		t.Error("UDP checksum does not verify")
	}
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	f := Ethernet(mac, mac, TypeARP, ARP(2, mac, src, mac, dst))
	if len(f) != 42 || f[12] != 0x08 || f[13] != 0x06 || f[21] != 2 {
		t.Errorf("bad ARP frame % x", f)
	}
}
