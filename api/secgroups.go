package api

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"

	"github.com/openvpc/openvpc/model"
)

// Security groups: CRUD through the generic handlers, plus AWS-like verbs
// (authorize and revoke rules, grant groups to other accounts, set a NIC's
// groups), each one atomic update answered with the changed object.
//
// Peers: a rule may name as its peer a group of its own account, or a group
// of another account that granted it to the rule's account. That is checked
// for rules a request adds (not for rules already stored: when a grant is
// revoked, the rules using it stay and become inactive, and unrelated
// changes to their groups go on).

var securityGroupKind = &kind[model.SecurityGroup]{
	singular: "security_group", plural: "security-groups", doc: "security_groups",
	items:    func(p *model.Policy) *[]model.SecurityGroup { return &p.SecurityGroups },
	name:     func(o *model.SecurityGroup) string { return o.Name },
	setName:  func(o *model.SecurityGroup, n string) { o.Name = n },
	visible:  func(v *view, o *model.SecurityGroup) bool { return v.groupVisible(o) },
	writable: func(v *view, o *model.SecurityGroup) bool { return v.groupOwner(o) == v.pr.Account },
	merge:    mergeGroup,
	created: func(o *model.SecurityGroup) error {
		if o.Default {
			return invalid("default", "default groups are created with their VPC (and with an account's first NIC in a shared VPC), not by hand")
		}
		return nil
	},
	check: func(v *view, old, o *model.SecurityGroup) error { return checkPeers(v, old, o) },
	deletable: func(v *view, o *model.SecurityGroup) error {
		if o.Default {
			return invalid("", "security_group %q is a default group: it is deleted with its VPC (or account), not by hand; change its rules instead", o.Name)
		}
		return nil
	},
	users: groupUsers,
}

// mergeGroup checks a created or updated group. On create, a group without
// egress rules (null) gets all egress, as in AWS; ingress is empty. On
// update, ingress, egress and grants left out (null) keep their current
// value (so a PUT of the description needs not restate the rules, and a
// re-applied document is unchanged); [] empties them. Rules keep their IDs
// when they are unchanged, so that a document without IDs is idempotent.
func mergeGroup(v *view, old, o *model.SecurityGroup) error {
	if old == nil {
		if !v.pr.Admin {
			if o.Account == "" {
				o.Account = v.pr.Account
			} else if o.Account != v.pr.Account {
				return invalid("account", "must be %q, the account of your token", v.pr.Account)
			}
			if err := checkRuleIDs(o, nil); err != nil {
				return err
			}
		}
		if o.Egress == nil {
			o.Egress = []model.Rule{model.AllEgress()}
		}
		*o = normalize(*o)
		return nil
	}
	if err := keepString("vpc", &o.VPC, old.VPC); err != nil {
		return err
	}
	if o.Account == "" {
		o.Account = old.Account
	} else if o.Account != old.Account && o.Account != v.groupOwner(old) {
		return immutable("account")
	} else {
		o.Account = old.Account
	}
	if o.Default && !old.Default {
		return invalid("default", "a group cannot be made a default group")
	}
	o.Default = old.Default
	if o.Ingress == nil {
		o.Ingress = old.Ingress
	}
	if o.Egress == nil {
		o.Egress = old.Egress
	}
	if o.Grants == nil {
		o.Grants = old.Grants
	}
	keepRuleIDs(old.Ingress, o.Ingress)
	keepRuleIDs(old.Egress, o.Egress)
	if !v.pr.Admin {
		if err := checkRuleIDs(o, old); err != nil {
			return err
		}
	}
	*o = normalize(*o)
	return nil
}

// rulesOf returns a group's rules of one direction (nil for a nil group).
func rulesOf(g *model.SecurityGroup, d model.Direction) *[]model.Rule {
	if g == nil {
		return nil
	}
	if d == model.Ingress {
		return &g.Ingress
	}
	return &g.Egress
}

var directions = []model.Direction{model.Ingress, model.Egress}

