package lab

import (
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"regexp"
	"slices"
)

// InternetSpec describes the lab's "internet": one more namespace standing
// for the outside world behind the gateway hosts' uplinks. It holds a Linux
// bridge (the uplink network every gateway host shares) carrying Addr, and
// for each uplink a veth whose other end is a device of the gateway host
// named UplinkSpec.Interface, up but without an address: the controller's
// host setup plugs it into br-int as the uplink port. The internet has no
// default route and no link to anything outside the lab.
type InternetSpec struct {
	// Addr is the internet router's address on the uplink network, with
	// the network's prefix length, e.g. 198.51.100.1/24 (the gateway
	// hosts' next hop). IPv4.
	Addr netip.Prefix
	// MAC is the router's MAC on the uplink network (nil: derived from the
	// lab's name). It is pinned so it never changes as uplinks come and go.
	MAC net.HardwareAddr
	// Extra are more addresses the internet owns (on lo): "far" hosts,
	// e.g. 192.0.2.10/32. IPv4.
	Extra []netip.Prefix
	// OnLink are prefixes routed on-link out of the uplink network, e.g.
	// public IP pools whose addresses the gateways answer ARP for. IPv4.
	OnLink []netip.Prefix
	// Uplinks connect gateway hosts, one each.
	Uplinks []UplinkSpec
}

// UplinkSpec connects a host to the internet.
type UplinkSpec struct {
	Host string
	// Interface is the name of the device made in the host's namespace
	// (1-15 of [A-Za-z0-9_.-]; not lo, br-int, br-phy, ovs-netdev,
	// ovs-system, nor starting with the lab's name).
	Interface string
}

// InternetName is the internet's name in errors, captures and logs.
const InternetName = "internet"

// Internet is the lab's outside world (see InternetSpec).
type Internet struct {
	lab     *Lab
	netns   string
	bridge  string
	addr    netip.Prefix
	mac     net.HardwareAddr
	extra   []netip.Prefix
	uplinks []internetUplink
}

type internetUplink struct {
	host  *Host
	iface string // in the host's namespace
	dev   string // its peer on the internet's bridge
}

type internetState struct {
	Netns   string              `json:"netns"`
	Bridge  string              `json:"bridge"`
	Addr    netip.Prefix        `json:"addr"`
	MAC     string              `json:"mac"`
	Extra   []netip.Prefix      `json:"extra"`
	OnLink  []netip.Prefix      `json:"on_link"`
	Uplinks []uplinkStateRecord `json:"uplinks"`
}

type uplinkStateRecord struct {
	Host      string `json:"host"`
	Interface string `json:"interface"` // in the host's namespace
	Dev       string `json:"dev"`       // its peer on the internet's bridge
}

var uplinkIfaceRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

// validateInternet checks spec.Internet (hosts already validated).
func validateInternet(spec *Spec, hosts map[string]bool) error {
	in := spec.Internet
	if in == nil {
		return nil
	}
	pre := fmt.Sprintf("lab %s: internet:", spec.Name)
	if !in.Addr.IsValid() || !in.Addr.Addr().Is4() || in.Addr.Bits() > 30 {
		return fmt.Errorf("%s address %s must be an IPv4 address with a prefix length up to /30", pre, in.Addr)
	}
	if a := in.Addr.Addr(); a == in.Addr.Masked().Addr() {
		return fmt.Errorf("%s address %s is its network's address", pre, in.Addr)
	}
	if in.MAC != nil && (len(in.MAC) != 6 || in.MAC[0]&1 == 1) {
		return fmt.Errorf("%s MAC %s is not a unicast Ethernet address", pre, in.MAC)
	}
	for _, p := range slices.Concat(in.Extra, in.OnLink) {
		if !p.IsValid() || !p.Addr().Is4() {
			return fmt.Errorf("%s %s is not an IPv4 prefix", pre, p)
		}
	}
	if len(in.Uplinks) > 200 {
		return fmt.Errorf("%s too many uplinks", pre)
	}
	seen := map[string]bool{}
	for _, u := range in.Uplinks {
		if !hosts[u.Host] {
			return fmt.Errorf("%s uplink of unknown host %q", pre, u.Host)
		}
		if seen[u.Host] {
			return fmt.Errorf("%s host %s has more than one uplink", pre, u.Host)
		}
		seen[u.Host] = true
		if err := checkUplinkIface(spec.Name, u.Interface); err != nil {
			return fmt.Errorf("%s host %s: %w", pre, u.Host, err)
		}
	}
	return nil
}

func checkUplinkIface(lab, name string) error {
	switch {
	case !uplinkIfaceRE.MatchString(name) || name == "." || name == "..":
		return fmt.Errorf("uplink interface %q must match %s", name, uplinkIfaceRE)
	case slices.Contains([]string{"lo", IntegrationBridge, PhysicalBridge, "ovs-netdev", "ovs-system"}, name):
		return fmt.Errorf("uplink interface %q is a name the host already uses", name)
	case len(name) >= len(lab) && name[:len(lab)] == lab:
		return fmt.Errorf("uplink interface %q starts with the lab's name (its own devices' prefix)", name)
	}
	return nil
}

