// Package flowtest provides flows for tests of the OpenFlow codec and
// connection layer: a catalogue that uses every field and action, and
// generated sets of many distinct realistic flows.
package flowtest

import "github.com/openvpc/openvpc/ofrules"

// IP builds an IPv4 address value.
func IP(a, b, c, d byte) uint64 { return uint64(a)<<24 | uint64(b)<<16 | uint64(c)<<8 | uint64(d) }

// IPv4 matches dl_type=0x800.
func IPv4() ofrules.MatchField { return ofrules.Exact(ofrules.EthType, ofrules.EthTypeIPv4) }

// ARP matches dl_type=0x806.
func ARP() ofrules.MatchField { return ofrules.Exact(ofrules.EthType, ofrules.EthTypeARP) }

// Catalogue returns flows that together use every Field and ofrules.Action
// type (and their masks and variants) the codec supports.
func Catalogue() []ofrules.Flow {
	regMatches := make([]ofrules.MatchField, 0, 16)
	for n := 0; n < 16; n++ {
		switch n % 4 {
		case 0:
			regMatches = append(regMatches, ofrules.Exact(ofrules.Reg(n), uint64(n+1)))
		case 1:
			regMatches = append(regMatches, ofrules.Masked(ofrules.Reg(n), uint64(n)<<8, 0xff00))
		case 2:
			// left unmatched: its xreg partner is matched alone
		case 3:
			regMatches = append(regMatches, ofrules.Masked(ofrules.Reg(n), 0x80000000, 0x80000000))
		}
	}
	return []ofrules.Flow{
		{Table: 0, Priority: 100, Cookie: 0xb020000002c2273,
			Match: ofrules.NewMatch(ofrules.Exact(ofrules.InPort, 3)),
			Actions: []ofrules.Action{ofrules.SetField{Field: ofrules.Reg(1), Value: 0x2c2273}, ofrules.SetField{Field: ofrules.Reg(8), Value: 0x4f17, Mask: 0xffff},
				ofrules.SetField{Field: ofrules.Metadata, Value: 0x64}, ofrules.Goto{Table: 5}}},
		{Table: 0, Priority: 100, Cookie: 0xb05000000000064,
			Match:   ofrules.NewMatch(ofrules.Exact(ofrules.InPort, 1), ofrules.Exact(ofrules.TunID, 0x64), ofrules.Exact(ofrules.TunSrc, uint64(IP(172, 31, 0, 12)))),
			Actions: []ofrules.Action{ofrules.SetField{Field: ofrules.Metadata, Value: 0x64}, ofrules.SetField{Field: ofrules.Reg(0), Value: 1, Mask: 1}, ofrules.Goto{Table: 1}}},
		{Table: 1, Priority: 90, Cookie: 1,
			Match:   ofrules.NewMatch(ofrules.Masked(ofrules.TunDst, IP(172, 31, 0, 0), 0xffffff00), ofrules.Masked(ofrules.TunID, 0x100, 0xf00), ofrules.Masked(ofrules.Metadata, 0x64, 0xffffff)),
			Actions: []ofrules.Action{ofrules.Resubmit{Table: 45}, ofrules.Goto{Table: 45}}},
		{Table: 5, Priority: 100, Cookie: 2,
			Match:   ofrules.NewMatch(ofrules.Exact(ofrules.InPort, 3), ofrules.Exact(ofrules.EthSrc, 0x02000000010a), IPv4(), ofrules.Exact(ofrules.IPv4Src, IP(10, 0, 1, 10))),
			Actions: []ofrules.Action{ofrules.Goto{Table: 10}}},
		{Table: 5, Priority: 100, Cookie: 3,
			Match: ofrules.NewMatch(ofrules.Exact(ofrules.InPort, 3), ARP(), ofrules.Exact(ofrules.ArpSpa, IP(10, 0, 1, 10)), ofrules.Exact(ofrules.ArpSha, 0x02000000010a),
				ofrules.Masked(ofrules.ArpTpa, IP(10, 0, 0, 0), 0xffff0000), ofrules.Masked(ofrules.ArpTha, 0x020000000000, 0xffff00000000), ofrules.Exact(ofrules.ArpOp, 1)),
			Actions: []ofrules.Action{ofrules.Goto{Table: 10}}},
		{Table: 10, Priority: 100, Cookie: 4,
			Match: ofrules.NewMatch(ofrules.Masked(ofrules.EthDst, 0x010000000000, 0x010000000000))},
		{Table: 15, Priority: 100, Cookie: 5,
			Match: ofrules.NewMatch(ARP(), ofrules.Exact(ofrules.ArpOp, 1), ofrules.Exact(ofrules.ArpTpa, IP(10, 0, 1, 1)), ofrules.Masked(ofrules.Metadata, 0x64, 0xffffff)),
			Actions: []ofrules.Action{
				ofrules.Move{Src: ofrules.EthSrc, Dst: ofrules.EthDst, NBits: 48},
				ofrules.SetField{Field: ofrules.EthSrc, Value: 0x0a7670000064},
				ofrules.SetField{Field: ofrules.ArpOp, Value: 2},
				ofrules.Move{Src: ofrules.ArpSha, Dst: ofrules.ArpTha, NBits: 48},
				ofrules.Move{Src: ofrules.ArpSpa, Dst: ofrules.ArpTpa, NBits: 32},
				ofrules.SetField{Field: ofrules.ArpSha, Value: 0x0a7670000064},
				ofrules.SetField{Field: ofrules.ArpSpa, Value: IP(10, 0, 1, 1)},
				ofrules.SetField{Field: ofrules.ArpTha, Value: 0x0000ffff0000, Mask: 0x0000ffff0000},
				ofrules.SetField{Field: ofrules.ArpTpa, Value: IP(0, 0, 0, 9), Mask: 0xff},
				ofrules.Output{Port: ofrules.PortInPort}}},
		{Table: 20, Priority: 10, Cookie: 6,
			Match:   ofrules.NewMatch(IPv4()),
			Actions: []ofrules.Action{ofrules.CT{Table: 21, ZoneField: ofrules.Reg(5), ZoneOfs: 0, ZoneBits: 16}}},
		{Table: 21, Priority: 10, Cookie: 7,
			Match:   ofrules.NewMatch(IPv4(), ofrules.Exact(ofrules.CtState, ofrules.CtEst|ofrules.CtTrk), ofrules.Exact(ofrules.CtZone, 5), ofrules.Masked(ofrules.CtMark, 1, 1), ofrules.Exact(ofrules.CtLabel, 0x5)),
			Actions: []ofrules.Action{ofrules.Goto{Table: 40}}},
		{Table: 21, Priority: 20, Cookie: 8,
			Match:   ofrules.NewMatch(IPv4(), ofrules.Masked(ofrules.CtState, ofrules.CtTrk, ofrules.CtTrk|ofrules.CtInv), ofrules.Masked(ofrules.CtLabel, 0x100000000, 0xffffffff00000000)),
			Actions: []ofrules.Action{ofrules.Goto{Table: 40}}},
		{Table: 21, Priority: 30, Cookie: 9,
			Match:   ofrules.NewMatch(IPv4(), ofrules.MatchField{Field: ofrules.CtState, Value: ofrules.CtNew | ofrules.CtTrk, Mask: 0xff}),
			Actions: nil},
		{Table: 32, Priority: 10, Cookie: 10,
			Match: ofrules.NewMatch(IPv4(), ofrules.Masked(ofrules.CtState, ofrules.CtNew|ofrules.CtTrk, ofrules.CtNew|ofrules.CtTrk)),
			Actions: []ofrules.Action{ofrules.CT{Commit: true, Table: -1, ZoneField: ofrules.Reg(5), ZoneOfs: 0, ZoneBits: 16, Exec: []ofrules.Action{
				ofrules.SetField{Field: ofrules.CtMark, Value: 0x1},
				ofrules.Move{Src: ofrules.Reg(6), Dst: ofrules.CtLabel, NBits: 32},
				ofrules.SetField{Field: ofrules.CtLabel, Value: 0x7700000000, Mask: 0xff00000000},
			}}, ofrules.Goto{Table: 40}}},
		{Table: 33, Priority: 10, Cookie: 11,
			Match:   ofrules.NewMatch(IPv4()),
			Actions: []ofrules.Action{ofrules.CT{Commit: true, Table: 34, Zone: 7}, ofrules.CT{Table: -1, ZoneField: ofrules.Reg(7), ZoneOfs: 16, ZoneBits: 16}}},
		{Table: 30, Priority: 1000, Cookie: 12,
			Match:   ofrules.NewMatch(IPv4(), ofrules.Exact(ofrules.IPProto, ofrules.ProtoTCP), ofrules.Masked(ofrules.TCPDst, 0x50, 0xfff0), ofrules.Exact(ofrules.TCPSrc, 1234), ofrules.Masked(ofrules.IPv4Dst, IP(10, 1, 0, 0), 0xffff0000)),
			Actions: []ofrules.Action{ofrules.Conjunction{ID: 1000, Clause: 2, NClauses: 2}, ofrules.Conjunction{ID: 1001, Clause: 3, NClauses: 3}}},
		{Table: 30, Priority: 1000, Cookie: 13,
			Match:   ofrules.NewMatch(ofrules.Masked(ofrules.Reg(1), 0x2c2273, 0)),
			Actions: []ofrules.Action{ofrules.Conjunction{ID: 1000, Clause: 1, NClauses: 2}}},
		{Table: 30, Priority: 1000, Cookie: 14,
			Match:   ofrules.NewMatch(IPv4(), ofrules.Exact(ofrules.ConjID, 1000)),
			Actions: []ofrules.Action{ofrules.SetField{Field: ofrules.Reg(6), Value: 1000}, ofrules.Goto{Table: 32}}},
		{Table: 5, Priority: 200, Cookie: 15,
			Match: ofrules.NewMatch(IPv4(), ofrules.Exact(ofrules.IPProto, ofrules.ProtoUDP), ofrules.Exact(ofrules.UDPSrc, 67), ofrules.Masked(ofrules.UDPDst, 0x40, 0xffc0))},
		{Table: 25, Priority: 200, Cookie: 16,
			Match: ofrules.NewMatch(IPv4(), ofrules.Exact(ofrules.IPProto, ofrules.ProtoICMP), ofrules.Exact(ofrules.ICMPType, 8), ofrules.Exact(ofrules.ICMPCode, 0),
				ofrules.Exact(ofrules.IPv4Dst, IP(10, 0, 1, 1)), ofrules.Masked(ofrules.IPv4Src, IP(10, 0, 0, 0), 0xff00ff00), ofrules.Exact(ofrules.IPTTL, 64)),
			Actions: []ofrules.Action{
				ofrules.Move{Src: ofrules.EthSrc, Dst: ofrules.EthDst, NBits: 48},
				ofrules.SetField{Field: ofrules.EthSrc, Value: 0x0a7670000064},
				ofrules.Move{Src: ofrules.IPv4Src, Dst: ofrules.IPv4Dst, NBits: 32},
				ofrules.SetField{Field: ofrules.IPv4Src, Value: IP(10, 0, 1, 1)},
				ofrules.SetField{Field: ofrules.ICMPType, Value: 0},
				ofrules.SetField{Field: ofrules.ICMPCode, Value: 0},
				ofrules.SetField{Field: ofrules.IPTTL, Value: 63},
				ofrules.Output{Port: ofrules.PortInPort}}},
		{Table: 26, Priority: 10, Cookie: 17,
			Match: ofrules.NewMatch(IPv4(), ofrules.Exact(ofrules.IPProto, ofrules.ProtoTCP)),
			Actions: []ofrules.Action{ofrules.SetField{Field: ofrules.TCPSrc, Value: 80}, ofrules.SetField{Field: ofrules.TCPDst, Value: 8080 & 0xff00, Mask: 0xff00},
				ofrules.SetField{Field: ofrules.IPv4Dst, Value: IP(10, 0, 0, 0), Mask: 0xff000000}, ofrules.Move{Src: ofrules.TCPSrc, SrcOfs: 0, Dst: ofrules.Reg(9), DstOfs: 16, NBits: 16}}},
		{Table: 27, Priority: 10, Cookie: 18,
			Match:   ofrules.NewMatch(IPv4(), ofrules.Exact(ofrules.IPProto, ofrules.ProtoUDP)),
			Actions: []ofrules.Action{ofrules.SetField{Field: ofrules.UDPSrc, Value: 68}, ofrules.SetField{Field: ofrules.UDPDst, Value: 67}, ofrules.Move{Src: ofrules.UDPSrc, Dst: ofrules.UDPDst, NBits: 16}}},
		{Table: 45, Priority: 100, Cookie: 19,
			Match: ofrules.NewMatch(IPv4(), ofrules.Exact(ofrules.IPv4Dst, IP(10, 0, 2, 10)), ofrules.Masked(ofrules.Metadata, 0x64, 0xffffff), ofrules.Masked(ofrules.Reg(0), 0, 1)),
			Actions: []ofrules.Action{ofrules.SetField{Field: ofrules.EthDst, Value: 0x02000000020a}, ofrules.SetField{Field: ofrules.Reg(2), Value: 0x485ef9},
				ofrules.SetField{Field: ofrules.TunDst, Value: IP(172, 31, 0, 12)}, ofrules.SetField{Field: ofrules.TunID, Value: 0x64},
				ofrules.SetField{Field: ofrules.TunSrc, Value: IP(172, 31, 0, 11)},
				ofrules.SetField{Field: ofrules.Reg(0), Value: 2, Mask: 2}, ofrules.Goto{Table: 70}}},
		{Table: 70, Priority: 200, Cookie: 20,
			Match:   ofrules.NewMatch(ofrules.Masked(ofrules.Reg(0), 2, 2)),
			Actions: []ofrules.Action{ofrules.Move{Src: ofrules.Metadata, Dst: ofrules.TunID, NBits: 24}, ofrules.Output{Port: 1}}},
		{Table: 70, Priority: 100, Cookie: 21,
			Match:   ofrules.NewMatch(ofrules.Exact(ofrules.Reg(2), 0x2c2273)),
			Actions: []ofrules.Action{ofrules.OutputReg{Field: ofrules.Reg(3)}, ofrules.OutputReg{Field: ofrules.Reg(4), Ofs: 0, NBits: 16}, ofrules.OutputReg{Field: ofrules.Reg(4), Ofs: 16, NBits: 16}, ofrules.Output{Port: 3}}},
		{Table: 100, Priority: 1, Cookie: 22,
			Match:   ofrules.NewMatch(ofrules.Exact(ofrules.InPort, 7)),
			Actions: []ofrules.Action{ofrules.Controller{MaxLen: 128}, ofrules.Controller{MaxLen: 0}, ofrules.Output{Port: ofrules.PortController}}},
		{Table: 101, Priority: 1, Cookie: 23, Match: ofrules.NewMatch(regMatches...),
			Actions: []ofrules.Action{ofrules.Move{Src: ofrules.Reg(14), SrcOfs: 3, Dst: ofrules.Reg(15), DstOfs: 5, NBits: 7}, ofrules.SetField{Field: ofrules.Reg(10), Value: 0xa0000000, Mask: 0xf0000000},
				ofrules.Move{Src: ofrules.InPort, Dst: ofrules.Reg(11), NBits: 32}, ofrules.SetField{Field: ofrules.Metadata, Value: 0xff00, Mask: 0xff00}, ofrules.Resubmit{Table: 0}}},
		{Table: 102, Priority: 0, Cookie: 0xffffffffffffffff},
		{Table: 253, Priority: 65535, Cookie: 0, Match: ofrules.NewMatch(ofrules.Exact(ofrules.EthType, 0x86dd), ofrules.Exact(ofrules.IPProto, 58), ofrules.Exact(ofrules.IPTTL, 255))},
		// Later fragments (the security-group L4 clause in nx-match fragment mode).
		{Table: 55, Priority: 100, Cookie: 24, Match: ofrules.NewMatch(IPv4(), ofrules.Exact(ofrules.IPProto, ofrules.ProtoUDP), ofrules.Exact(ofrules.IPFrag, ofrules.FragLater)),
			Actions: []ofrules.Action{ofrules.Conjunction{ID: 9, Clause: 3, NClauses: 3}}},
	}
}