// keepRuleIDs gives rules without an ID the ID of the same old rule.
func keepRuleIDs(old, rules []model.Rule) {
	used := map[int]bool{}
	for i := range rules {
		if rules[i].ID != 0 {
			continue
		}
		for j, o := range old {
			if !used[j] && o.ID != 0 && model.SameRule(o, rules[i]) {
				rules[i].ID = o.ID
				used[j] = true
				break
			}
		}
	}
}

// checkRuleIDs refuses rule IDs that a non-admin chose: IDs are assigned,
// and only those the group already has may be given.
func checkRuleIDs(g, old *model.SecurityGroup) error {
	have := map[uint32]bool{}
	for _, d := range directions {
		if rs := rulesOf(old, d); rs != nil {
			for _, r := range *rs {
				have[r.ID] = true
			}
		}
	}
	for _, d := range directions {
		for j, r := range *rulesOf(g, d) {
			if r.ID != 0 && !have[r.ID] {
				return invalid(fmt.Sprintf("%s[%d].id", d, j), "is assigned by the controller (only an admin may choose it)")
			}
		}
	}
	return nil
}

// checkPeers refuses rules of g, new compared with old, that name a peer
// group g's account may not use.
func checkPeers(v *view, old, g *model.SecurityGroup) error {
	owner := v.groupOwner(g)
	for _, d := range directions {
		var before []model.Rule
		if rs := rulesOf(old, d); rs != nil {
			before = *rs
		}
		for j, r := range *rulesOf(g, d) {
			if r.Group == "" || r.Group == g.Name || slices.ContainsFunc(before, func(o model.Rule) bool { return model.SameRule(o, r) }) {
				continue
			}
			if err := peerAllowed(v, owner, r.Group); err != nil {
				return err.withPrefix(fmt.Sprintf("%s[%d]", d, j))
			}
		}
	}
	return nil
}

// peerAllowed checks that account may name group peer in its rules: the
// group is its own, or its owner granted it. Whether the group exists at
// all is not told apart from whether it is granted.
func peerAllowed(v *view, account, peer string) *Error {
	if g := findGroup(v.p, peer); g != nil && (v.groupOwner(g) == account || slices.Contains(g.Grants, account)) {
		return nil
	}
	return invalid("group", "security group %q does not exist or is not granted to account %q", peer, account)
}

// findGroup returns the named group of p, or nil. (Not kind.find: that
// would make securityGroupKind's initialization refer to itself.)
func findGroup(p *model.Policy, name string) *model.SecurityGroup {
	for i := range p.SecurityGroups {
		if p.SecurityGroups[i].Name == name {
			return &p.SecurityGroups[i]
		}
	}
	return nil
}

// vpcOwners maps every VPC to its account.
func vpcOwners(p *model.Policy) map[string]string {
	out := make(map[string]string, len(p.VPCs))
	for _, x := range p.VPCs {
		out[x.Name] = x.Account
	}
	return out
}

func groupOwnerIn(owners map[string]string, g *model.SecurityGroup) string {
	if g.Account != "" {
		return g.Account
	}
	return owners[g.VPC]
}

// groupUsers: NICs in the group (by name, or a default group by naming
// none) and other groups whose rules name it. As store.InUse.
func groupUsers(p *model.Policy, name string) []ref {
	owners := vpcOwners(p)
	vpcOf := map[string]string{}
	for _, s := range p.Subnets {
		vpcOf[s.Name] = s.VPC
	}
	g := findGroup(p, name)
	isDefault := g != nil && g.Default
	var out []ref
	for _, n := range p.NICs {
		member := slices.Contains(n.SecurityGroups, name)
		if len(n.SecurityGroups) == 0 && isDefault {
			vpc := vpcOf[n.Subnet]
			acct := n.Account
			if acct == "" {
				acct = owners[vpc]
			}
			member = model.DefaultGroupName(vpc, owners[vpc], acct) == name
		}
		if member {
			out = append(out, ref{"nic", n.Name})
		}
	}
	for i := range p.SecurityGroups {
		g := &p.SecurityGroups[i]
		if g.Name != name && g.NamesPeer(func(peer string) bool { return peer == name }) {
			out = append(out, ref{"security_group", g.Name})
		}
	}
	return out
}

