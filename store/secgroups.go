package store

import "github.com/openvpc/openvpc/model"

// Cascade makes the objects that live and die with others follow a change
// from old to p: the default security groups of VPCs
// (model.EnsureDefaultGroups creates a VPC's with it, and an account's in a
// shared VPC with its first NIC there; it deletes them with their VPC or
// account), the main route tables of VPCs (model.EnsureMainTables, with
// their VPC), and grants to an account deleted by the change, which go with
// it as its tokens do. Grants naming accounts that never existed are left
// for model.Build to report. Update runs Cascade on every change.
func Cascade(old, p *model.Policy) {
	model.EnsureDefaultGroups(p)
	model.EnsureMainTables(p)
	kept := make(map[string]bool, len(p.Accounts))
	for _, a := range p.Accounts {
		kept[a.Name] = true
	}
	deleted := map[string]bool{}
	for _, a := range old.Accounts {
		if !kept[a.Name] {
			deleted[a.Name] = true
		}
	}
	if len(deleted) == 0 {
		return
	}
	for i := range p.SecurityGroups {
		g := &p.SecurityGroups[i]
		var grants []string
		for _, a := range g.Grants {
			if !deleted[a] {
				grants = append(grants, a)
			}
		}
		g.Grants = grants
	}
}
