// Package frames builds raw Ethernet frames (IPv4 ICMP/UDP, ARP) for tests
// that must send what a well-behaved stack never would: spoofed sources,
// forged ARP replies, DHCP server replies.
package frames

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// Ethernet types.
const (
	TypeIPv4 = 0x0800
	TypeARP  = 0x0806
)

// Ethernet returns an Ethernet header followed by payload.
func Ethernet(dst, src net.HardwareAddr, etherType uint16, payload []byte) []byte {
	b := make([]byte, 14, 14+len(payload))
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:14], etherType)
	return append(b, payload...)
}

// IPv4 returns an IPv4 header (TTL 64, DF clear) followed by payload.
func IPv4(src, dst netip.Addr, proto uint8, payload []byte) []byte {
	h := make([]byte, 20, 20+len(payload))
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:4], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(h[4:6], 0x4242)
	h[8] = 64
	h[9] = proto
	s, d := src.As4(), dst.As4()
	copy(h[12:16], s[:])
	copy(h[16:20], d[:])
	binary.BigEndian.PutUint16(h[10:12], Checksum(h))
	return append(h, payload...)
}

// ICMPEcho returns an ICMP echo request with the given id, sequence and data.
func ICMPEcho(id, seq uint16, data []byte) []byte {
	b := make([]byte, 8, 8+len(data))
	b[0] = 8
	binary.BigEndian.PutUint16(b[4:6], id)
	binary.BigEndian.PutUint16(b[6:8], seq)
	b = append(b, data...)
	binary.BigEndian.PutUint16(b[2:4], Checksum(b))
	return b
}

// UDP returns a UDP datagram with its checksum over the IPv4 pseudo-header.
func UDP(src, dst netip.Addr, sport, dport uint16, data []byte) []byte {
	b := make([]byte, 8, 8+len(data))
	binary.BigEndian.PutUint16(b[0:2], sport)
	binary.BigEndian.PutUint16(b[2:4], dport)
	binary.BigEndian.PutUint16(b[4:6], uint16(8+len(data)))
	b = append(b, data...)
	s, d := src.As4(), dst.As4()
	pseudo := make([]byte, 0, 12+len(b))
	pseudo = append(pseudo, s[:]...)
	pseudo = append(pseudo, d[:]...)
	pseudo = append(pseudo, 0, 17, byte(len(b)>>8), byte(len(b)))
	pseudo = append(pseudo, b...)
	c := Checksum(pseudo)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[6:8], c)
	return b
}

// ARP returns an ARP packet for Ethernet/IPv4 (op 1 request, 2 reply).
func ARP(op uint16, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:2], 1)
	binary.BigEndian.PutUint16(b[2:4], TypeIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:8], op)
	copy(b[8:14], sha)
	s := spa.As4()
	copy(b[14:18], s[:])
	if tha != nil {
		copy(b[18:24], tha)
	}
	t := tpa.As4()
	copy(b[24:28], t[:])
	return b
}

// Checksum is the Internet checksum (RFC 1071).
func Checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
