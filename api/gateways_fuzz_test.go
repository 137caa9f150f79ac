package api_test

import (
	"testing"

	"github.com/openvpc/openvpc/model"
)

// gwFuzzTargets are the internet gateway, pool and public IP endpoints
// FuzzGateways sends bodies to.
var gwFuzzTargets = []fuzzTarget{
	{"POST", "/v1/internet-gateways"},
	{"PUT", "/v1/internet-gateways/igw1"},
	{"POST", "/v1/internet-gateways/igw1/attach"},
	{"POST", "/v1/internet-gateways/gigw/attach"},
	{"POST", "/v1/public-ips"},
	{"PUT", "/v1/public-ips/web-ip"},
	{"POST", "/v1/public-ips/web-ip/associate"},
	{"POST", "/v1/public-ips/g-ip/associate"},
	{"POST", "/v1/public-ip-pools"},
	{"PUT", "/v1/public-ip-pools/pub"},
	{"POST", "/v1/route-tables/acme-vpc-main/routes"},
	{"PUT", "/v1/hosts/h1"},
	{"POST", "/v1/apply"},
}

// FuzzGateways: like FuzzDecodeValidate, for internet gateways, public IP
// pools and public IPs: never a 5xx, an error body or a commit on failure,
// an invalid policy left behind, and neither account changes the other's
// gateways, public IPs or route tables.
func FuzzGateways(f *testing.F) {
	e := gatewayEnv(f)
	e.want(201, "POST", "/v1/internet-gateways", e.acme, `{"name": "igw1", "vpc": "acme-vpc"}`, nil)
	e.want(201, "POST", "/v1/internet-gateways", e.globex, `{"name": "gigw"}`, nil)
	e.want(201, "POST", "/v1/public-ips", e.acme, `{"name": "web-ip", "pool": "pub", "nic": "web1"}`, nil)
	e.want(201, "POST", "/v1/public-ips", e.globex, `{"name": "g-ip", "pool": "pub"}`, nil)
	e.want(201, "POST", "/v1/route-tables/acme-vpc-main/routes", e.acme, `{"destination": "0.0.0.0/0", "gateway": "igw1"}`, nil)
	seed := e.b.snapshot()
	fuzzAccounts(f, seed, gwFuzzTargets, []string{
		`{"name": "igw2", "vpc": "acme-two"}`,
		`{"vpc": "acme-two", "state": "attached"}`,
		`{"vpc": "globex-vpc"}`,
		`{"vpc": "acme-vpc"}`,
		`{"pool": "pub", "address": "203.0.113.6"}`,
		`{"nic": "gweb1", "private_ip": "10.0.1.10", "reachable": true}`,
		`{"nic": "web2", "allow_reassociation": true}`,
		`{"nic": "web1"}`,
		`{"name": "p2", "cidr": "203.0.113.0/24"}`,
		`{"cidr": "203.0.113.0/30"}`,
		`{"destination": "10.7.0.0/16", "gateway": "gigw"}`,
		`{"underlay_ip": "172.31.0.11", "uplink": {"interface": "eth1", "ip": "198.51.100.2/24", "next_hop": "198.51.100.2"}}`,
		"internet_gateways: [{name: x, vpc: globex-vpc}]\npublic_ips: [{name: y, pool: pub, nic: gweb1}]\n",
	}, func(p *model.Policy, owner map[string]string, account string) []any {
		var out []any
		for _, g := range p.InternetGateways {
			if g.Account == account {
				out = append(out, g)
			}
		}
		for _, x := range p.PublicIPs {
			if x.Account == account {
				out = append(out, x)
			}
		}
		for _, t := range p.RouteTables {
			if owner[t.VPC] == account {
				out = append(out, t)
			}
		}
		return out
	})
}