// accountUsers: its VPCs and, in other accounts' (shared) VPCs, its NICs,
// its groups other than default ones, and other groups whose rules name
// its groups; its internet gateways and public IPs. Its default groups and
// grants to it go with it. As store.InUse.
func accountUsers(p *model.Policy, name string) []ref {
	owners := vpcOwners(p)
	vpcOf := map[string]string{}
	for _, s := range p.Subnets {
		vpcOf[s.Name] = s.VPC
	}
	var out []ref
	for _, x := range p.VPCs {
		if x.Account == name {
			out = append(out, ref{"vpc", x.Name})
		}
	}
	for _, n := range p.NICs {
		if n.Account == name && owners[vpcOf[n.Subnet]] != name {
			out = append(out, ref{"nic", n.Name})
		}
	}
	mine := map[string]bool{}
	for i := range p.SecurityGroups {
		g := &p.SecurityGroups[i]
		if groupOwnerIn(owners, g) != name || owners[g.VPC] == name {
			continue
		}
		mine[g.Name] = true
		if !g.Default {
			out = append(out, ref{"security_group", g.Name})
		}
	}
	for i := range p.SecurityGroups {
		g := &p.SecurityGroups[i]
		if !mine[g.Name] && owners[g.VPC] != name && g.NamesPeer(func(peer string) bool { return mine[peer] }) {
			out = append(out, ref{"security_group", g.Name})
		}
	}
	for _, g := range p.InternetGateways {
		if g.Account == name {
			out = append(out, ref{"internet_gateway", g.Name})
		}
	}
	for _, x := range p.PublicIPs {
		if x.Account == name {
			out = append(out, ref{"public_ip", x.Name})
		}
	}
	return out
}

// cascade makes what lives and dies with other objects follow the change,
// as the store does before it commits (store.Cascade): default groups
// follow their VPCs and accounts, main route tables their VPCs, grants
// to a deleted account go with it, and public IPs associated with a
// deleted NIC (or with an address removed from its NIC) are disassociated.
// Grants to accounts that never existed are left for model.Build.
func (t *txn) cascade() {
	model.EnsureDefaultGroups(t.p)
	model.EnsureMainTables(t.p)
	t.disassociateGone()
	kept := make(map[string]bool, len(t.p.Accounts))
	for _, a := range t.p.Accounts {
		kept[a.Name] = true
	}
	for i := range t.p.SecurityGroups {
		g := &t.p.SecurityGroups[i]
		var grants []string
		for _, a := range g.Grants {
			if kept[a] || !t.accounts[a] {
				grants = append(grants, a)
			}
		}
		g.Grants = grants
	}
}

// ruleFieldRE matches validation fields of one rule ("ingress[3].ports").
var ruleFieldRE = regexp.MustCompile(`^(ingress|egress)\[(\d+)\](?:\.(.*))?$`)

// ruleFields renames fields of the rule at index i of direction d to
// paths in a request body that is that one rule ("ports").
func ruleFields(d model.Direction, i *int) func(string) string {
	return func(f string) string {
		m := ruleFieldRE.FindStringSubmatch(f)
		if m == nil || m[1] != d.String() || m[2] != fmt.Sprint(*i) {
			return f
		}
		return m[3]
	}
}

// authorizeRule is POST /v1/security-groups/{name}/ingress (or egress):
// add one rule, unless the group already has the same one (409).
func (s *server) authorizeRule(d model.Direction) func(http.ResponseWriter, *http.Request, Principal) error {
	return func(w http.ResponseWriter, r *http.Request, pr Principal) error {
		var rule model.Rule
		if err := s.decodeBody(w, r, &rule); err != nil {
			return err
		}
		if rule.ID != 0 && !pr.Admin {
			return invalid("id", "is assigned by the controller (only an admin may choose it)")
		}
		idx := -1
		return verb(s, w, r, pr, securityGroupKind, http.StatusCreated, always(func(t *txn, g *model.SecurityGroup) error {
			rules := rulesOf(g, d)
			for _, x := range *rules {
				if model.SameRule(x, rule) {
					return conflict("", "security_group %q already has %s rule %d allowing that", g.Name, d, x.ID)
				}
			}
			if rule.Group != "" && rule.Group != g.Name {
				if err := peerAllowed(t.v, t.v.groupOwner(g), rule.Group); err != nil {
					return err
				}
			}
			idx = len(*rules)
			*rules = append(*rules, rule)
			return nil
		}), ruleFields(d, &idx))
	}
}