// Many returns n distinct, realistic flows (in four tables, four shapes)
// with cookies cookie|i.
func Many(n int, cookie uint64) []ofrules.Flow {
	out := make([]ofrules.Flow, n)
	for i := range out {
		c := cookie | uint64(i)
		u := uint64(i)
		switch i % 4 {
		case 0:
			out[i] = ofrules.Flow{Table: 45, Priority: 100, Cookie: c,
				Match: ofrules.NewMatch(IPv4(), ofrules.Exact(ofrules.IPv4Dst, 0x0a000000+u), ofrules.Masked(ofrules.Metadata, u%4096, 0xffffff)),
				Actions: []ofrules.Action{ofrules.SetField{Field: ofrules.EthDst, Value: 0x020000000000 + u}, ofrules.SetField{Field: ofrules.Reg(2), Value: u},
					ofrules.SetField{Field: ofrules.TunDst, Value: IP(172, 31, 0, byte(i))}, ofrules.SetField{Field: ofrules.Reg(0), Value: 2, Mask: 2}, ofrules.Goto{Table: 70}}}
		case 1:
			out[i] = ofrules.Flow{Table: 30, Priority: 1000, Cookie: c,
				Match: ofrules.NewMatch(IPv4(), ofrules.Exact(ofrules.IPProto, ofrules.ProtoTCP), ofrules.Masked(ofrules.TCPDst, u&0xfff0, 0xfff0),
					ofrules.Masked(ofrules.IPv4Src, u<<8, 0xffffff00)),
				Actions: []ofrules.Action{ofrules.Conjunction{ID: uint32(i), Clause: 2, NClauses: 3}}}
		case 2:
			out[i] = ofrules.Flow{Table: 15, Priority: 100, Cookie: c,
				Match: ofrules.NewMatch(ARP(), ofrules.Exact(ofrules.ArpOp, 1), ofrules.Exact(ofrules.ArpTpa, 0x0a000000+u), ofrules.Masked(ofrules.Metadata, u%4096, 0xffffff)),
				Actions: []ofrules.Action{ofrules.Move{Src: ofrules.EthSrc, Dst: ofrules.EthDst, NBits: 48}, ofrules.SetField{Field: ofrules.EthSrc, Value: 0x0a0000000000 | u},
					ofrules.SetField{Field: ofrules.ArpOp, Value: 2}, ofrules.Move{Src: ofrules.ArpSha, Dst: ofrules.ArpTha, NBits: 48},
					ofrules.Move{Src: ofrules.ArpSpa, Dst: ofrules.ArpTpa, NBits: 32}, ofrules.SetField{Field: ofrules.ArpSha, Value: 0x0a0000000000 | u},
					ofrules.SetField{Field: ofrules.ArpSpa, Value: 0x0a000000 + u}, ofrules.Output{Port: ofrules.PortInPort}}}
		case 3:
			out[i] = ofrules.Flow{Table: 32, Priority: 10, Cookie: c,
				Match: ofrules.NewMatch(IPv4(), ofrules.Masked(ofrules.CtState, ofrules.CtNew|ofrules.CtTrk, ofrules.CtNew|ofrules.CtTrk), ofrules.Exact(ofrules.Reg(1), u)),
				Actions: []ofrules.Action{ofrules.CT{Commit: true, Table: -1, ZoneField: ofrules.Reg(5), ZoneBits: 16,
					Exec: []ofrules.Action{ofrules.Move{Src: ofrules.Reg(6), Dst: ofrules.CtLabel, NBits: 32}}}, ofrules.Goto{Table: 40}}}
		}
	}
	return out
}
