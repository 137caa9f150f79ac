package model

import (
	"fmt"
	"slices"
	"strings"

	"github.com/openvpc/openvpc/tunnels"
)

// DefaultUnderlayMTU is a host's underlay MTU when the policy gives none.
const DefaultUnderlayMTU = 1500

// hostTunnels validates a host's tunnel kinds and MTU; the deployment's
// order is known before hosts are built (settings).
func (b *builder) hostTunnels(h Host, hi *HostInfo) {
	kinds := h.Encaps
	field := "encaps"
	switch {
	case h.Encap != "" && len(h.Encaps) > 0:
		b.fail("host", h.Name, "encap", "give encaps or encap, not both")
		return
	case h.Encap != "":
		kinds, field = []string{h.Encap}, "encap"
	case len(kinds) == 0:
		kinds = b.net.EncapOrder
	}
	seen := map[string]bool{}
	for i, k := range kinds {
		kind, err := tunnels.ParseKind(k)
		f := field
		if field == "encaps" && len(h.Encaps) > 0 {
			f = fmt.Sprintf("encaps[%d]", i)
		}
		switch {
		case err != nil:
			b.fail("host", h.Name, f, "%q is not a tunnel kind (vxlan, geneve, gre or stt)", k)
			continue
		case seen[string(kind)]:
			b.fail("host", h.Name, f, "%s is listed twice", kind)
			continue
		}
		seen[string(kind)] = true
		hi.Encaps = append(hi.Encaps, string(kind))
		if err := tunnels.CheckDatapath(kind, hi.DatapathType); err != nil {
			hi.Problems = append(hi.Problems, fmt.Sprintf("encap %s unusable: %v", kind, err))
			continue
		}
		hi.Usable = append(hi.Usable, string(kind))
	}
	if len(hi.Encaps) > 0 && len(hi.Usable) == 0 {
		hi.Problems = append(hi.Problems, "no usable encapsulation: the host can reach no other host")
	}
	hi.UnderlayMTU = h.UnderlayMTU
	switch {
	case hi.UnderlayMTU == 0:
		hi.UnderlayMTU = DefaultUnderlayMTU
	case hi.UnderlayMTU < 576 || hi.UnderlayMTU > 65535:
		b.fail("host", h.Name, "underlay_mtu", "%d is not an MTU between 576 and 65535", h.UnderlayMTU)
	}
}

// settings validates the deployment's settings; it runs before hosts.
func (b *builder) settings(s *Settings) {
	b.net.EncapOrder = []string{string(tunnels.VXLAN)}
	if s == nil || len(s.Encaps) == 0 {
		return
	}
	b.net.EncapOrder = nil
	seen := map[string]bool{}
	for i, k := range s.Encaps {
		kind, err := tunnels.ParseKind(k)
		switch {
		case err != nil:
			b.fail("settings", "", fmt.Sprintf("encaps[%d]", i), "%q is not a tunnel kind (vxlan, geneve, gre or stt)", k)
		case seen[string(kind)]:
			b.fail("settings", "", fmt.Sprintf("encaps[%d]", i), "%s is listed twice", kind)
		default:
			seen[string(kind)] = true
			b.net.EncapOrder = append(b.net.EncapOrder, string(kind))
		}
	}
}

// pairTunnels picks each pair of hosts' kind (the first of the deployment's
// order both can use, then any other both can), reports pairs with none,
// and derives each host's VM MTU.
func (b *builder) pairTunnels() {
	n := b.net
	n.pairs = map[[2]string]string{}
	order := append([]string(nil), n.EncapOrder...)
	for _, k := range tunnels.Kinds() {
		if !slices.Contains(order, string(k)) {
			order = append(order, string(k))
		}
	}
	for i, an := range n.HostNames {
		a := n.Hosts[an]
		for _, zn := range n.HostNames[i+1:] {
			z := n.Hosts[zn]
			kind := ""
			for _, k := range order {
				if slices.Contains(a.Usable, k) && slices.Contains(z.Usable, k) {
					kind = k
					break
				}
			}
			if kind == "" {
				if len(a.Usable) > 0 && len(z.Usable) > 0 {
					a.Problems = append(a.Problems, fmt.Sprintf("no encapsulation in common with host %s (%s: %s; %s: %s)", zn, an, strings.Join(a.Usable, ","), zn, strings.Join(z.Usable, ",")))
					z.Problems = append(z.Problems, fmt.Sprintf("no encapsulation in common with host %s (%s: %s; %s: %s)", an, zn, strings.Join(z.Usable, ","), an, strings.Join(a.Usable, ",")))
				}
				continue
			}
			n.pairs[[2]string{an, zn}] = kind
		}
	}
	for _, hn := range n.HostNames {
		h := n.Hosts[hn]
		h.VMMTU = 0
		for _, pn := range n.HostNames {
			if pn == hn {
				continue
			}
			kind, ok := n.PairEncap(hn, pn)
			if !ok {
				continue
			}
			mtu := min(h.UnderlayMTU, n.Hosts[pn].UnderlayMTU) - tunnels.Kind(kind).Overhead()
			if h.VMMTU == 0 || mtu < h.VMMTU {
				h.VMMTU = mtu
			}
		}
		if h.VMMTU == 0 { // no peers: what its own kinds would allow
			worst := 0
			for _, k := range h.Usable {
				worst = max(worst, tunnels.Kind(k).Overhead())
			}
			h.VMMTU = h.UnderlayMTU - worst
		}
	}
}

// PairEncap returns the tunnel kind hosts a and z use between them (false
// when they have none in common, or a == z).
func (n *Net) PairEncap(a, z string) (string, bool) {
	if a > z {
		a, z = z, a
	}
	k, ok := n.pairs[[2]string{a, z}]
	return k, ok
}
