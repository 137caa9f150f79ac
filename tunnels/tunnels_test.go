package tunnels

import (
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{
		"vxlan": VXLAN, "VXLAN": VXLAN, " gre ": GRE, "Geneve": Geneve, "stt": STT,
	} {
		got, err := ParseKind(in)
		if err != nil || got != want {
			t.Errorf("ParseKind(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "vxlan6", "ipsec_gre", "lisp"} {
		_, err := ParseKind(in)
		if !errors.Is(err, ErrUnknownKind) {
			t.Errorf("ParseKind(%q) error = %v; want ErrUnknownKind", in, err)
		}
	}
	_, err := ParseKind("foo")
	if want := `unknown tunnel kind "foo": want one of vxlan, gre, geneve, stt`; err == nil || err.Error() != want {
		t.Errorf("error text = %v; want %q", err, want)
	}
}

func TestKindProperties(t *testing.T) {
	type props struct {
		ifType, port string
		overhead     int
	}
	want := map[Kind]props{
		VXLAN:  {"vxlan", "ovpn-vxlan", 50},
		GRE:    {"gre", "ovpn-gre", 42},
		Geneve: {"geneve", "ovpn-geneve", 50},
		STT:    {"stt", "ovpn-stt", 58},
	}
	seen := map[string]bool{}
	for _, k := range Kinds() {
		w, ok := want[k]
		if !ok {
			t.Fatalf("unexpected kind %q", k)
		}
		if k.InterfaceType() != w.ifType || k.PortName() != w.port || k.Overhead() != w.overhead {
			t.Errorf("%s: got (%s, %s, %d); want %+v", k, k.InterfaceType(), k.PortName(), k.Overhead(), w)
		}
		if len(k.PortName()) > 15 {
			t.Errorf("%s: port name %q longer than IFNAMSIZ-1", k, k.PortName())
		}
		if seen[k.PortName()] {
			t.Errorf("duplicate port name %q", k.PortName())
		}
		seen[k.PortName()] = true
		back, ok := KindFromPortName(k.PortName())
		if !ok || back != k {
			t.Errorf("KindFromPortName(%q) = %q, %v", k.PortName(), back, ok)
		}
		if k.OverheadFor(netip.MustParseAddr("2001:db8::1")) != w.overhead+20 {
			t.Errorf("%s: IPv6 overhead %d", k, k.OverheadFor(netip.MustParseAddr("2001:db8::1")))
		}
		if k.OverheadFor(netip.MustParseAddr("::ffff:10.0.0.1")) != w.overhead {
			t.Errorf("%s: v4-mapped overhead %d", k, k.OverheadFor(netip.MustParseAddr("::ffff:10.0.0.1")))
		}
	}
	for _, name := range []string{"ovpn-", "ovpn-ipsec", "vxlan", "br-int", "ovpn-VXLAN"} {
		if k, ok := KindFromPortName(name); ok {
			t.Errorf("KindFromPortName(%q) = %q", name, k)
		}
	}
	if Kind("x").Overhead() != 0 || Kind("").Valid() {
		t.Error("invalid kind has properties")
	}
}

func TestOptions(t *testing.T) {
	got := VXLAN.Options(netip.MustParseAddr("::ffff:192.0.2.7"))
	want := map[string]string{"remote_ip": "flow", "key": "flow", "local_ip": "192.0.2.7"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Options = %v; want %v", got, want)
	}
	if got := Geneve.Options(netip.MustParseAddr("2001:db8::5"))["local_ip"]; got != "2001:db8::5" {
		t.Errorf("IPv6 local_ip = %q", got)
	}
}

func TestCheckDatapath(t *testing.T) {
	for _, k := range Kinds() {
		for _, dp := range []string{"", "system"} {
			if err := CheckDatapath(k, dp); err != nil {
				t.Errorf("CheckDatapath(%s, %q) = %v", k, dp, err)
			}
		}
		err := CheckDatapath(k, "netdev")
		if k == STT {
			if !errors.Is(err, ErrUnsupportedDatapath) {
				t.Errorf("CheckDatapath(stt, netdev) = %v; want ErrUnsupportedDatapath", err)
			}
		} else if err != nil {
			t.Errorf("CheckDatapath(%s, netdev) = %v", k, err)
		}
	}
	if err := CheckDatapath(VXLAN, "dpdk"); err == nil {
		t.Error("unknown datapath type accepted")
	}
	if err := CheckDatapath("ipsec", "system"); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestText(t *testing.T) {
	var v struct{ Encap Kind }
	if err := json.Unmarshal([]byte(`{"Encap":"Geneve"}`), &v); err != nil || v.Encap != Geneve {
		t.Fatalf("unmarshal: %v %q", err, v.Encap)
	}
	if err := json.Unmarshal([]byte(`{"Encap":"nope"}`), &v); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("unmarshal bad kind: %v", err)
	}
	b, err := json.Marshal(struct{ Encap Kind }{GRE})
	if err != nil || string(b) != `{"Encap":"gre"}` {
		t.Fatalf("marshal: %s %v", b, err)
	}
}
