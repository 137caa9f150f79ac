package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openvpc/openvpc/api/client"
	"github.com/openvpc/openvpc/internal/labrun"
	"github.com/openvpc/openvpc/model"
)

// Shape of one big document: accounts × (1 VPC, subnetsPerVPC subnets) and
// NICs (unplaced) spread over the subnets; 3,000 objects in all.
const (
	bigAccounts   = 10
	subnetsPerVPC = 3
	bigNICs       = 3000 - bigAccounts*(2+subnetsPerVPC)
)

// bigDoc is a policy document whose every object's name starts with tag.
func bigDoc(tag string) *model.Policy {
	p := &model.Policy{}
	var subnets []string
	for a := 0; a < bigAccounts; a++ {
		acct, vpc := fmt.Sprintf("%s-a%d", tag, a), fmt.Sprintf("%s-v%d", tag, a)
		p.Accounts = append(p.Accounts, model.Account{Name: acct})
		p.VPCs = append(p.VPCs, model.VPC{Name: vpc, Account: acct, CIDR: fmt.Sprintf("10.%d.0.0/16", a)})
		for s := 0; s < subnetsPerVPC; s++ {
			sn := fmt.Sprintf("%s-s%d", vpc, s)
			p.Subnets = append(p.Subnets, model.Subnet{Name: sn, VPC: vpc, CIDR: fmt.Sprintf("10.%d.%d.0/24", a, s)})
			subnets = append(subnets, sn)
		}
	}
	for i := 0; i < bigNICs; i++ {
		p.NICs = append(p.NICs, model.NIC{Name: fmt.Sprintf("%s-n%04d", tag, i), Subnet: subnets[i%len(subnets)]})
	}
	return p
}

func objectCount(p *model.Policy) int {
	return len(p.Accounts) + len(p.VPCs) + len(p.Subnets) + len(p.NICs)
}

// present counts how many of doc's objects p holds, checking that those it
// holds are the document's (same references; NICs got an address).
func present(t *testing.T, p, doc *model.Policy) int {
	t.Helper()
	n := 0
	accounts := map[string]bool{}
	for _, a := range p.Accounts {
		accounts[a.Name] = true
	}
	for _, a := range doc.Accounts {
		if accounts[a.Name] {
			n++
		}
	}
	vpcs := map[string]model.VPC{}
	for _, v := range p.VPCs {
		vpcs[v.Name] = v
	}
	for _, v := range doc.VPCs {
		if got, ok := vpcs[v.Name]; ok {
			n++
			if got.Account != v.Account || got.CIDR != v.CIDR {
				t.Errorf("VPC %s: %+v, want %+v", v.Name, got, v)
			}
		}
	}
	subnets := map[string]model.Subnet{}
	for _, s := range p.Subnets {
		subnets[s.Name] = s
	}
	for _, s := range doc.Subnets {
		if got, ok := subnets[s.Name]; ok {
			n++
			if got != s {
				t.Errorf("subnet %s: %+v, want %+v", s.Name, got, s)
			}
		}
	}
	nics := map[string]model.NIC{}
	for _, c := range p.NICs {
		nics[c.Name] = c
	}
	for _, c := range doc.NICs {
		if got, ok := nics[c.Name]; ok {
			n++
			if got.Subnet != c.Subnet || got.Host != "" || got.IP == "" || got.MAC == "" || got.PortKey == 0 {
				t.Errorf("NIC %s: %+v", c.Name, got)
			}
		}
	}
	return n
}

type applyResult struct {
	res  client.Changes
	err  error
	took time.Duration
}

