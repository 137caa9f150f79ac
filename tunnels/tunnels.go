// Package tunnels describes the overlay encapsulations OpenVPC can use between
// hypervisors and how each maps onto an Open vSwitch tunnel port.
//
// Every host gets one flow-based tunnel port per encapsulation kind
// (remote_ip=flow, key=flow, local_ip=<underlay address>): the OpenFlow
// pipeline picks the remote host with set_field:tun_dst and the VPC with
// tun_id, so the number of ports does not grow with the number of hosts.
package tunnels

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Kind is an encapsulation. Its value is also its OVSDB Interface type.
type Kind string

// The supported kinds.
const (
	VXLAN  Kind = "vxlan"
	GRE    Kind = "gre"
	Geneve Kind = "geneve"
	STT    Kind = "stt"
)

// PortPrefix starts the name of every tunnel port OpenVPC owns.
const PortPrefix = "ovpn-"

// Kinds lists the supported kinds in a fixed order.
func Kinds() []Kind { return []Kind{VXLAN, GRE, Geneve, STT} }

// ErrUnknownKind is wrapped by ParseKind's error.
var ErrUnknownKind = errors.New("unknown tunnel kind")

// ErrUnsupportedDatapath is wrapped by CheckDatapath's error.
var ErrUnsupportedDatapath = errors.New("tunnel kind not usable on this datapath")

// ParseKind parses a kind name ("vxlan", "gre", "geneve", "stt"; case and
// surrounding space are ignored).
func ParseKind(s string) (Kind, error) {
	k := Kind(strings.ToLower(strings.TrimSpace(s)))
	if k.Valid() {
		return k, nil
	}
	names := make([]string, 0, 4)
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return "", fmt.Errorf("%w %q: want one of %s", ErrUnknownKind, s, strings.Join(names, ", "))
}

// Valid reports whether k is one of Kinds().
func (k Kind) Valid() bool {
	switch k {
	case VXLAN, GRE, Geneve, STT:
		return true
	}
	return false
}

// String returns the kind's name.
func (k Kind) String() string { return string(k) }

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("%w %q", ErrUnknownKind, string(k))
	}
	return []byte(k), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseKind.
func (k *Kind) UnmarshalText(b []byte) error {
	p, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// InterfaceType is the OVSDB Interface.type of the kind's port.
func (k Kind) InterfaceType() string { return string(k) }

// PortName is the stable name of the kind's flow-based tunnel port (Port and
// Interface), e.g. "ovpn-vxlan". It is at most 15 bytes, so it is also a
// valid Linux device name.
func (k Kind) PortName() string { return PortPrefix + string(k) }

// KindFromPortName returns the kind whose PortName is name.
func KindFromPortName(name string) (Kind, bool) {
	if !strings.HasPrefix(name, PortPrefix) {
		return "", false
	}
	k := Kind(strings.TrimPrefix(name, PortPrefix))
	return k, k.Valid()
}

// Options are the Interface.options of the kind's flow-based port:
// remote_ip=flow and key=flow, with local_ip set to the host's underlay
// address.
func (k Kind) Options(localIP netip.Addr) map[string]string {
	return map[string]string{
		"remote_ip": "flow",
		"key":       "flow",
		"local_ip":  localIP.Unmap().String(),
	}
}

// Overhead is the number of bytes the encapsulation adds to an inner
// Ethernet frame's IP packet over an IPv4 underlay (outer IPv4 header, the
// tunnel headers and the inner Ethernet header): VXLAN and Geneve (without
// options) 50, GRE with a key 42, STT 58. Subtract it from the underlay MTU
// to get the VM MTU. An IPv6 underlay adds 20 more; see OverheadFor.
func (k Kind) Overhead() int {
	switch k {
	case VXLAN, Geneve:
		return 50
	case GRE:
		return 42
	case STT:
		return 58
	}
	return 0
}

// OverheadFor is Overhead for the given underlay address family.
func (k Kind) OverheadFor(underlay netip.Addr) int {
	o := k.Overhead()
	if o > 0 && underlay.Is6() && !underlay.Is4In6() {
		o += 20
	}
	return o
}

// CheckDatapath reports whether kind can carry traffic on a bridge of the
// given datapath type ("netdev" userspace, "system" or "" kernel).
//
// STT is refused on the userspace datapath: Open vSwitch (3.1 at least)
// accepts an stt port there, gives it an ofport and sets no error, but cannot
// build the STT header when sending ("native tunnel header build failed"),
// so every packet is dropped.
func CheckDatapath(kind Kind, datapathType string) error {
	if !kind.Valid() {
		return fmt.Errorf("%w %q", ErrUnknownKind, string(kind))
	}
	switch datapathType {
	case "", "system":
		return nil
	case "netdev":
		if kind == STT {
			return fmt.Errorf("%w: stt on datapath_type=netdev: Open vSwitch's userspace datapath accepts an stt port but cannot transmit on it; use vxlan, geneve or gre, or the kernel (system) datapath", ErrUnsupportedDatapath)
		}
		return nil
	}
	return fmt.Errorf("unknown datapath type %q: want netdev or system", datapathType)
}
