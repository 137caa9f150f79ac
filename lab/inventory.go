package lab

import (
	"net/netip"
	"path/filepath"
	"slices"
)

// Inventory describes a lab for humans and other tools; it is also written
// to Dir/inventory.json whenever the lab changes.
type Inventory struct {
	Name          string             `json:"name"`
	Dir           string             `json:"dir"`
	UnderlayNetns string             `json:"underlay_netns"`
	UnderlayCIDR  string             `json:"underlay_cidr"`
	Hosts         []HostInventory    `json:"hosts"`
	VMs           []VMInventory      `json:"vms"`
	Internet      *InternetInventory `json:"internet,omitempty"`
	Pairs         []PairInventory    `json:"pairs,omitempty"`
}

// PairInventory describes a baseline pair (AddVethPair,
// AddNormalBridgePair).
type PairInventory struct {
	Name  string          `json:"name"`
	Kind  string          `json:"kind"`  // PairVeth or PairNormal
	Netns []string        `json:"netns"` // a, b, then the switch's (NORMAL pairs)
	Addrs [2]netip.Prefix `json:"addrs"` // of a's and b's eth0
	MTU   int             `json:"mtu,omitempty"`
	OVSDB string          `json:"ovsdb,omitempty"` // NORMAL pairs
}

// InternetInventory describes the lab's internet.
type InternetInventory struct {
	Netns   string            `json:"netns"`
	Bridge  string            `json:"bridge"` // the uplink network, holding Addr
	Addr    netip.Prefix      `json:"addr"`   // the gateways' next hop
	MAC     string            `json:"mac"`
	Extra   []netip.Prefix    `json:"extra"`   // on lo: far hosts
	OnLink  []netip.Prefix    `json:"on_link"` // routed out of the uplink network
	Uplinks []UplinkInventory `json:"uplinks"`
}

// UplinkInventory describes one gateway host's uplink.
type UplinkInventory struct {
	Host      string `json:"host"`
	Interface string `json:"interface"` // in the host's namespace, for its br-int
	Peer      string `json:"peer"`      // the other end, on the internet's bridge
}

// HostInventory describes one host.
type HostInventory struct {
	Name        string     `json:"name"`
	Netns       string     `json:"netns"`
	UnderlayIP  netip.Addr `json:"underlay_ip"`
	UnderlayMTU int        `json:"underlay_mtu"`
	OVSDB       string     `json:"ovsdb"`   // OVSDB endpoint, "unix:DIR/db.sock" (reachable from any netns)
	OVSDir      string     `json:"ovs_dir"` // pidfiles, logs, sockets (bridge .mgmt sockets too)
	Bridge      string     `json:"bridge"`  // integration bridge
}

// VMInventory describes one VM.
type VMInventory struct {
	Name    string         `json:"name"` // = iface-id
	Host    string         `json:"host"`
	Netns   string         `json:"netns"`
	NIC     string         `json:"nic"`   // host-side veth, the port on br-int
	Iface   string         `json:"iface"` // inside the VM: eth0
	MAC     string         `json:"mac"`
	IPs     []netip.Addr   `json:"ips"`
	Addrs   []netip.Prefix `json:"addrs"`
	Gateway netip.Addr     `json:"gateway,omitzero"`
	MTU     int            `json:"mtu,omitempty"`
	// Extra are the VM's secondary NICs (eth1, ...); the fields above
	// describe eth0.
	Extra []NICInventory `json:"extra_nics,omitempty"`
}

// NICInventory describes a VM's secondary NIC.
type NICInventory struct {
	Name  string         `json:"name"`  // = iface-id
	NIC   string         `json:"nic"`   // host-side veth, the port on br-int
	Iface string         `json:"iface"` // inside the VM: eth1, ...
	MAC   string         `json:"mac"`
	Addrs []netip.Prefix `json:"addrs"`
	MTU   int            `json:"mtu,omitempty"`
}

// Inventory returns the lab's current inventory.
func (l *Lab) Inventory() Inventory {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inventoryLocked()
}

func (l *Lab) inventoryLocked() Inventory {
	inv := Inventory{
		Name:          l.name,
		Dir:           l.dir,
		UnderlayNetns: l.st.UnderlayNetns,
		UnderlayCIDR:  UnderlayCIDR,
		Hosts:         []HostInventory{},
		VMs:           []VMInventory{},
	}
	for _, h := range l.st.Hosts {
		inv.Hosts = append(inv.Hosts, HostInventory{
			Name:        h.Name,
			Netns:       h.Netns,
			UnderlayIP:  h.UnderlayIP,
			UnderlayMTU: h.UnderlayMTU,
			OVSDB:       "unix:" + filepath.Join(h.OVSDir, "db.sock"),
			OVSDir:      h.OVSDir,
			Bridge:      IntegrationBridge,
		})
	}
	for _, v := range l.st.VMs {
		vi := VMInventory{
			Name: v.Name, Host: v.Host, Netns: v.Netns, NIC: v.NIC, Iface: VMIface, MAC: v.MAC,
			Addrs: slices.Clone(v.Addrs), Gateway: v.Gateway, MTU: v.MTU, IPs: []netip.Addr{},
		}
		for _, p := range v.Addrs {
			vi.IPs = append(vi.IPs, p.Addr())
		}
		for _, e := range v.Extra {
			vi.Extra = append(vi.Extra, NICInventory{Name: e.Name, NIC: e.NIC, Iface: e.Iface, MAC: e.MAC,
				Addrs: slices.Clone(e.Addrs), MTU: e.MTU})
		}
		inv.VMs = append(inv.VMs, vi)
	}
	if in := l.st.Internet; in != nil {
		ii := &InternetInventory{Netns: in.Netns, Bridge: in.Bridge, Addr: in.Addr, MAC: in.MAC,
			Extra: slices.Clone(in.Extra), OnLink: slices.Clone(in.OnLink), Uplinks: []UplinkInventory{}}
		for _, u := range in.Uplinks {
			ii.Uplinks = append(ii.Uplinks, UplinkInventory{Host: u.Host, Interface: u.Interface, Peer: u.Dev})
		}
		inv.Internet = ii
	}
	for _, p := range l.st.Pairs {
		pi := PairInventory{Name: p.Name, Kind: p.Kind, Netns: slices.Clone(p.Netns), Addrs: p.Addrs, MTU: p.MTU}
		if p.OVS != nil {
			pi.OVSDB = "unix:" + filepath.Join(p.OVS.OVSDir, "db.sock")
		}
		inv.Pairs = append(inv.Pairs, pi)
	}
	return inv
}