// newInternet records the internet of spec (validated) in the state; the
// hosts must be known.
func (l *Lab) newInternet(in *InternetSpec) *Internet {
	mac := slices.Clone(in.MAC)
	if mac == nil {
		f := fnv.New32a()
		f.Write([]byte(l.name))
		s := f.Sum32()
		mac = net.HardwareAddr{0x0e, byte(s >> 16), byte(s >> 8), byte(s), 0xfe, 0x01}
	}
	inet := &Internet{
		lab:    l,
		netns:  l.name + "-inet",
		bridge: l.name + "inbr",
		addr:   in.Addr,
		mac:    mac,
		extra:  slices.Clone(in.Extra),
	}
	st := &internetState{Netns: inet.netns, Bridge: inet.bridge, Addr: in.Addr, MAC: mac.String(),
		Extra: slices.Clone(in.Extra), OnLink: []netip.Prefix{}, Uplinks: []uplinkStateRecord{}}
	for i, u := range in.Uplinks {
		iu := internetUplink{host: l.hosts[u.Host], iface: u.Interface, dev: fmt.Sprintf("%sn%d", l.name, i)}
		inet.uplinks = append(inet.uplinks, iu)
		st.Uplinks = append(st.Uplinks, uplinkStateRecord{Host: u.Host, Interface: iu.iface, Dev: iu.dev})
	}
	l.inet = inet
	l.st.Internet = st
	return inet
}