// TestKillDuringApply SIGKILLs the controller daemon (and with it its
// embedded etcd) while a 3,000-object apply is in flight, restarts it and
// checks that the store holds all of the document or none of it, and that
// a dry-run retry agrees. Each round first times a dry run of its document
// (all the work but the commit, on the same store); the kill comes at a
// fraction of that, bisected between rounds towards the moment the commit
// lands, so that both outcomes show up and the kills cluster around it.
func TestKillDuringApply(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t, 3*time.Minute)
	env := upLab(t, 'k', "h1", "h2")

	// Bisect the fraction between "too early" (none) and "too late"
	// (all); once the bracket is narrow (the boundary moves from round to
	// round), widen it again so the kills keep probing around the commit.
	const rounds = 12
	lo, hi := 0.3, 1.7
	outcomes := map[string]int{}
	for r := 0; r < rounds; r++ {
		frac := (lo + hi) / 2
		outcome, detail := killRound(ctx, t, env, fmt.Sprintf("r%d", r), frac)
		outcomes[outcome]++
		if outcome == "all" {
			hi = frac
		} else {
			lo = frac
		}
		if hi-lo < 0.05 {
			lo, hi = max(0, lo-0.2), hi+0.2
		}
		t.Logf("round %2d: %s → %s of the document stored", r, detail, outcome)
		if t.Failed() {
			return
		}
	}
	t.Logf("outcomes over %d kills: %d all, %d none", rounds, outcomes["all"], outcomes["none"])

	// The last restarted daemon brings the switches back in sync. (Each
	// round waited only for the API: ovs-vswitchd backs off reconnecting
	// to a controller that keeps dying, up to 8 s in OVS 3.1 although the
	// Controller row says max_backoff=1000.)
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	must(t, env.WaitReady(wctx))
	t.Logf("controller in sync %v after the last restart's API came up", time.Since(start).Round(time.Millisecond))
}

// killRound applies a fresh big document, SIGKILLs the daemon frac × (the
// document's dry-run time) after sending it, restarts the daemon, waits
// for its API and checks all-or-nothing. It returns "all" or "none" and
// what happened.
func killRound(ctx context.Context, t *testing.T, env *labrun.Env, tag string, frac float64) (string, string) {
	t.Helper()
	doc := bigDoc(tag)
	body, err := json.Marshal(doc)
	must(t, err)
	// A fresh client: no kept-alive connection to an earlier daemon.
	cl, err := env.Client("")
	must(t, err)
	waitAPI(ctx, t, cl)
	start := time.Now()
	dry, err := cl.Apply(ctx, body, true)
	dryTook := time.Since(start)
	must(t, err)
	checkDryRun(t, tag, dry, doc, "create")

	pid := labControllerPID(t, env)
	st, _ := procStat(pid)
	delay := time.Duration(frac * float64(dryTook))
	done := make(chan applyResult, 1)
	go func() {
		start := time.Now()
		res, err := cl.Apply(ctx, body, false)
		done <- applyResult{res, err, time.Since(start)}
	}()
	time.Sleep(delay)
	killPID(t, pid, st.start)
	ar := <-done

	detail := fmt.Sprintf("SIGKILL %v (%.2f × dry run %v) after sending", delay.Round(time.Millisecond), frac, dryTook.Round(time.Millisecond))
	switch {
	case ar.err == nil:
		detail += fmt.Sprintf("; the apply had returned OK after %v", ar.took.Round(time.Millisecond))
		if len(ar.res.Changes) != objectCount(doc) {
			t.Errorf("%s: the apply reported %d changes, want %d", tag, len(ar.res.Changes), objectCount(doc))
		}
	case client.StatusOf(ar.err) != 0:
		t.Fatalf("%s: the apply failed with an API error, not the kill: %v", tag, ar.err)
	default:
		detail += "; the client got " + shortErr(ar.err)
	}

	env.StopController() // forget the dead PID
	must(t, env.StartController(ctx))
	admin, err := env.Client("")
	must(t, err)
	waitAPI(ctx, t, admin)
	p, _ := netFromAPI(ctx, t, admin)
	outcome := ""
	switch got := present(t, p, doc); got {
	case objectCount(doc):
		outcome = "all"
	case 0:
		outcome = "none"
		if ar.err == nil {
			t.Errorf("%s: the apply returned OK but nothing of it is stored", tag)
		}
	default:
		t.Fatalf("%s: torn apply: %d of %d objects stored after the kill (%s)", tag, got, objectCount(doc), detail)
	}

	// What a retry would do agrees: create everything, or nothing to do.
	dry, err = admin.Apply(ctx, body, true)
	must(t, err)
	checkDryRun(t, tag, dry, doc, map[string]string{"all": "unchanged", "none": "create"}[outcome])
	return outcome, detail
}

// checkDryRun checks that a dry run of doc would do op to every object.
func checkDryRun(t *testing.T, tag string, dry client.Changes, doc *model.Policy, op string) {
	t.Helper()
	ops := map[string]int{}
	for _, c := range dry.Changes {
		ops[c.Op]++
	}
	if !dry.DryRun || len(dry.Changes) != objectCount(doc) || ops[op] != objectCount(doc) {
		t.Errorf("%s: a dry run would do %v, want %s for all %d objects", tag, ops, op, objectCount(doc))
	}
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s) > 120 {
		s = "…" + s[i:]
	}
	return s
}
