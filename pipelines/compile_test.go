package pipelines

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/model"
	"github.com/openvpc/openvpc/ofrules"
)

var update = flag.Bool("update", false, "rewrite golden files")

func loadNet(t testing.TB, file string) *model.Net {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p, err := model.ParseYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	n, err := model.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// vxlan1: VXLAN on port 1.
var vxlan1 = map[string]uint32{"vxlan": 1}

// smallSnapshot: small.yaml with tunnel ports vxlan 1, geneve 9 (h1 has only
// VXLAN) and h3's uplink on port 2.
func smallSnapshot(t testing.TB) *Snapshot {
	n := loadNet(t, "testdata/small.yaml")
	return &Snapshot{
		Net: n,
		Hosts: map[string]HostState{
			"h1": {Ports: map[string]uint32{"web1": 3}, TunnelPorts: OfflinePorts(n.Hosts["h1"])},
			"h2": {Ports: map[string]uint32{"db1": 5, "gweb1": 6, "fw1": 7, "iapp1": 8}, TunnelPorts: OfflinePorts(n.Hosts["h2"])},
			"h3": {TunnelPorts: OfflinePorts(n.Hosts["h3"]), UplinkPort: 2},
		},
	}
}

func dump(fs *ofrules.FlowSet) string {
	var b strings.Builder
	for _, f := range fs.Flows() {
		b.WriteString(f.Text(TableName))
		b.WriteString("\n")
	}
	return b.String()
}

// TestGolden compares each host's compiled flows, stage by stage, with
// golden ovs-ofctl-style text (go test ./pipelines -update rewrites them).
func TestGolden(t *testing.T) {
	snap := smallSnapshot(t)
	for _, host := range []string{"h1", "h2", "h3"} {
		fs, err := Compile(snap, host)
		if err != nil {
			t.Fatal(err)
		}
		byTable := map[string]*strings.Builder{}
		for _, f := range fs.Flows() {
			name := TableName(f.Table)
			if byTable[name] == nil {
				byTable[name] = &strings.Builder{}
			}
			byTable[name].WriteString(f.Text(TableName) + "\n")
		}
		for name, text := range byTable {
			path := filepath.Join("testdata", "golden", host, name+".txt")
			if *update {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, []byte(text.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%s: %v (run with -update)", path, err)
			}
			if string(want) != text.String() {
				t.Errorf("%s/%s differs:\n--- got\n%s--- want\n%s", host, name, text, want)
			}
		}
		entries, _ := os.ReadDir(filepath.Join("testdata", "golden", host))
		if !*update && len(entries) != len(byTable) {
			t.Errorf("%s: %d golden tables, compiled %d", host, len(entries), len(byTable))
		}
	}
}

func TestDeterministic(t *testing.T) {
	a, err := Compile(smallSnapshot(t), "h2")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		b, _ := Compile(smallSnapshot(t), "h2")
		if dump(a) != dump(b) {
			t.Fatal("Compile is not deterministic")
		}
	}
}

func TestNoTTLDecrementAndNoFlooding(t *testing.T) {
	for _, host := range []string{"h1", "h2"} {
		fs, _ := Compile(smallSnapshot(t), host)
		for _, f := range fs.Flows() {
			txt := f.Text(TableName)
			for _, bad := range []string{"dec_ttl", "NORMAL", "FLOOD", "ALL"} {
				if strings.Contains(txt, "actions="+bad) || strings.Contains(txt, ","+bad) {
					t.Errorf("%s: flow uses %s: %s", host, bad, txt)
				}
			}
		}
	}
}

// A host gets flows only for the VPCs of its own NICs: h1 has no globex NIC,
// so nothing of globex's (VNI 200) is on it.
func TestPerHostScope(t *testing.T) {
	fs, _ := Compile(smallSnapshot(t), "h1")
	for _, f := range fs.Flows() {
		if m, ok := f.Match.Get(ofrules.Metadata); ok && m.Value == 200 {
			t.Errorf("h1 has a globex flow: %s", f.Text(TableName))
		}
		if m, ok := f.Match.Get(ofrules.TunID); ok && m.Value == 200 {
			t.Errorf("h1 accepts globex's tunnel key: %s", f.Text(TableName))
		}
	}
	fs2, _ := Compile(smallSnapshot(t), "h2")
	if !strings.Contains(dump(fs2), "tun_id=0xc8") {
		t.Error("h2 does not accept globex's tunnel key")
	}
}

// An unbound NIC gets no port flows; once bound it does, and the peer host
// starts sending to it.
func TestBindingFollows(t *testing.T) {
	snap := smallSnapshot(t)
	snap.Hosts["h1"] = HostState{TunnelPorts: vxlan1}
	fs, _ := Compile(snap, "h1")
	if strings.Contains(dump(fs), "in_port=3") {
		t.Error("unbound NIC has classifier flows")
	}
	snap = smallSnapshot(t)
	fs, _ = Compile(snap, "h1")
	if !strings.Contains(dump(fs), "in_port=3") {
		t.Error("bound NIC has no classifier flow")
	}
}

func TestUnknownHost(t *testing.T) {
	if _, err := Compile(smallSnapshot(t), "nope"); err == nil {
		t.Fatal("want error for unknown host")
	}
}

func TestRegistersDoNotOverlap(t *testing.T) {
	type bit struct{ reg, b int }
	owner := map[bit]string{}
	for _, r := range Registers {
		if r.Ofs+r.Bits > 32 || r.Bits <= 0 {
			t.Errorf("%s: bad range", r.Name)
		}
		for b := r.Ofs; b < r.Ofs+r.Bits; b++ {
			k := bit{r.Reg, b}
			if o, ok := owner[k]; ok {
				t.Errorf("%s overlaps %s at reg%d bit %d", r.Name, o, r.Reg, b)
			}
			owner[k] = r.Name
		}
	}
}

func TestTableNames(t *testing.T) {
	seen := map[string]bool{}
	for n, name := range TableNames() {
		if seen[name] {
			t.Errorf("duplicate table name %s", name)
		}
		seen[name] = true
		got, err := TableByName(name)
		if err != nil || got != n {
			t.Errorf("TableByName(%s) = %d, %v", name, got, err)
		}
	}
	if _, err := TableByName("Nope"); err == nil {
		t.Error("unknown table name accepted")
	}
}

// Every flow the compiler makes is one OVS accepts: it encodes without
// error (a single bad flow would fail a host's whole bundle).
func TestCompiledFlowsEncode(t *testing.T) {
	snap := smallSnapshot(t)
	for _, h := range []string{"h1", "h2"} {
		fs, err := Compile(snap, h)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs.Flows() {
			if _, err := ofrules.EncodeFlow(f); err != nil {
				t.Errorf("%s: %s: %v", h, f.Text(TableName), err)
			}
		}
	}
}

// A NIC bound on two hosts at once (a live migration) lives where its
// binding is newest: that host gets its port flows, the other isolates its
// port (no classifier or output flow), and peers send to the newest.
func TestMigrationNewestBindingWins(t *testing.T) {
	snap := smallSnapshot(t)
	h1, h2 := snap.Hosts["h1"], snap.Hosts["h2"]
	h1.Since = map[string]uint64{"web1": 1}
	h2.Ports = map[string]uint32{"db1": 5, "gweb1": 6, "fw1": 7, "iapp1": 8, "web1": 11}
	h2.Since = map[string]uint64{"db1": 1, "gweb1": 1, "fw1": 1, "iapp1": 1, "web1": 2}
	snap.Hosts["h1"], snap.Hosts["h2"] = h1, h2
	loc, _ := snap.Locate(snap.Net.NICs["web1"])
	if loc.Host != "h2" || loc.OFPort != 11 {
		t.Fatalf("web1 located at %+v, want h2 port 11", loc)
	}
	old, err := Compile(snap, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if d := dump(old); strings.Contains(d, "in_port=3 ") || strings.Contains(d, "in_port=3,") || strings.Contains(d, "output:3") {
		t.Errorf("the old port of web1 on h1 still has flows:\n%s", d)
	}
	now, err := Compile(snap, "h2")
	if err != nil {
		t.Fatal(err)
	}
	if d := dump(now); !strings.Contains(d, "in_port=11") || !strings.Contains(d, "output:11") {
		t.Errorf("web1 on h2 has no port flows")
	}
	// The gateway now tunnels web1's inbound traffic to h2.
	gw, err := Compile(snap, "h3")
	if err != nil {
		t.Fatal(err)
	}
	if d := dump(gw); !strings.Contains(d, "nw_dst=10.0.1.10,metadata=0x64,reg0=0x0/0x1 actions=set_field:02:00:00:00:01:0a->eth_dst,set_field:0x2c2273->reg2,set_field:172.31.0.12->tun_dst") {
		t.Errorf("h3 does not send web1's traffic to h2:\n%s", d)
	}
	// The older binding alone again (the new port went away): back on h1.
	h2.Since["web1"] = 0
	snap = &Snapshot{Net: snap.Net, Hosts: map[string]HostState{"h1": h1, "h2": h2, "h3": snap.Hosts["h3"]}}
	h1.Since["web1"] = 3
	if loc, _ := snap.Locate(snap.Net.NICs["web1"]); loc.Host != "h1" {
		t.Fatalf("newer binding on h1: located at %+v", loc)
	}
}