// up creates the internet's namespace and bridge with its addresses.
func (in *Internet) up(ctx context.Context) error {
	l := in.lab
	ns, br := in.netns, in.bridge
	if err := l.addNetns(ctx, ns, false); err != nil {
		return fmt.Errorf("internet: %w", err)
	}
	if err := l.addDevice(ns, br); err != nil {
		return fmt.Errorf("internet: %w", err)
	}
	// An endpoint, not a router: no forwarding; reverse-path filtering off
	// whatever the machine's defaults are (a new namespace may inherit them).
	if _, err := run(ctx, nsArgv(ns, []string{"sysctl", "-qw", "net.ipv4.ip_forward=0",
		"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"})...); err != nil {
		return fmt.Errorf("internet: %w", err)
	}
	steps := [][]string{
		{"link", "add", "name", br, "address", in.mac.String(), "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"addr", "add", in.addr.String(), "dev", br},
		{"link", "set", "dev", br, "up"},
	}
	for _, p := range in.extra {
		steps = append(steps, []string{"addr", "add", p.String(), "dev", "lo"})
	}
	for _, s := range steps {
		if _, err := ip(ctx, ns, s...); err != nil {
			return fmt.Errorf("internet: %w", err)
		}
	}
	// TCP through the gateways' userspace datapath needs checksums filled
	// in by the sender; no IPv6 noise on the uplink network.
	if _, err := run(ctx, nsArgv(ns, []string{"ethtool", "-K", br, "tx", "off"})...); err != nil {
		return fmt.Errorf("internet: %w", err)
	}
	if _, err := run(ctx, nsArgv(ns, []string{"sysctl", "-qw", ifSysctl(br, "disable_ipv6=1")})...); err != nil {
		return fmt.Errorf("internet: %w", err)
	}
	return nil
}

// plug connects every uplink (the hosts' namespaces exist), then routes the
// on-link prefixes.
func (in *Internet) plug(ctx context.Context, onLink []netip.Prefix) error {
	if err := parallel(in.uplinks, func(u internetUplink) error { return in.plugUplink(ctx, u) }); err != nil {
		return err
	}
	for _, p := range onLink {
		if err := in.AddOnLink(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func (in *Internet) plugUplink(ctx context.Context, u internetUplink) error {
	l := in.lab
	h := u.host
	if err := l.addDevice(in.netns, u.dev); err != nil {
		return fmt.Errorf("internet: uplink of %s: %w", h.name, err)
	}
	if err := l.addDevice(h.netns, u.iface); err != nil {
		return fmt.Errorf("internet: uplink of %s: %w", h.name, err)
	}
	steps := [][]string{
		{"ip", "-n", in.netns, "link", "add", u.dev, "type", "veth", "peer", "name", u.iface, "netns", h.netns},
		nsArgv(in.netns, []string{"sysctl", "-qw", ifSysctl(u.dev, "disable_ipv6=1")}),
		nsArgv(h.netns, []string{"sysctl", "-qw", ifSysctl(u.iface, "disable_ipv6=1")}),
		nsArgv(in.netns, []string{"ethtool", "-K", u.dev, "tx", "off"}),
		{"ip", "-n", in.netns, "link", "set", "dev", u.dev, "master", in.bridge, "up"},
		// "dev": the name may be one of ip's keywords (e.g. "up").
		{"ip", "-n", h.netns, "link", "set", "dev", u.iface, "up"},
	}
	for _, s := range steps {
		if _, err := run(ctx, s...); err != nil {
			return fmt.Errorf("internet: uplink of %s: %w", h.name, err)
		}
	}
	return nil
}

// ifSysctl is the IPv6 sysctl "net/ipv6/conf/DEV/SETTING" in the slash
// form, as device names may hold dots.
func ifSysctl(dev, setting string) string { return "net/ipv6/conf/" + dev + "/" + setting }

// Internet returns the lab's internet, or nil if its spec had none.
func (l *Lab) Internet() *Internet {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inet
}

// Name is InternetName ("internet").
func (in *Internet) Name() string { return InternetName }

// Netns is the internet's namespace.
func (in *Internet) Netns() string { return in.netns }

// Bridge is the Linux bridge of the uplink network, in the internet's
// namespace; it carries Addr.
func (in *Internet) Bridge() string { return in.bridge }

// MAC is the router's MAC on the uplink network (the bridge's).
func (in *Internet) MAC() net.HardwareAddr { return slices.Clone(in.mac) }

// Addr is the router's address on the uplink network, with its prefix
// length.
func (in *Internet) Addr() netip.Prefix { return in.addr }

// IP is the router's address on the uplink network (Addr's address): the
// internet's primary address.
func (in *Internet) IP() netip.Addr { return in.addr.Addr() }

// Addrs returns the internet's addresses: Addr's first, then Extra's.
func (in *Internet) Addrs() []netip.Addr {
	out := []netip.Addr{in.addr.Addr()}
	for _, p := range in.extra {
		out = append(out, p.Addr())
	}
	return out
}

// Uplink returns the name of the device connecting host to the internet
// (in the host's namespace), or "" if it has none.
func (in *Internet) Uplink(host string) string {
	for _, u := range in.uplinks {
		if u.host.name == host {
			return u.iface
		}
	}
	return ""
}

// OnLink returns the prefixes routed on-link out of the uplink network.
func (in *Internet) OnLink() []netip.Prefix {
	l := in.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.st.Internet.OnLink)
}

// Exec runs argv inside the internet's namespace and returns its combined
// stdout and stderr.
func (in *Internet) Exec(ctx context.Context, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", fmt.Errorf("internet: exec: empty command")
	}
	return runCombined(ctx, nsArgv(in.netns, argv)...)
}

// Ping pings dst from the internet (see VM.Ping).
func (in *Internet) Ping(ctx context.Context, dst netip.Addr, o PingOpts) (PingResult, error) {
	return ping(ctx, in.netns, InternetName, dst, o)
}

// Capture starts `tcpdump -e -n -l -i BRIDGE FILTER` in the internet's
// namespace: it sees every uplink (see VM.Capture).
func (in *Internet) Capture(ctx context.Context, filter string) (*Capture, error) {
	return in.lab.capture(ctx, in.netns, in.bridge, InternetName, "tcpdump/"+InternetName, filter)
}

// AddOnLink routes p on-link out of the uplink network (e.g. a public IP
// pool added at run time); routing an already routed prefix is no error.
func (in *Internet) AddOnLink(ctx context.Context, p netip.Prefix) error {
	if !p.IsValid() || !p.Addr().Is4() {
		return fmt.Errorf("internet: on-link route %s: not an IPv4 prefix", p)
	}
	p = p.Masked()
	if _, err := ip(ctx, in.netns, "route", "replace", p.String(), "dev", in.bridge); err != nil {
		return fmt.Errorf("internet: %w", err)
	}
	return in.updateOnLink(func(s []netip.Prefix) []netip.Prefix {
		if slices.Contains(s, p) {
			return s
		}
		return append(s, p)
	})
}

// DelOnLink removes the on-link route of p (one of Spec.OnLink or added by
// AddOnLink; any other prefix is no error and nothing is done).
func (in *Internet) DelOnLink(ctx context.Context, p netip.Prefix) error {
	p = p.Masked()
	if !slices.Contains(in.OnLink(), p) {
		return nil
	}
	if _, err := ip(ctx, in.netns, "route", "del", p.String(), "dev", in.bridge); err != nil {
		return fmt.Errorf("internet: %w", err)
	}
	return in.updateOnLink(func(s []netip.Prefix) []netip.Prefix {
		return slices.DeleteFunc(s, func(q netip.Prefix) bool { return q == p })
	})
}

func (in *Internet) updateOnLink(f func([]netip.Prefix) []netip.Prefix) error {
	l := in.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.Internet.OnLink = f(l.st.Internet.OnLink)
	return l.saveLocked()
}
