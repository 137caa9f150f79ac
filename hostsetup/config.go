// Package hostsetup keeps a hypervisor's integration bridge (br-int) the way
// OpenVPC needs it, through OVSDB, and reports which VM NICs are bound to
// which OpenFlow ports.
//
// Ensure creates or repairs the bridge idempotently (one transaction),
// Watch/Watcher reports NIC bindings (external_ids:iface-id → ofport) and
// tunnel ports, and Run is the one-shot `openvpc host setup`.
package hostsetup

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/openvpc/openvpc/tunnels"
)

// Defaults.
const (
	DefaultBridge       = "br-int"
	DefaultMaxBackoffMS = 1000
	// MaxTableNameLen is OpenFlow's table-features name size; longer names
	// are cut in ovs-ofctl output.
	MaxTableNameLen = 32
)

// Config is the desired state of the integration bridge.
type Config struct {
	// Bridge name; "" means DefaultBridge.
	Bridge string
	// DatapathType is "netdev" (userspace) or "system" (kernel). "" keeps an
	// existing bridge's type and creates new bridges with OVS's default
	// (system).
	DatapathType string
	// DatapathID must be unique per host and nonzero; it is written as
	// other_config:datapath-id in 16 hex digits.
	DatapathID uint64
	// Controllers are OpenFlow targets, e.g. "unix:/run/of.sock" or
	// "tcp:10.0.0.1:6653". Each gets connection_mode=out-of-band.
	Controllers []string
	// MaxBackoffMS is each controller's max_backoff; 0 means
	// DefaultMaxBackoffMS. OVS requires at least 1000.
	MaxBackoffMS int
	// InactivityProbeMS is each controller's inactivity_probe; 0 leaves OVS's
	// default (the column unset).
	InactivityProbeMS int
	// Tunnels are the flow-based tunnel ports, at most one per kind.
	Tunnels []TunnelPort
	// TableNames name OpenFlow tables (Bridge.flow_tables → Flow_Table.name),
	// so that ovs-ofctl shows them. Tables not listed lose their name.
	TableNames map[uint8]string
	// Uplink is the OS network device (e.g. "eth1") of a gateway host that is
	// plugged into the bridge as its uplink port (Port and Interface of that
	// name, Interface type "" = a system device, external_ids
	// RoleKey=RoleUplink on both). "" means no uplink: an OpenVPC uplink port
	// left on the bridge is removed.
	Uplink string
}

// TunnelPort is one flow-based tunnel port.
type TunnelPort struct {
	Kind    tunnels.Kind
	LocalIP netip.Addr // the host's underlay address
}

// normalize returns cfg with defaults filled in, or an error naming what is
// wrong with it.
func (cfg Config) normalize() (Config, error) {
	var errs []error
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if strings.ContainsAny(cfg.Bridge, " /\t\n") || len(cfg.Bridge) > 15 {
		errs = append(errs, fmt.Errorf("bridge name %q: want at most 15 characters, no spaces or slashes", cfg.Bridge))
	}
	switch cfg.DatapathType {
	case "", "netdev", "system":
	default:
		errs = append(errs, fmt.Errorf("datapath type %q: want netdev or system", cfg.DatapathType))
	}
	if cfg.DatapathID == 0 {
		errs = append(errs, errors.New("datapath ID must be set (nonzero and unique per host)"))
	}
	if cfg.MaxBackoffMS == 0 {
		cfg.MaxBackoffMS = DefaultMaxBackoffMS
	}
	if cfg.MaxBackoffMS < 1000 {
		errs = append(errs, fmt.Errorf("max backoff %d ms: OVS requires at least 1000", cfg.MaxBackoffMS))
	}
	if cfg.InactivityProbeMS < 0 {
		errs = append(errs, fmt.Errorf("inactivity probe %d ms: must not be negative", cfg.InactivityProbeMS))
	}
	seenCtl := map[string]bool{}
	for _, c := range cfg.Controllers {
		if err := checkTarget(c); err != nil {
			errs = append(errs, err)
		}
		if seenCtl[c] {
			errs = append(errs, fmt.Errorf("controller %q listed twice", c))
		}
		seenCtl[c] = true
	}
	seenKind := map[tunnels.Kind]bool{}
	for _, tp := range cfg.Tunnels {
		if !tp.Kind.Valid() {
			_, err := tunnels.ParseKind(string(tp.Kind))
			errs = append(errs, err)
			continue
		}
		if seenKind[tp.Kind] {
			errs = append(errs, fmt.Errorf("tunnel kind %s listed twice", tp.Kind))
		}
		seenKind[tp.Kind] = true
		if !tp.LocalIP.IsValid() || tp.LocalIP.IsUnspecified() {
			errs = append(errs, fmt.Errorf("tunnel %s: local IP %q is not a usable underlay address", tp.Kind, tp.LocalIP))
		}
	}
	if cfg.Uplink != "" {
		if err := checkDevName(cfg.Uplink); err != nil {
			errs = append(errs, fmt.Errorf("uplink interface: %w", err))
		}
		if cfg.Uplink == cfg.Bridge {
			errs = append(errs, fmt.Errorf("uplink interface %q: must not be the bridge's own name", cfg.Uplink))
		}
		if k, ok := tunnels.KindFromPortName(cfg.Uplink); ok {
			errs = append(errs, fmt.Errorf("uplink interface %q: the name of the %s tunnel port", cfg.Uplink, k))
		}
	}
	for t, name := range cfg.TableNames {
		if t == 255 {
			errs = append(errs, errors.New("table 255 does not exist (OpenFlow tables are 0-254)"))
		}
		if name == "" || len(name) > MaxTableNameLen {
			errs = append(errs, fmt.Errorf("table %d name %q: want 1 to %d bytes", t, name, MaxTableNameLen))
		}
	}
	if len(errs) > 0 {
		return cfg, fmt.Errorf("hostsetup: invalid config: %w", errors.Join(errs...))
	}
	return cfg, nil
}

// checkDevName accepts Linux network device names: 1 to 15 bytes, no
// whitespace, slashes or colons, not "." or "..".
func checkDevName(name string) error {
	if name == "" || len(name) > 15 || strings.ContainsAny(name, " /:\t\n") || name == "." || name == ".." {
		return fmt.Errorf("name %q: want 1 to 15 characters, no spaces, slashes or colons", name)
	}
	return nil
}

// checkTarget accepts OVS controller targets with an address after the
// scheme.
func checkTarget(t string) error {
	scheme, rest, ok := strings.Cut(t, ":")
	if ok && rest != "" {
		switch scheme {
		case "tcp", "ssl", "unix", "ptcp", "pssl", "punix":
			return nil
		}
	}
	return fmt.Errorf("controller target %q: want tcp:IP[:PORT], ssl:IP[:PORT] or unix:PATH (or ptcp:, pssl:, punix:)", t)
}

// DatapathIDString formats a datapath ID as OVS wants it in
// other_config:datapath-id (16 hex digits).
func DatapathIDString(dpid uint64) string { return fmt.Sprintf("%016x", dpid) }
