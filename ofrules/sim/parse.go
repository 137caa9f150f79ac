package sim

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/openvpc/openvpc/ofrules"
)

// names maps ovs-ofctl field names (and common aliases) to fields.
var names = func() map[string]ofrules.Field {
	m := map[string]ofrules.Field{
		"eth_src": ofrules.EthSrc, "eth_dst": ofrules.EthDst, "eth_type": ofrules.EthType,
		"ip_src": ofrules.IPv4Src, "ip_dst": ofrules.IPv4Dst, "ip_proto": ofrules.IPProto,
		"icmpv4_type": ofrules.ICMPType, "icmpv4_code": ofrules.ICMPCode,
	}
	for f := ofrules.Field(1); f <= ofrules.Reg(15); f++ {
		if s := f.String(); !strings.HasPrefix(s, "field") {
			m[s] = f
		}
	}
	return m
}()

// keywords set the ethernet type and IP protocol, as in ovs-ofctl.
var keywords = map[string][2]uint64{
	"ip": {ofrules.EthTypeIPv4, 0}, "arp": {ofrules.EthTypeARP, 0},
	"tcp": {ofrules.EthTypeIPv4, ofrules.ProtoTCP}, "udp": {ofrules.EthTypeIPv4, ofrules.ProtoUDP},
	"icmp": {ofrules.EthTypeIPv4, ofrules.ProtoICMP},
}

// ParsePacket reads an ovs-ofctl-like packet description, e.g.
// "tcp,nw_src=10.0.1.10,nw_dst=10.0.2.10,tp_dst=5432". tp_src/tp_dst
// follow the protocol (tcp or udp).
func ParsePacket(spec string) (Packet, error) {
	p := Packet{}
	var ports [][2]string
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, hasVal := strings.Cut(part, "=")
		if !hasVal {
			kw, ok := keywords[name]
			if !ok {
				return nil, fmt.Errorf("packet: unknown keyword %q (ip, tcp, udp, icmp, arp or field=value)", name)
			}
			p[ofrules.EthType] = kw[0]
			if kw[1] != 0 {
				p[ofrules.IPProto] = kw[1]
			}
			continue
		}
		if name == "tp_src" || name == "tp_dst" {
			ports = append(ports, [2]string{name, val})
			continue
		}
		f, ok := names[name]
		if !ok {
			return nil, fmt.Errorf("packet: unknown field %q", name)
		}
		v, err := parseValue(f, val)
		if err != nil {
			return nil, fmt.Errorf("packet: %s: %w", name, err)
		}
		p[f] = v
	}
	for _, tp := range ports {
		var f ofrules.Field
		switch p[ofrules.IPProto] {
		case ofrules.ProtoTCP:
			f = map[string]ofrules.Field{"tp_src": ofrules.TCPSrc, "tp_dst": ofrules.TCPDst}[tp[0]]
		case ofrules.ProtoUDP:
			f = map[string]ofrules.Field{"tp_src": ofrules.UDPSrc, "tp_dst": ofrules.UDPDst}[tp[0]]
		default:
			return nil, fmt.Errorf("packet: %s needs tcp or udp", tp[0])
		}
		v, err := parseValue(f, tp[1])
		if err != nil {
			return nil, fmt.Errorf("packet: %s: %w", tp[0], err)
		}
		p[f] = v
	}
	return p, nil
}

func parseValue(f ofrules.Field, s string) (uint64, error) {
	switch f {
	case ofrules.EthSrc, ofrules.EthDst, ofrules.ArpSha, ofrules.ArpTha:
		mac, err := net.ParseMAC(s)
		if err != nil || len(mac) != 6 {
			return 0, fmt.Errorf("%q is not a MAC address", s)
		}
		var v uint64
		for _, b := range mac {
			v = v<<8 | uint64(b)
		}
		return v, nil
	case ofrules.IPv4Src, ofrules.IPv4Dst, ofrules.ArpSpa, ofrules.ArpTpa, ofrules.TunSrc, ofrules.TunDst:
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return 0, fmt.Errorf("%q is not an IPv4 address", s)
		}
		b := a.As4()
		return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3]), nil
	}
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if b := f.Bits(); b < 64 && v>>b != 0 {
		return 0, fmt.Errorf("%d does not fit in %d bits", v, b)
	}
	return v, nil
}
