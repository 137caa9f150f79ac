package controller

import (
	"net"
	"net/netip"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
	"github.com/openvpc/openvpc/ofrules/ofconn"
	"github.com/openvpc/openvpc/pipelines"
)

// reply turns an ARP request into the reply of the target with mac.
func reply(req []byte, mac net.HardwareAddr) []byte {
	f := append([]byte(nil), req...)
	copy(f[0:6], req[6:12])
	copy(f[6:12], mac)
	f[21] = 2
	copy(f[22:28], mac)
	copy(f[28:32], req[38:42])
	copy(f[32:38], req[22:28])
	copy(f[38:42], req[28:32])
	return f
}

func TestARPFrames(t *testing.T) {
	mine, _ := net.ParseMAC("0a:67:77:00:00:01")
	router, _ := net.ParseMAC("02:99:00:00:00:01")
	req := arpRequest(mine, netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.1"))
	if len(req) != 60 || req[0] != 0xff || req[12] != 0x08 || req[13] != 0x06 || req[21] != 1 {
		t.Fatalf("request % x", req)
	}
	if _, _, ok := parseARPReply(req); ok {
		t.Fatal("a request parsed as a reply")
	}
	ip, mac, ok := parseARPReply(reply(req, router))
	if !ok || ip.String() != "198.51.100.1" || mac.String() != router.String() {
		t.Fatalf("reply: %v %v %v", ip, mac, ok)
	}
	if _, _, ok := parseARPReply(req[:30]); ok {
		t.Fatal("a short frame parsed")
	}
}

// A router's ARP reply from the gateway host's uplink table sets the MAC the
// host's next compile uses; replies from other addresses or tables do not.
func TestPacketInLearnsRouter(t *testing.T) {
	p := &model.Policy{Hosts: []model.Host{{Name: "gw", UnderlayIP: "172.31.0.11",
		Uplink: &model.Uplink{Interface: "eth1", IP: "198.51.100.2/24", NextHop: "198.51.100.1"}}}}
	n, err := model.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	c := New(Config{Log: logrus.New()})
	h := &host{name: "gw", info: n.Hosts["gw"], kick: make(chan struct{}, 1), bindings: &Bindings{UplinkPort: 2}, installed: ofrules.NewFlowSet()}
	c.hosts["gw"] = h
	c.net = n
	sw := &fakeSwitch{dpid: n.Hosts["gw"].DatapathID}
	u := n.Hosts["gw"].Uplink
	router, _ := net.ParseMAC("02:99:00:00:00:01")
	req := arpRequest(u.MAC, u.IP.Addr(), u.NextHop)
	other := arpRequest(u.MAC, u.IP.Addr(), netip.MustParseAddr("198.51.100.7"))

	c.packetIn(sw, ofconn.PacketIn{TableID: pipelines.TableGwUplink, Data: reply(other, router)})
	c.packetIn(sw, ofconn.PacketIn{TableID: pipelines.TableClassifier, Data: reply(req, router)})
	if got := c.snapshotLocked().Hosts["gw"].NextHopMAC; got != nil {
		t.Fatalf("learned %v from a stray reply", got)
	}
	c.packetIn(sw, ofconn.PacketIn{TableID: pipelines.TableGwUplink, Data: reply(req, router)})
	if got := c.snapshotLocked().Hosts["gw"].NextHopMAC; got.String() != router.String() {
		t.Fatalf("next hop MAC %v, want %v", got, router)
	}
	select {
	case <-h.kick:
	default:
		t.Fatal("learning the router did not recompile the host")
	}
	if st := c.Status(); st.Hosts[0].Gateway == nil || st.Hosts[0].Gateway.NextHopMAC != router.String() {
		t.Fatalf("status: %+v", st.Hosts[0].Gateway)
	}
}
