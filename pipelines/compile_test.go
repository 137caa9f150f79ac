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

func smallSnapshot(t testing.TB) *Snapshot {
	return &Snapshot{
		Net: loadNet(t, "testdata/small.yaml"),
		Hosts: map[string]HostState{
			"h1": {Ports: map[string]uint32{"web1": 3}, TunnelPort: 1},
			"h2": {Ports: map[string]uint32{"db1": 5, "gweb1": 6, "fw1": 7, "iapp1": 8}, TunnelPort: 1},
			"h3": {TunnelPort: 1, UplinkPort: 2},
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
	snap.Hosts["h1"] = HostState{TunnelPort: 1}
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
