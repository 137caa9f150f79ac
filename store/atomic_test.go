package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openvpc/openvpc/model"
)

// The failure-injection test re-runs this test binary as a child that makes
// one big Update against the parent's embedded etcd, and SIGKILLs it.
const (
	childEndpointsEnv = "OPENVPC_STORE_TEST_CHILD_ENDPOINTS"
	childBatchEnv     = "OPENVPC_STORE_TEST_CHILD_BATCH"
	batchObjects      = 2000
)

// addBatch adds batchObjects objects of batch b: an account, a VPC, 8
// subnets and 1990 NICs without IPs.
func addBatch(p *model.Policy, b int) {
	pre := fmt.Sprintf("b%d-", b)
	p.Accounts = append(p.Accounts, model.Account{Name: pre + "acct"})
	p.VPCs = append(p.VPCs, model.VPC{Name: pre + "vpc", Account: pre + "acct", CIDR: "10.0.0.0/16"})
	for s := 0; s < 8; s++ {
		p.Subnets = append(p.Subnets, model.Subnet{Name: fmt.Sprintf("%ss%d", pre, s), VPC: pre + "vpc", CIDR: fmt.Sprintf("10.0.%d.0/24", s)})
	}
	for n := 0; n < batchObjects-10; n++ {
		p.NICs = append(p.NICs, model.NIC{Name: fmt.Sprintf("%sn%d", pre, n), Subnet: fmt.Sprintf("%ss%d", pre, n%8)})
	}
}

func countBatch(p *model.Policy, b int) int {
	pre := fmt.Sprintf("b%d-", b)
	n := 0
	for _, a := range p.Accounts {
		if strings.HasPrefix(a.Name, pre) {
			n++
		}
	}
	for _, v := range p.VPCs {
		if strings.HasPrefix(v.Name, pre) {
			n++
		}
	}
	for _, s := range p.Subnets {
		if strings.HasPrefix(s.Name, pre) {
			n++
		}
	}
	for _, c := range p.NICs {
		if strings.HasPrefix(c.Name, pre) {
			n++
		}
	}
	return n
}

// TestAtomicityChild is the child half of TestAtomicityKill.
func TestAtomicityChild(t *testing.T) {
	eps := os.Getenv(childEndpointsEnv)
	if eps == "" {
		t.Skip("helper process of TestAtomicityKill")
	}
	b, _ := strconv.Atoi(os.Getenv(childBatchEnv))
	s := openStore(t, strings.Split(eps, ","))
	s.testHookCommit = func(commit func() (*clientv3.TxnResponse, error)) (*clientv3.TxnResponse, error) {
		fmt.Println("COMMITTING")
		return commit()
	}
	fmt.Println("STARTED")
	if _, err := s.Update(testCtx(t, 60*time.Second), func(p *model.Policy) error {
		addBatch(p, b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	fmt.Println("DONE")
}

func TestAtomicityKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testCtx(t, 90*time.Second)
	e, err := StartEmbedded(ctx, dir, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })

	// Kill points: on a marker line, after a delay; "" runs to completion.
	plans := []struct {
		at    string
		delay time.Duration
	}{
		{"STARTED", 0},
		{"COMMITTING", 0},
		{"COMMITTING", 1 * time.Millisecond},
		{"COMMITTING", 5 * time.Millisecond},
		{"COMMITTING", 20 * time.Millisecond},
		{"", 0},
	}
	check := func(s *Store, when string) {
		t.Helper()
		p, _ := mustPolicy(t, s)
		if _, err := model.Build(p); err != nil {
			t.Fatalf("%s: stored policy invalid: %v", when, err)
		}
		for b, pl := range plans {
			n := countBatch(p, b)
			if n != 0 && n != batchObjects {
				t.Fatalf("%s: batch %d (kill at %s+%v) is partly stored: %d of %d objects", when, b, pl.at, pl.delay, n, batchObjects)
			}
			if pl.at == "" && n != batchObjects {
				t.Fatalf("%s: batch %d ran to completion but is not stored", when, b)
			}
		}
	}
	for b, pl := range plans {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		cmd := exec.CommandContext(cctx, os.Args[0], "-test.run=^TestAtomicityChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEndpointsEnv+"="+strings.Join(e.Endpoints(), ","), childBatchEnv+"="+strconv.Itoa(b))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killed := false
		sc := bufio.NewScanner(out)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if pl.at != "" && sc.Text() == pl.at && !killed {
				time.Sleep(pl.delay)
				cmd.Process.Kill() // SIGKILL
				killed = true
			}
		}
		err = cmd.Wait()
		cancel()
		if pl.at == "" && err != nil {
			t.Fatalf("child %d: %v\n%s\n%s", b, err, strings.Join(lines, "\n"), stderr.String())
		}
		if pl.at != "" && !killed {
			t.Fatalf("child %d never printed %s: %v\n%s\n%s", b, pl.at, err, strings.Join(lines, "\n"), stderr.String())
		}
	}
	s := openStore(t, e.Endpoints())
	check(s, "after the kills")
	p, _ := mustPolicy(t, s)
	var outcome []string
	for b, pl := range plans {
		outcome = append(outcome, fmt.Sprintf("%s+%v: %d", pl.at, pl.delay, countBatch(p, b)))
	}
	t.Logf("objects stored per kill point: %s", strings.Join(outcome, ", "))

	// And the same after an etcd restart.
	s.Close()
	e.Close()
	e2 := startEmbedded(t, dir)
	check(openStore(t, e2.Endpoints()), "after restart")
}
