// Package e2e runs the lab integration tests: real Open vSwitch (userspace
// datapath) in network namespaces, an in-process controller, real packets.
// One lab is shared by the whole package (TestMain). Needs root.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/internal/labrun"
	"github.com/openvpc/openvpc/lab"
)

var env *labrun.Env

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: the lab tests need root (network namespaces, OVS); run `make test` as root")
		os.Exit(1)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	if testing.Verbose() {
		log.SetLevel(logrus.InfoLevel)
	}
	name := lab.UniqueName('e')
	dir, err := os.MkdirTemp("", "ovpe2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	env, err = labrun.Up(ctx, "../examples/demo.yaml", labrun.Options{Name: name, Dir: dir, Log: log, AuditInterval: time.Second, Ephemeral: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: lab up:", err)
		return 1
	}
	defer env.Down(context.Background())
	if err := env.WaitReady(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	fmt.Printf("e2e: lab %s up and in sync in %v\n", name, time.Since(start).Round(time.Millisecond))
	return m.Run()
}