// revokeRule is POST /v1/security-groups/{name}/ingress/revoke (or
// egress): remove the rule with the body's id, or else the rule allowing
// the same traffic as the body (model.SameRule).
func (s *server) revokeRule(d model.Direction) func(http.ResponseWriter, *http.Request, Principal) error {
	return func(w http.ResponseWriter, r *http.Request, pr Principal) error {
		var rule model.Rule
		if err := s.decodeBody(w, r, &rule); err != nil {
			return err
		}
		if rule.ID == 0 && rule.Protocol == "" {
			return invalid("protocol", "is required (or give the rule's id)")
		}
		return verb(s, w, r, pr, securityGroupKind, http.StatusOK, always(func(t *txn, g *model.SecurityGroup) error {
			rules := rulesOf(g, d)
			for j, x := range *rules {
				if (rule.ID != 0 && x.ID == rule.ID) || (rule.ID == 0 && model.SameRule(x, rule)) {
					*rules = nilIfEmpty(append((*rules)[:j:j], (*rules)[j+1:]...))
					return nil
				}
			}
			if rule.ID != 0 {
				return notFound("security_group %q has no %s rule %d", g.Name, d, rule.ID)
			}
			return notFound("security_group %q has no %s rule allowing that", g.Name, d)
		}), nil)
	}
}

// GrantRequest is the body of POST /v1/security-groups/{name}/grants.
type GrantRequest struct {
	Account string `json:"account"`
}

var grantFieldRE = regexp.MustCompile(`^grants\[\d+\]$`)

// addGrant lets another account name the group as a peer in its rules.
func (s *server) addGrant(w http.ResponseWriter, r *http.Request, pr Principal) error {
	var req GrantRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.Account == "" {
		return invalid("account", "is required")
	}
	return verb(s, w, r, pr, securityGroupKind, http.StatusCreated, always(func(t *txn, g *model.SecurityGroup) error {
		if slices.Contains(g.Grants, req.Account) {
			return conflict("account", "security_group %q is already granted to account %q", g.Name, req.Account)
		}
		g.Grants = append(g.Grants, req.Account)
		return nil
	}), func(f string) string {
		// The new grant is the only one the request names.
		if grantFieldRE.MatchString(f) {
			return "account"
		}
		return f
	})
}

// removeGrant revokes a grant; the other account's rules naming the group
// stay, inactive.
func (s *server) removeGrant(w http.ResponseWriter, r *http.Request, pr Principal) error {
	account := r.PathValue("account")
	return verb(s, w, r, pr, securityGroupKind, http.StatusOK, always(func(t *txn, g *model.SecurityGroup) error {
		i := slices.Index(g.Grants, account)
		if i < 0 {
			return notFound("security_group %q is not granted to account %q", g.Name, account)
		}
		g.Grants = nilIfEmpty(slices.Delete(g.Grants, i, i+1))
		return nil
	}), nil)
}

// NICGroupsRequest is the body of PUT /v1/nics/{name}/security-groups.
type NICGroupsRequest struct {
	// SecurityGroups replaces the NIC's groups; empty puts it in its
	// account's default group.
	SecurityGroups []string `json:"security_groups"`
}

// setNICGroups changes the groups of a (running) NIC.
func (s *server) setNICGroups(w http.ResponseWriter, r *http.Request, pr Principal) error {
	var req NICGroupsRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return err
	}
	return verb(s, w, r, pr, nicKind, http.StatusOK, func(t *txn, n *model.NIC) (bool, error) {
		groups := nilIfEmpty(append([]string(nil), req.SecurityGroups...))
		if slices.Equal(groups, n.SecurityGroups) {
			return false, nil
		}
		n.SecurityGroups = groups
		return true, nil
	}, nil)
}
