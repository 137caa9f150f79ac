package ovsproc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestStartStopInNetns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := fmt.Sprintf("ovpt-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	dir, err := os.MkdirTemp("", "ovp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	o, err := Start(ctx, Config{Dir: dir, Netns: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Stop() })
	if _, err := o.Vsctl(ctx, "add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev", "fail_mode=secure"); err != nil {
		t.Fatal(err)
	}
	out, err := o.Ofctl(ctx, "show", "br-int")
	if err != nil || !strings.Contains(out, "LOCAL(br-int)") {
		t.Fatalf("ofctl show: %v\n%s", err, out)
	}
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Vsctl(ctx, "--timeout=1", "show"); err == nil {
		t.Fatal("ovsdb-server still answers after Stop")
	}
}
