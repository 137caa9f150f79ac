package model

import (
	"strings"
	"testing"
)

const good = `
accounts: [{name: acme}, {name: globex}]
hosts:
  - {name: h1, underlay_ip: 172.31.0.11}
  - {name: h2, underlay_ip: 172.31.0.12}
vpcs:
  - {name: acme-vpc, account: acme, cidr: 10.0.0.0/16}
  - {name: globex-vpc, account: globex, cidr: 10.0.0.0/16, vni: 42}
subnets:
  - {name: acme-web, vpc: acme-vpc, cidr: 10.0.1.0/24}
  - {name: acme-db, vpc: acme-vpc, cidr: 10.0.2.0/24}
  - {name: globex-web, vpc: globex-vpc, cidr: 10.0.1.0/24}
nics:
  - {name: web1, subnet: acme-web, host: h1, ip: 10.0.1.10, secondary_ips: [10.0.1.20]}
  - {name: db1, subnet: acme-db, host: h2, ip: 10.0.2.10, mac: "02:00:00:00:00:01"}
  - {name: gweb1, subnet: globex-web, host: h1, ip: 10.0.1.10}
`

func mustParse(t *testing.T, s string) *Policy {
	t.Helper()
	p, err := ParseYAML([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildGood(t *testing.T) {
	n, err := Build(mustParse(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if n.VPCs["globex-vpc"].VNI != 42 {
		t.Errorf("explicit VNI not kept: %d", n.VPCs["globex-vpc"].VNI)
	}
	a := n.VPCs["acme-vpc"].VNI
	if a == 0 || a == 42 || a > 0xffffff {
		t.Errorf("bad assigned VNI %d", a)
	}
	if got := n.NICs["db1"].MAC.String(); got != "02:00:00:00:00:01" {
		t.Errorf("explicit MAC: %s", got)
	}
	w := n.NICs["web1"]
	if w.MAC == nil || w.MAC[0] != 0x02 {
		t.Errorf("assigned MAC %v is not locally administered unicast", w.MAC)
	}
	if w.PortKey == 0 || w.PortKey == n.NICs["gweb1"].PortKey {
		t.Errorf("port keys not unique: %d %d", w.PortKey, n.NICs["gweb1"].PortKey)
	}
	if g := n.Subnets["acme-db"].Gateway.String(); g != "10.0.2.1" {
		t.Errorf("gateway %s", g)
	}
	if len(w.IPs()) != 2 {
		t.Errorf("IPs %v", w.IPs())
	}
	if n.Hosts["h1"].DatapathID == n.Hosts["h2"].DatapathID {
		t.Error("datapath ids collide")
	}
	// Deterministic: building twice gives the same identifiers.
	n2, _ := Build(mustParse(t, good))
	if n2.VPCs["acme-vpc"].VNI != a || n2.NICs["web1"].MAC.String() != w.MAC.String() || n2.NICs["web1"].PortKey != w.PortKey {
		t.Error("Build is not deterministic")
	}
}

func TestBuildErrors(t *testing.T) {
	cases := []struct {
		name, edit, want string
	}{
		{"bad vpc cidr", `{name: acme-vpc, account: acme, cidr: 10.0.0.0/16}|{name: acme-vpc, account: acme, cidr: 10.0.0/16}`, `vpc "acme-vpc": cidr: "10.0.0/16" is not an IPv4 CIDR`},
		{"host bits", `{name: acme-vpc, account: acme, cidr: 10.0.0.0/16}|{name: acme-vpc, account: acme, cidr: 10.0.0.1/16}`, `has host bits set`},
		{"subnet outside vpc", `{name: acme-db, vpc: acme-vpc, cidr: 10.0.2.0/24}|{name: acme-db, vpc: acme-vpc, cidr: 10.1.2.0/24}`, `subnet "acme-db": cidr: 10.1.2.0/24 is not inside vpc "acme-vpc"`},
		{"subnet overlap", `{name: acme-db, vpc: acme-vpc, cidr: 10.0.2.0/24}|{name: acme-db, vpc: acme-vpc, cidr: 10.0.0.0/22}`, `subnet "acme-db": cidr: 10.0.0.0/22 overlaps subnet "acme-web"`},
		{"ip outside subnet", `ip: 10.0.2.10, mac`, `nic "db1": ip: 10.0.3.10 is outside subnet "acme-db"`},
		{"reserved network", `ip: 10.0.1.10, secondary`, `nic "web1": ip: 10.0.1.0 is reserved`},
		{"reserved router", `{name: gweb1, subnet: globex-web, host: h1, ip: 10.0.1.10}|{name: gweb1, subnet: globex-web, host: h1, ip: 10.0.1.1}`, `nic "gweb1": ip: 10.0.1.1 is reserved`},
		{"reserved dns", `{name: gweb1, subnet: globex-web, host: h1, ip: 10.0.1.10}|{name: gweb1, subnet: globex-web, host: h1, ip: 10.0.1.2}`, `ip: 10.0.1.2 is reserved`},
		{"reserved 3", `{name: gweb1, subnet: globex-web, host: h1, ip: 10.0.1.10}|{name: gweb1, subnet: globex-web, host: h1, ip: 10.0.1.3}`, `ip: 10.0.1.3 is reserved`},
		{"reserved broadcast", `{name: gweb1, subnet: globex-web, host: h1, ip: 10.0.1.10}|{name: gweb1, subnet: globex-web, host: h1, ip: 10.0.1.255}`, `ip: 10.0.1.255 is reserved`},
		{"duplicate ip in vpc", `secondary_ips: [10.0.1.20]|secondary_ips: [10.0.1.10]`, `nic "web1": secondary_ips[0]: 10.0.1.10 is already used by nic "web1"`},
		{"duplicate mac in vpc", `{name: web1, subnet: acme-web, host: h1, ip: 10.0.1.10,|{name: web1, subnet: acme-web, host: h1, mac: "02:00:00:00:00:01", ip: 10.0.1.10,`, `mac: 02:00:00:00:00:01 is already used by nic`},
		{"multicast mac", `mac: "02:00:00:00:00:01"|mac: "01:00:00:00:00:01"`, `nic "db1": mac: 01:00:00:00:00:01 is not a unicast address`},
		{"bad mac", `mac: "02:00:00:00:00:01"|mac: "zz"`, `nic "db1": mac: "zz" is not a MAC address`},
		{"dangling subnet", `{name: db1, subnet: acme-db,|{name: db1, subnet: nosuch,`, `nic "db1": subnet: subnet "nosuch" does not exist`},
		{"dangling vpc", `{name: acme-db, vpc: acme-vpc,|{name: acme-db, vpc: nosuch,`, `subnet "acme-db": vpc: vpc "nosuch" does not exist`},
		{"dangling account", `{name: globex-vpc, account: globex,|{name: globex-vpc, account: nosuch,`, `vpc "globex-vpc": account: account "nosuch" does not exist`},
		{"dangling host", `{name: db1, subnet: acme-db, host: h2,|{name: db1, subnet: acme-db, host: h9,`, `nic "db1": host: host "h9" does not exist`},
		{"duplicate name", `{name: gweb1,|{name: web1,`, `nic "web1": name: is a duplicate`},
		{"duplicate vni", `{name: acme-vpc, account: acme, cidr: 10.0.0.0/16}|{name: acme-vpc, account: acme, cidr: 10.0.0.0/16, vni: 42}`, `vni: 42 is already used`},
		{"vni range", `vni: 42|vni: 16777216`, `vni: 16777216 is out of range`},
		{"bad underlay", `underlay_ip: 172.31.0.12|underlay_ip: 300.1.1.1`, `host "h2": underlay_ip: "300.1.1.1" is not an IPv4 address`},
		{"duplicate underlay", `underlay_ip: 172.31.0.12|underlay_ip: 172.31.0.11`, `host "h2": underlay_ip: 172.31.0.11 is already used by host "h1"`},
		{"bad encap", `underlay_ip: 172.31.0.12}|underlay_ip: 172.31.0.12, encap: carrier-pigeon}`, `host "h2": encap: "carrier-pigeon" is not a tunnel kind`},
		{"bad name", `{name: acme}|{name: "ac me"}`, `account "ac me": name: must be`},
		{"vpc too big", `cidr: 10.0.0.0/16, vni|cidr: 10.0.0.0/8, vni`, `prefix length must be between /16 and /28`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parts := strings.SplitN(tc.edit, "|", 2)
			src := good
			switch tc.name {
			case "ip outside subnet":
				src = strings.Replace(src, "ip: 10.0.2.10", "ip: 10.0.3.10", 1)
			case "reserved network":
				src = strings.Replace(src, "ip: 10.0.1.10, secondary", "ip: 10.0.1.0, secondary", 1)
			default:
				if !strings.Contains(src, parts[0]) {
					t.Fatalf("edit %q does not apply", parts[0])
				}
				src = strings.Replace(src, parts[0], parts[1], 1)
			}
			_, err := Build(mustParse(t, src))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
			if len(FieldErrors(err)) == 0 {
				t.Fatalf("error %v has no FieldError", err)
			}
		})
	}
}

func TestParseUnknownField(t *testing.T) {
	_, err := ParseYAML([]byte("vpcs:\n  - name: x\n    cidrr: 10.0.0.0/16\n"))
	if err == nil || !strings.Contains(err.Error(), "cidrr") {
		t.Fatalf("want unknown field error naming cidrr, got %v", err)
	}
}
