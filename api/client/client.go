// Package client is a small Go client of OpenVPC's tenant API (package
// api), for the CLI. Every API error comes back as an *Error carrying the
// HTTP status and the API's code, message and field.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/openvpc/openvpc/model"
)

// Client talks to one API server. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// maxResponse bounds how much of a response the client reads.
const maxResponse = 256 << 20

// New returns a client of server, written "https://host:port",
// "http://host:port" or "unix:/path/to/socket", authenticating with token
// (may be empty for public paths). tlsCA optionally names a PEM file of CA
// certificates to trust instead of the system's (https only).
func New(server, token, tlsCA string) (*Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 60 * time.Second
	var base *url.URL
	if path, ok := strings.CutPrefix(server, "unix:"); ok {
		if path == "" {
			return nil, fmt.Errorf("client: server %q: empty socket path", server)
		}
		if tlsCA != "" {
			return nil, fmt.Errorf("client: a TLS CA makes no sense for unix socket %s", path)
		}
		tr.Proxy = nil
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		base = &url.URL{Scheme: "http", Host: "openvpc"}
	} else {
		u, err := url.Parse(server)
		if err != nil {
			return nil, fmt.Errorf("client: server %q: %w", server, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("client: server %q: want https://host:port, http://host:port or unix:/path", server)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("client: server %q: must not have user info, a query or a fragment", server)
		}
		if tlsCA != "" {
			if u.Scheme != "https" {
				return nil, fmt.Errorf("client: a TLS CA needs an https:// server, got %q", server)
			}
			pem, err := os.ReadFile(tlsCA)
			if err != nil {
				return nil, fmt.Errorf("client: TLS CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("client: TLS CA %s: no PEM certificate found", tlsCA)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		u.RawPath = ""
		base = u
	}
	return &Client{base: base, token: token, hc: &http.Client{Transport: tr}}, nil
}

// Error is an error response of the API.
type Error struct {
	Status  int      `json:"-"`
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Field   string   `json:"field,omitempty"`
	Details []Detail `json:"details,omitempty"`
}

// Detail is one of several problems of an Error.
type Detail struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
	if e.Field != "" {
		s += " [field " + e.Field + "]"
	}
	return s
}

// StatusOf returns the HTTP status of an API error, or 0 for other errors
// (transport failures).
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Change is one object of an applied document and what applying it did.
type Change struct {
	Op     string   `json:"op"` // create, update or unchanged
	Kind   string   `json:"kind"`
	Name   string   `json:"name"`
	Fields []string `json:"fields,omitempty"`
}

// Changes is the result of Apply.
type Changes struct {
	Changes  []Change `json:"changes"`
	DryRun   bool     `json:"dry_run"`
	Revision int64    `json:"revision,omitempty"`
}

// TokenRequest asks for a token for Account, or an admin token.
type TokenRequest struct {
	Account     string `json:"account,omitempty"`
	Admin       bool   `json:"admin,omitempty"`
	Description string `json:"description,omitempty"`
}

// NewToken is a created token; Secret is shown only once.
type NewToken struct {
	ID          string `json:"id"`
	Secret      string `json:"secret"`
	Account     string `json:"account,omitempty"`
	Admin       bool   `json:"admin"`
	Description string `json:"description,omitempty"`
}

// TokenInfo describes a token, without its secret.
type TokenInfo struct {
	ID          string    `json:"id"`
	Account     string    `json:"account,omitempty"`
	Description string    `json:"description,omitempty"`
	Admin       bool      `json:"admin"`
	Created     time.Time `json:"created"`
}

var kinds = map[string]string{
	"account": "accounts", "accounts": "accounts",
	"vpc": "vpcs", "vpcs": "vpcs",
	"subnet": "subnets", "subnets": "subnets",
	"nic": "nics", "nics": "nics",
	"host": "hosts", "hosts": "hosts",
	// As in URLs, as in policy documents and errors, and short.
	"security-group": "security-groups", "security-groups": "security-groups",
	"security_group": "security-groups", "security_groups": "security-groups",
	"sg": "security-groups", "sgs": "security-groups",
	"route-table": "route-tables", "route-tables": "route-tables",
	"route_table": "route-tables", "route_tables": "route-tables",
	"rtb": "route-tables", "rtbs": "route-tables",
	"peering": "peerings", "peerings": "peerings",
	"pcx": "peerings", "pcxs": "peerings",
	"internet-gateway": "internet-gateways", "internet-gateways": "internet-gateways",
	"internet_gateway": "internet-gateways", "internet_gateways": "internet-gateways",
	"igw": "internet-gateways", "igws": "internet-gateways",
	"public-ip-pool": "public-ip-pools", "public-ip-pools": "public-ip-pools",
	"public_ip_pool": "public-ip-pools", "public_ip_pools": "public-ip-pools",
	"pool": "public-ip-pools", "pools": "public-ip-pools",
	"public-ip": "public-ips", "public-ips": "public-ips",
	"public_ip": "public-ips", "public_ips": "public-ips",
	"eip": "public-ips", "eips": "public-ips",
}

// Kinds lists the kind names collection accepts, singular, as the CLI
// offers them.
var Kinds = []string{"account", "vpc", "subnet", "nic", "host", "security-group", "route-table", "peering",
	"internet-gateway", "public-ip-pool", "public-ip"}

// Collection returns the collection a kind name or alias ("sg", "route_tables")
// stands for, as in URLs ("security-groups"), or "" for an unknown kind.
func Collection(kind string) string { return kinds[strings.ToLower(kind)] }

// collection maps a kind ("vpc" or "vpcs") to its path.
func collection(kind string) (string, error) {
	p, ok := kinds[strings.ToLower(kind)]
	if !ok {
		return "", fmt.Errorf("client: unknown kind %q (want %s or %s)", kind, strings.Join(Kinds[:len(Kinds)-1], ", "), Kinds[len(Kinds)-1])
	}
	return "/v1/" + p, nil
}

// List decodes every visible object of kind into out (a pointer to a
// slice, e.g. *[]model.NIC).
func (c *Client) List(ctx context.Context, kind string, out any) error {
	p, err := collection(kind)
	if err != nil {
		return err
	}
	var resp struct {
		Items json.RawMessage `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, p, nil, nil, "", &resp); err != nil {
		return err
	}
	if err := json.Unmarshal(resp.Items, out); err != nil {
		return fmt.Errorf("client: decoding %s: %w", p, err)
	}
	return nil
}

// Get decodes the named object into out.
func (c *Client) Get(ctx context.Context, kind, name string, out any) error {
	p, err := collection(kind)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodGet, p+"/"+url.PathEscape(name), nil, nil, "", out)
}

// Create creates obj (any JSON-encodable value; []byte and
// json.RawMessage are sent as they are, as JSON text). If
// obj is a pointer, the stored object (with its assigned ip, mac, vni,
// port_key) is decoded back into it.
func (c *Client) Create(ctx context.Context, kind string, obj any) error {
	p, err := collection(kind)
	if err != nil {
		return err
	}
	body, err := encode(obj)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, p, nil, body, "application/json", outOf(obj))
}

// Update replaces the named object with obj; as with Create, a pointer obj
// receives the stored object.
func (c *Client) Update(ctx context.Context, kind, name string, obj any) error {
	p, err := collection(kind)
	if err != nil {
		return err
	}
	body, err := encode(obj)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPut, p+"/"+url.PathEscape(name), nil, body, "application/json", outOf(obj))
}

// Delete deletes the named object.
func (c *Client) Delete(ctx context.Context, kind, name string) error {
	p, err := collection(kind)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, p+"/"+url.PathEscape(name), nil, nil, "", nil)
}

func nicPath(nic string) string { return "/v1/nics/" + url.PathEscape(nic) }

// AddSecondaryIP adds a secondary IP to a NIC and returns the NIC.
func (c *Client) AddSecondaryIP(ctx context.Context, nic, ip string) (*model.NIC, error) {
	return call[model.NIC](ctx, c, http.MethodPost, nicPath(nic)+"/secondary-ips", map[string]string{"ip": ip})
}

// RemoveSecondaryIP removes a secondary IP from a NIC and returns the NIC.
func (c *Client) RemoveSecondaryIP(ctx context.Context, nic, ip string) (*model.NIC, error) {
	return call[model.NIC](ctx, c, http.MethodDelete, nicPath(nic)+"/secondary-ips/"+url.PathEscape(ip), nil)
}

// Direction of a security group rule, as in the API's paths.
type Direction string

// Directions.
const (
	Ingress Direction = "ingress"
	Egress  Direction = "egress"
)

func groupPath(group string) string { return "/v1/security-groups/" + url.PathEscape(group) }

// Authorize adds a rule to a security group (409 if it has the same rule)
// and returns the group.
func (c *Client) Authorize(ctx context.Context, group string, d Direction, r model.Rule) (*model.SecurityGroup, error) {
	return call[model.SecurityGroup](ctx, c, http.MethodPost, groupPath(group)+"/"+string(d), r)
}

// AuthorizeIngress adds an ingress rule; see Authorize.
func (c *Client) AuthorizeIngress(ctx context.Context, group string, r model.Rule) (*model.SecurityGroup, error) {
	return c.Authorize(ctx, group, Ingress, r)
}

// AuthorizeEgress adds an egress rule; see Authorize.
func (c *Client) AuthorizeEgress(ctx context.Context, group string, r model.Rule) (*model.SecurityGroup, error) {
	return c.Authorize(ctx, group, Egress, r)
}

// Revoke removes the rule of a security group with r's ID or, if that is
// 0, the rule allowing the same traffic as r; it returns the group.
func (c *Client) Revoke(ctx context.Context, group string, d Direction, r model.Rule) (*model.SecurityGroup, error) {
	return call[model.SecurityGroup](ctx, c, http.MethodPost, groupPath(group)+"/"+string(d)+"/revoke", r)
}

// RevokeIngress removes an ingress rule; see Revoke.
func (c *Client) RevokeIngress(ctx context.Context, group string, r model.Rule) (*model.SecurityGroup, error) {
	return c.Revoke(ctx, group, Ingress, r)
}

// RevokeEgress removes an egress rule; see Revoke.
func (c *Client) RevokeEgress(ctx context.Context, group string, r model.Rule) (*model.SecurityGroup, error) {
	return c.Revoke(ctx, group, Egress, r)
}

// Grant lets account name the group as a peer in its rules.
func (c *Client) Grant(ctx context.Context, group, account string) (*model.SecurityGroup, error) {
	return call[model.SecurityGroup](ctx, c, http.MethodPost, groupPath(group)+"/grants", map[string]string{"account": account})
}

// RevokeGrant revokes a grant; the account's rules naming the group stay,
// inactive.
func (c *Client) RevokeGrant(ctx context.Context, group, account string) (*model.SecurityGroup, error) {
	return call[model.SecurityGroup](ctx, c, http.MethodDelete, groupPath(group)+"/grants/"+url.PathEscape(account), nil)
}

// SetNICGroups replaces the security groups of a NIC (none: its account's
// default group) and returns the NIC.
func (c *Client) SetNICGroups(ctx context.Context, nic string, groups []string) (*model.NIC, error) {
	return call[model.NIC](ctx, c, http.MethodPut, nicPath(nic)+"/security-groups", map[string][]string{"security_groups": groups})
}

// RouteTable is a route table as the API answers it: the stored table and,
// computed and read-only, each route's state and the subnets that use it.
// (The API ignores the computed fields in a request body.)
type RouteTable struct {
	model.RouteTable
	// RouteStates has the implicit local route (the VPC's CIDR) first,
	// then one entry per route of Routes, in order.
	RouteStates []RouteState `json:"route_states"`
	Subnets     []string     `json:"subnets"`
}

// RouteState is the effective state of one route.
type RouteState struct {
	Destination string           `json:"destination"`
	Local       bool             `json:"local,omitempty"` // the VPC's own CIDR
	NIC         string           `json:"nic,omitempty"`
	Peering     string           `json:"peering,omitempty"`
	Gateway     string           `json:"gateway,omitempty"` // an internet gateway
	Blackhole   bool             `json:"blackhole,omitempty"`
	State       model.RouteState `json:"state"` // active or blackhole
	Why         string           `json:"why,omitempty"`
}

func tablePath(table string) string { return "/v1/route-tables/" + url.PathEscape(table) }

// CreateRoute adds a route to a table (409 if it has a route to the same
// destination) and returns the table. Its target is r.NIC, r.Peering,
// r.Gateway (an internet gateway attached to the table's VPC) or
// r.Blackhole.
func (c *Client) CreateRoute(ctx context.Context, table string, r model.Route) (*RouteTable, error) {
	return call[RouteTable](ctx, c, http.MethodPost, tablePath(table)+"/routes", r)
}

// ReplaceRoute replaces the route of a table to r's destination (404 if
// it has none) and returns the table.
func (c *Client) ReplaceRoute(ctx context.Context, table string, r model.Route) (*RouteTable, error) {
	return call[RouteTable](ctx, c, http.MethodPut, tablePath(table)+"/routes", r)
}

// DeleteRoute deletes the route of a table to destination (a CIDR) and
// returns the table.
func (c *Client) DeleteRoute(ctx context.Context, table, destination string) (*RouteTable, error) {
	// PathEscape turns the CIDR's slash into %2F: one path segment.
	return call[RouteTable](ctx, c, http.MethodDelete, tablePath(table)+"/routes/"+url.PathEscape(destination), nil)
}

// AssociateRouteTable makes a subnet use a route table of its VPC ("":
// the VPC's main table) and returns the subnet.
func (c *Client) AssociateRouteTable(ctx context.Context, subnet, table string) (*model.Subnet, error) {
	return call[model.Subnet](ctx, c, http.MethodPut, "/v1/subnets/"+url.PathEscape(subnet)+"/route-table", map[string]string{"route_table": table})
}

// SetSourceDestCheck turns a NIC's source/destination check on or off (off:
// the NIC may forward for others, as an appliance that routes target) and
// returns the NIC.
func (c *Client) SetSourceDestCheck(ctx context.Context, nic string, on bool) (*model.NIC, error) {
	return call[model.NIC](ctx, c, http.MethodPut, nicPath(nic)+"/source-dest-check", map[string]bool{"source_dest_check": on})
}

// AcceptPeering accepts a peering (as the peer VPC's account, or an admin)
// and returns it. Peerings are created, listed and deleted with the
// generic calls (kind "peering").
func (c *Client) AcceptPeering(ctx context.Context, name string) (*model.Peering, error) {
	return call[model.Peering](ctx, c, http.MethodPost, "/v1/peerings/"+url.PathEscape(name)+"/accept", nil)
}

// InternetGateway is an internet gateway as the API answers it, with its
// computed state. Gateways are created (optionally attached, with VPC),
// listed and deleted with the generic calls (kind "internet-gateway").
type InternetGateway struct {
	model.InternetGateway
	State string `json:"state"` // attached or detached
}

func gatewayPath(name string) string { return "/v1/internet-gateways/" + url.PathEscape(name) }

// AttachInternetGateway attaches a detached gateway to a VPC of its
// account and returns it.
func (c *Client) AttachInternetGateway(ctx context.Context, name, vpc string) (*InternetGateway, error) {
	return call[InternetGateway](ctx, c, http.MethodPost, gatewayPath(name)+"/attach", map[string]string{"vpc": vpc})
}

// DetachInternetGateway detaches a gateway from its VPC (routes to it turn
// blackhole) and returns it.
func (c *Client) DetachInternetGateway(ctx context.Context, name string) (*InternetGateway, error) {
	return call[InternetGateway](ctx, c, http.MethodPost, gatewayPath(name)+"/detach", nil)
}

// PublicIPPool is a pool of public addresses as the API answers it. Pools
// are the admin's: created, changed and deleted with the generic calls
// (kind "public-ip-pool"); every account lists them.
type PublicIPPool struct {
	model.PublicIPPool
	Allocated int `json:"allocated"` // public IPs allocated from it
	Free      int `json:"free"`      // usable addresses left
}

// PublicIP is a public IP as the API answers it, with its computed state.
type PublicIP struct {
	model.PublicIP
	// Reachable: associated, in a subnet routed to the VPC's attached
	// internet gateway, and served by GatewayHost.
	Reachable   bool   `json:"reachable"`
	Why         string `json:"why,omitempty"`
	GatewayHost string `json:"gateway_host,omitempty"`
}

// PublicIPAssociation is what AssociatePublicIP maps a public IP to.
type PublicIPAssociation struct {
	NIC string `json:"nic"`
	// PrivateIP is one of the NIC's addresses; "" is its primary IP.
	PrivateIP string `json:"private_ip,omitempty"`
	// AllowReassociation moves a public IP associated elsewhere (else the
	// API answers 409).
	AllowReassociation bool `json:"allow_reassociation,omitempty"`
}

func publicIPPath(name string) string { return "/v1/public-ips/" + url.PathEscape(name) }

// AllocatePublicIP allocates a public IP from ip.Pool: ip.Address, which
// only an admin may name, or else the lowest free address of the pool.
// Without ip.Name it is named eip-<address with dashes>. ip.NIC, if set,
// associates it at once. It returns the public IP as stored.
func (c *Client) AllocatePublicIP(ctx context.Context, ip model.PublicIP) (*PublicIP, error) {
	return call[PublicIP](ctx, c, http.MethodPost, "/v1/public-ips", ip)
}

// AssociatePublicIP maps a public IP to a private IP of a NIC and returns
// it.
func (c *Client) AssociatePublicIP(ctx context.Context, name string, a PublicIPAssociation) (*PublicIP, error) {
	return call[PublicIP](ctx, c, http.MethodPost, publicIPPath(name)+"/associate", a)
}

// DisassociatePublicIP unmaps a public IP (it stays allocated) and
// returns it.
func (c *Client) DisassociatePublicIP(ctx context.Context, name string) (*PublicIP, error) {
	return call[PublicIP](ctx, c, http.MethodPost, publicIPPath(name)+"/disassociate", nil)
}

// ReleasePublicIP releases a public IP, which must not be associated.
func (c *Client) ReleasePublicIP(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, publicIPPath(name), nil, nil, "", nil)
}

// Host is a host as the API answers it (admin only): the stored host and,
// computed from the whole policy, its usable tunnel kinds, its VMs' MTU,
// its problems and the kind it uses with each peer. Hosts are created,
// changed and deleted with the generic calls (kind "host").
type Host struct {
	model.Host
	UsableEncaps []string          `json:"usable_encaps,omitempty"`
	VMMTU        int               `json:"vm_mtu,omitempty"`
	Problems     []string          `json:"problems,omitempty"`
	Tunnels      map[string]string `json:"tunnels,omitempty"` // peer host → kind
}

// NIC is a NIC as the API answers it, with the MTU the VM must give it
// (its host's VM MTU; 0 while it is on no host).
type NIC struct {
	model.NIC
	MTU int `json:"mtu,omitempty"`
}

// Settings are the deployment's settings as the API answers them.
type Settings struct {
	model.Settings
	// EffectiveEncaps is the order of tunnel kinds in force: Encaps, or
	// the default.
	EffectiveEncaps []string `json:"effective_encaps"`
}

// SettingsKind is the kind name of the settings, one object (no name):
// GetSettings and UpdateSettings, not the generic calls.
const SettingsKind = "settings"

// IsSettings reports whether a kind name means the settings ("settings",
// "setting").
func IsSettings(kind string) bool {
	k := strings.ToLower(kind)
	return k == "settings" || k == "setting"
}

// GetSettings decodes the deployment's settings (a Settings) into out.
func (c *Client) GetSettings(ctx context.Context, out any) error {
	return c.do(ctx, http.MethodGet, "/v1/settings", nil, nil, "", out)
}

// UpdateSettings replaces the deployment's settings with obj (admin only;
// encaps left out keep their value, an empty list is the default); as
// with Update, a pointer obj receives them as stored.
func (c *Client) UpdateSettings(ctx context.Context, obj any) error {
	body, err := encode(obj)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPut, "/v1/settings", nil, body, "application/json", outOf(obj))
}

// SetEncaps sets the deployment's order of tunnel kinds (none: the
// default) and returns the settings.
func (c *Client) SetEncaps(ctx context.Context, kinds []string) (*Settings, error) {
	if kinds == nil {
		kinds = []string{}
	}
	// Not a model.Settings, which omits an empty list (that would keep
	// the order instead of resetting it).
	return call[Settings](ctx, c, http.MethodPut, "/v1/settings", map[string][]string{"encaps": kinds})
}

// Apply creates or updates every object of a policy document (YAML or
// JSON) in one atomic update, or with dryRun only reports what it would do.
func (c *Client) Apply(ctx context.Context, doc []byte, dryRun bool) (Changes, error) {
	ct := "application/yaml"
	if t := bytes.TrimSpace(doc); len(t) > 0 && t[0] == '{' {
		ct = "application/json"
	}
	q := url.Values{}
	if dryRun {
		q.Set("dry_run", "true")
	}
	var res Changes
	err := c.do(ctx, http.MethodPost, "/v1/apply", q, doc, ct, &res)
	return res, err
}

// Export returns the caller's visible policy as a YAML document.
func (c *Client) Export(ctx context.Context) ([]byte, error) {
	var out []byte
	err := c.do(ctx, http.MethodGet, "/v1/export", nil, nil, "", &out)
	return out, err
}

// CreateToken creates a token; the secret in the result is shown only once.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (*NewToken, error) {
	return call[NewToken](ctx, c, http.MethodPost, "/v1/tokens", req)
}

// ListTokens lists every token (admin only).
func (c *Client) ListTokens(ctx context.Context) ([]TokenInfo, error) {
	var resp struct {
		Items []TokenInfo `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/tokens", nil, nil, "", &resp); err != nil {
		return nil, err
	}
	return resp.Items, nil
}

// RevokeToken revokes a token (admin only).
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(id), nil, nil, "", nil)
}

// call sends body (JSON-encoded, if not nil) with method to path and
// decodes the answer, the object as stored, into a new T.
func call[T any](ctx context.Context, c *Client, method, path string, body any) (*T, error) {
	var data []byte
	ct := ""
	if body != nil {
		var err error
		if data, err = encode(body); err != nil {
			return nil, err
		}
		ct = "application/json"
	}
	var out T
	if err := c.do(ctx, method, path, nil, data, ct, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func encode(obj any) ([]byte, error) {
	switch v := obj.(type) {
	case []byte:
		return v, nil
	case json.RawMessage:
		return v, nil
	case *json.RawMessage:
		return *v, nil
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("client: encoding request: %w", err)
	}
	return data, nil
}

// outOf returns obj if the response can be decoded into it (a non-nil
// pointer other than *json.RawMessage, which only carries the request).
func outOf(obj any) any {
	if _, ok := obj.(*json.RawMessage); ok {
		return nil
	}
	if v := reflect.ValueOf(obj); v.Kind() == reflect.Pointer && !v.IsNil() {
		return obj
	}
	return nil
}

// do sends a request and decodes a 2xx response into out, which it zeroes
// first (a *[]byte gets the raw body); any other status becomes an *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte, contentType string, out any) error {
	target := c.base.String() + path // path segments are already escaped
	if q := query.Encode(); q != "" {
		target += "?" + q
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if path == "/v1/export" {
		req.Header.Set("Accept", "application/yaml")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("client: %s %s: reading response: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp.StatusCode, data)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = data
		return nil
	}
	if len(data) == 0 {
		return nil
	}
	// out becomes the answer, not the answer merged into what out held
	// (a map sent as the request would keep computed fields the answer
	// leaves out).
	if v := reflect.ValueOf(out); v.Kind() == reflect.Pointer && !v.IsNil() {
		v.Elem().SetZero()
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("client: %s %s: decoding response: %w", method, path, err)
	}
	return nil
}

func apiError(status int, data []byte) error {
	e := &Error{}
	if json.Unmarshal(data, e) != nil || e.Code == "" {
		msg := strings.TrimSpace(string(data))
		if len(msg) > 512 {
			msg = msg[:512] + "…"
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		e = &Error{Code: codeOf(status), Message: msg}
	}
	e.Status = status
	return e
}

func codeOf(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusMethodNotAllowed:
		return "invalid_argument"
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusForbidden:
		return "permission_denied"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	}
	return "internal"
}
