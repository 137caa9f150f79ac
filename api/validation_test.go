package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openvpc/openvpc/api"
)

// TestModelValidationErrors: every validation error of model surfaces as a
// 400 naming the field, and nothing is written.
func TestModelValidationErrors(t *testing.T) {
	cases := []struct {
		name, token, method, path, body, field, msg string
	}{
		{"account name", "admin", "POST", "/v1/accounts", `{"name": "ac me"}`, "name", `account "ac me": name: must be`},
		{"account name required", "admin", "POST", "/v1/accounts", `{"name": ""}`, "name", `account: name: is required`},
		{"vpc name", "acme", "POST", "/v1/vpcs", `{"name": "-x", "cidr": "10.1.0.0/16"}`, "name", "must be 1-63 letters"},
		{"vpc cidr", "acme", "POST", "/v1/vpcs", `{"name": "x", "cidr": "10.1.0/16"}`, "cidr", `vpc "x": cidr: "10.1.0/16" is not an IPv4 CIDR`},
		{"vpc cidr required", "acme", "POST", "/v1/vpcs", `{"name": "x"}`, "cidr", `cidr: is required`},
		{"vpc host bits", "acme", "POST", "/v1/vpcs", `{"name": "x", "cidr": "10.1.0.1/16"}`, "cidr", "has host bits set"},
		{"vpc too big", "acme", "POST", "/v1/vpcs", `{"name": "x", "cidr": "10.0.0.0/8"}`, "cidr", "between /16 and /28"},
		{"vpc ipv6", "acme", "POST", "/v1/vpcs", `{"name": "x", "cidr": "fd00::/64"}`, "cidr", "is not an IPv4 CIDR"},
		{"vpc account missing", "admin", "POST", "/v1/vpcs", `{"name": "x", "account": "nosuch", "cidr": "10.1.0.0/16"}`, "account", `account "nosuch" does not exist`},
		{"vpc account required", "admin", "POST", "/v1/vpcs", `{"name": "x", "cidr": "10.1.0.0/16"}`, "account", "account: is required"},
		{"vpc vni range", "admin", "POST", "/v1/vpcs", `{"name": "x", "account": "acme", "cidr": "10.1.0.0/16", "vni": 16777216}`, "vni", "out of range"},
		{"subnet outside vpc", "acme", "POST", "/v1/subnets", `{"name": "s", "vpc": "acme-vpc", "cidr": "10.1.0.0/24"}`, "cidr", `is not inside vpc "acme-vpc"`},
		{"subnet overlap", "acme", "POST", "/v1/subnets", `{"name": "s", "vpc": "acme-vpc", "cidr": "10.0.0.0/22"}`, "cidr", `overlaps subnet "acme-web"`},
		{"subnet too small", "acme", "POST", "/v1/subnets", `{"name": "s", "vpc": "acme-vpc", "cidr": "10.0.9.0/29"}`, "cidr", "/28 or shorter"},
		{"subnet vpc required", "acme", "POST", "/v1/subnets", `{"name": "s", "cidr": "10.0.9.0/24"}`, "vpc", "vpc: is required"},
		{"nic ip outside", "acme", "POST", "/v1/nics", `{"name": "n", "subnet": "acme-web", "ip": "10.0.2.5"}`, "ip", `nic "n": ip: 10.0.2.5 is outside subnet "acme-web"`},
		{"nic ip reserved", "acme", "POST", "/v1/nics", `{"name": "n", "subnet": "acme-web", "ip": "10.0.1.1"}`, "ip", "is reserved"},
		{"nic ip broadcast", "acme", "POST", "/v1/nics", `{"name": "n", "subnet": "acme-web", "ip": "10.0.1.255"}`, "ip", "is reserved"},
		{"nic ip taken", "acme", "POST", "/v1/nics", `{"name": "n", "subnet": "acme-web", "ip": "10.0.1.10"}`, "ip", `10.0.1.10 is already used by nic "web1"`},
		{"nic ip bad", "acme", "POST", "/v1/nics", `{"name": "n", "subnet": "acme-web", "ip": "10.0.1.300"}`, "ip", "is not an IPv4 address"},
		{"nic secondary", "acme", "POST", "/v1/nics", `{"name": "n", "subnet": "acme-web", "secondary_ips": ["10.0.1.40", "x"]}`, "secondary_ips[1]", `"x" is not an IPv4 address`},
		{"nic mac bad", "acme", "POST", "/v1/nics", `{"name": "n", "subnet": "acme-web", "mac": "zz"}`, "mac", `"zz" is not a MAC address`},
		{"nic mac multicast", "acme", "POST", "/v1/nics", `{"name": "n", "subnet": "acme-web", "mac": "01:00:00:00:00:01"}`, "mac", "is not a unicast address"},
		{"nic mac router", "acme", "POST", "/v1/nics", `{"name": "n", "subnet": "acme-web", "mac": "0a:76:70:00:00:01"}`, "mac", "kept for virtual routers"},
		{"nic subnet missing", "acme", "POST", "/v1/nics", `{"name": "n", "subnet": "nosuch"}`, "subnet", `subnet "nosuch" does not exist`},
		{"nic subnet required", "acme", "POST", "/v1/nics", `{"name": "n"}`, "subnet", "subnet: is required"},
		{"nic host missing", "acme", "POST", "/v1/nics", `{"name": "n", "subnet": "acme-web", "host": "h9"}`, "host", `host "h9" does not exist`},
		{"nic port key range", "admin", "POST", "/v1/nics", `{"name": "n", "subnet": "acme-web", "port_key": 16777216}`, "port_key", "out of range"},
		{"host underlay", "admin", "POST", "/v1/hosts", `{"name": "h3", "underlay_ip": "300.1.1.1"}`, "underlay_ip", "is not an IPv4 address"},
		{"host underlay required", "admin", "POST", "/v1/hosts", `{"name": "h3"}`, "underlay_ip", "is required"},
		{"host underlay taken", "admin", "POST", "/v1/hosts", `{"name": "h3", "underlay_ip": "172.31.0.11"}`, "underlay_ip", `already used by host "h1"`},
		{"host encap", "admin", "POST", "/v1/hosts", `{"name": "h3", "underlay_ip": "172.31.0.13", "encap": "pigeon"}`, "encap", `"pigeon" is not a tunnel kind`},
		{"host encaps", "admin", "POST", "/v1/hosts", `{"name": "h3", "underlay_ip": "172.31.0.13", "encaps": ["geneve", "pigeon"]}`, "encaps[1]", `host "h3": encaps[1]: "pigeon" is not a tunnel kind`},
		{"host encaps twice", "admin", "POST", "/v1/hosts", `{"name": "h3", "underlay_ip": "172.31.0.13", "encaps": ["gre", "GRE"]}`, "encaps[1]", "gre is listed twice"},
		{"host encap and encaps", "admin", "POST", "/v1/hosts", `{"name": "h3", "underlay_ip": "172.31.0.13", "encap": "gre", "encaps": ["gre"]}`, "encap", "not both"},
		{"host underlay mtu", "admin", "POST", "/v1/hosts", `{"name": "h3", "underlay_ip": "172.31.0.13", "underlay_mtu": 100}`, "underlay_mtu", "is not an MTU between 576 and 65535"},
		{"host underlay mtu update", "admin", "PUT", "/v1/hosts/h1", `{"underlay_ip": "172.31.0.11", "underlay_mtu": 70000}`, "underlay_mtu", "is not an MTU"},
		{"settings encaps", "admin", "PUT", "/v1/settings", `{"encaps": ["geneve", "ipsec"]}`, "encaps[1]", `settings: encaps[1]: "ipsec" is not a tunnel kind`},
		{"settings encaps twice", "admin", "PUT", "/v1/settings", `{"encaps": ["geneve", "geneve"]}`, "encaps[1]", "geneve is listed twice"},
		{"apply settings", "admin", "POST", "/v1/apply", `{"settings": {"encaps": ["pigeon"]}}`, "settings.encaps[0]", "is not a tunnel kind"},
		{"host datapath", "admin", "POST", "/v1/hosts", `{"name": "h3", "underlay_ip": "172.31.0.13", "datapath_type": "fast"}`, "datapath_type", "must be netdev or system"},
		{"update ip outside", "acme", "PUT", "/v1/nics/web1", `{"ip": "10.9.9.9"}`, "ip", "is outside subnet"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			token := map[string]string{"admin": e.admin, "acme": e.acme}[tc.token]
			snap := e.b.snapshot()
			e.wantErr(400, api.CodeInvalidArgument, tc.field, tc.msg, tc.method, tc.path, token, tc.body)
			if e.commits() != 0 || fmt.Sprint(e.b.snapshot()) != fmt.Sprint(snap) {
				t.Fatal("an invalid request changed the backend")
			}
		})
	}
}

