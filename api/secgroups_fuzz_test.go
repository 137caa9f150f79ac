package api_test

import (
	"testing"

	"github.com/openvpc/openvpc/model"
)

// sgFuzzTargets are the security group endpoints FuzzSecurityGroups sends
// bodies to (selector modulo their number; the next choice picks the token).
var sgFuzzTargets = []fuzzTarget{
	{"POST", "/v1/security-groups"},
	{"PUT", "/v1/security-groups/a-web"},
	{"PUT", "/v1/security-groups/acme-vpc-default"},
	{"POST", "/v1/security-groups/a-web/ingress"},
	{"POST", "/v1/security-groups/a-web/egress/revoke"},
	{"POST", "/v1/security-groups/a-web/grants"},
	{"PUT", "/v1/nics/g1/security-groups"},
	{"POST", "/v1/apply"},
	{"POST", "/v1/nics"},
}

// FuzzSecurityGroups: like FuzzDecodeValidate, for security groups, over a
// shared VPC holding NICs and groups of two accounts. Besides never
// failing with a 5xx or leaving an invalid policy, globex never changes
// acme's groups and acme never changes globex's NICs or groups.
func FuzzSecurityGroups(f *testing.F) {
	seedEnv := sharedEnv(f)
	seedEnv.want(201, "POST", "/v1/security-groups/a-web/grants", seedEnv.acme, `{"account": "globex"}`, nil)
	seed := seedEnv.b.snapshot()
	fuzzAccounts(f, seed, sgFuzzTargets, []string{
		`{"name": "x", "vpc": "pub", "ingress": [{"protocol": "tcp", "ports": "22", "group": "a-web"}]}`,
		`{"ingress": [{"protocol": "icmp", "icmp_type": 8, "cidr": "10.0.0.0/8"}], "grants": []}`,
		`{"egress": []}`,
		`{"protocol": "udp", "ports": "53-54", "cidr": "10.1.0.0/16"}`,
		`{"protocol": "all", "cidr": "0.0.0.0/0"}`,
		`{"account": "globex"}`,
		`{"security_groups": ["g-app", "pub-globex-default"]}`,
		"security_groups: [{name: y, vpc: pub, egress: [{protocol: all, group: g-app}]}]",
		`{"name": "n", "subnet": "pub-a", "security_groups": ["a-web"]}`,
	}, func(p *model.Policy, owner map[string]string, account string) []any {
		var out []any
		for _, g := range p.SecurityGroups {
			if g.Account == account || (g.Account == "" && owner[g.VPC] == account) {
				out = append(out, g)
			}
		}
		for _, n := range p.NICs {
			if n.Account == account {
				out = append(out, n)
			}
		}
		return out
	})
}
