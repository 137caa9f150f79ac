package api_test

import (
	"testing"

	"github.com/openvpc/openvpc/model"
)

// rtFuzzTargets are the route table endpoints FuzzRouteTables sends bodies
// to (selector modulo their number; the next choice picks the token).
var rtFuzzTargets = []fuzzTarget{
	{"POST", "/v1/route-tables"},
	{"PUT", "/v1/route-tables/via-fw"},
	{"PUT", "/v1/route-tables/acme-vpc-main"},
	{"POST", "/v1/route-tables/via-fw/routes"},
	{"PUT", "/v1/route-tables/via-fw/routes"},
	{"PUT", "/v1/subnets/acme-web/route-table"},
	{"PUT", "/v1/subnets/globex-web"},
	{"PUT", "/v1/nics/fw1/source-dest-check"},
	{"PUT", "/v1/nics/gweb1"},
	{"POST", "/v1/apply"},
}

// FuzzRouteTables: like FuzzDecodeValidate, for route tables: never a
// 5xx, an error body or a commit on failure, an invalid policy left
// behind, and neither account changes the other's tables, subnets or
// NICs.
func FuzzRouteTables(f *testing.F) {
	seedEnv := routeEnv(f)
	seedEnv.want(201, "POST", "/v1/route-tables", seedEnv.acme, `{"name": "via-fw", "vpc": "acme-vpc", "routes": [{"destination": "0.0.0.0/0", "nic": "fw1"}]}`, nil)
	seed := seedEnv.b.snapshot()
	fuzzAccounts(f, seed, rtFuzzTargets, []string{
		`{"name": "x", "vpc": "acme-vpc", "routes": [{"destination": "10.8.0.0/16", "nic": "fw1"}]}`,
		`{"routes": [{"destination": "0.0.0.0/0", "blackhole": true}], "route_states": [], "subnets": ["x"]}`,
		`{"routes": []}`,
		`{"destination": "10.6.0.0/16", "nic": "web1"}`,
		`{"destination": "0.0.0.0/0", "blackhole": true}`,
		`{"route_table": "via-fw"}`,
		`{"route_table": "globex-vpc-main"}`,
		`{"source_dest_check": false}`,
		`{"source_dest_check": true, "host": "h2"}`,
		"route_tables: [{name: y, vpc: acme-vpc, routes: [{destination: 10.7.0.0/16, nic: gweb1}]}]",
	}, func(p *model.Policy, owner map[string]string, account string) []any {
		var out []any
		for _, t := range p.RouteTables {
			if owner[t.VPC] == account {
				out = append(out, t)
			}
		}
		for _, s := range p.Subnets {
			if owner[s.VPC] == account {
				out = append(out, s)
			}
		}
		return out
	})
}