func TestSubnetFull(t *testing.T) {
	e := newEnv(t)
	e.want(201, "POST", "/v1/subnets", e.acme, `{"name": "tiny", "vpc": "acme-vpc", "cidr": "10.0.9.0/28"}`, nil)
	for i := 0; i < 11; i++ {
		e.want(201, "POST", "/v1/nics", e.acme, fmt.Sprintf(`{"name": "t%d", "subnet": "tiny"}`, i), nil)
	}
	e.wantErr(400, api.CodeInvalidArgument, "ip", `subnet "tiny" (10.0.9.0/28) has no free address`, "POST", "/v1/nics", e.acme, `{"name": "t11", "subnet": "tiny"}`)
	// Another account learns nothing about it: "tiny" does not exist for globex.
	e.wantErr(400, api.CodeInvalidArgument, "subnet", `subnet "tiny" does not exist`, "POST", "/v1/nics", e.globex, `{"name": "g9", "subnet": "tiny"}`)
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, path, body, field, msg string
	}{
		{"malformed", "/v1/vpcs", `{"name": "x",`, "", "malformed JSON"},
		{"malformed 2", "/v1/vpcs", `{"name" "x"}`, "", "malformed JSON at byte"},
		{"unknown field", "/v1/vpcs", `{"name": "x", "cidrr": "10.1.0.0/16"}`, "cidrr", `unknown field "cidrr"`},
		{"wrong type", "/v1/vpcs", `{"name": 5, "cidr": "10.1.0.0/16"}`, "name", "name: want a string, got number"},
		{"wrong type uint", "/v1/vpcs", `{"name": "x", "vni": "5"}`, "vni", "want an integer from 0 to 4294967295"},
		{"out of range", "/v1/vpcs", `{"name": "x", "vni": 99999999999}`, "vni", "got number 99999999999"},
		{"negative", "/v1/nics", `{"name": "x", "subnet": "acme-web", "port_key": -1}`, "port_key", "got number -1"},
		{"fraction", "/v1/nics", `{"name": "x", "subnet": "acme-web", "port_key": 1.5}`, "port_key", "got number 1.5"},
		{"array elem", "/v1/nics", `{"name": "x", "subnet": "acme-web", "secondary_ips": [1]}`, "secondary_ips", "want a string"},
		{"array for string", "/v1/nics", `{"name": ["x"]}`, "name", "want a string, got array"},
		{"not an object", "/v1/vpcs", `["x"]`, "", "want an object, got a JSON array"},
		{"trailing", "/v1/vpcs", `{"name": "x", "cidr": "10.1.0.0/16"} {}`, "", "unexpected data after the JSON object"},
		{"trailing garbage", "/v1/vpcs", `{"name": "x", "cidr": "10.1.0.0/16"}x`, "", "unexpected data"},
		{"empty", "/v1/vpcs", ``, "", "request body is empty"},
		{"whitespace", "/v1/vpcs", "  \n", "", "request body is empty"},
		{"yaml to json endpoint", "/v1/vpcs", "name: x\ncidr: 10.1.0.0/16\n", "", "malformed JSON"},
		{"apply wrong type", "/v1/apply", `{"vpcs": {"name": "x"}}`, "vpcs", "want an array of objects"},
		{"apply yaml wrong type", "/v1/apply", "vpcs:\n  - name: x\n    vni: abc\n", "", "cannot unmarshal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.wantErr(400, api.CodeInvalidArgument, tc.field, tc.msg, "POST", tc.path, e.acme, tc.body)
			if e.commits() != 0 {
				t.Fatal("committed")
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnvOpts(t, 4096)
	big := `{"name": "x", "cidr": "` + strings.Repeat("1", 5000) + `"}`
	for _, path := range []string{"/v1/vpcs", "/v1/apply", "/v1/nics/web1/secondary-ips", "/v1/tokens"} {
		tok := e.acme
		if path == "/v1/tokens" {
			tok = e.admin
		}
		e.wantErr(http.StatusRequestEntityTooLarge, api.CodeInvalidArgument, "", "larger than 4096 bytes", "POST", path, tok, big)
		// Without a Content-Length (chunked), the limit holds while reading.
		r := httptest.NewRequest("POST", path, strings.NewReader(big))
		r.ContentLength = -1
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("POST %s chunked: %d %s", path, w.Code, w.Body)
		}
	}
	e.want(201, "POST", "/v1/vpcs", e.acme, `{"name": "x", "cidr": "10.1.0.0/16"}`, nil)
	// The default is 1 MiB.
	d := newEnv(t)
	d.wantErr(413, api.CodeInvalidArgument, "", "larger than 1048576 bytes", "POST", "/v1/apply", d.acme, strings.Repeat("#", 1<<20+1))
}
