package hostsetup

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/sirupsen/logrus"

	"github.com/openvpc/openvpc/ovsdb"
)

// Run is `openvpc host setup`: it connects to the OVSDB endpoint
// ("unix:/path" or "tcp:host:port"), runs Ensure and prints what it changed
// to stdout. ctx bounds the whole run (ovsdb.DefaultTimeout if it has no
// deadline).
func Run(ctx context.Context, endpoint string, cfg Config, log logrus.FieldLogger) error {
	return run(ctx, endpoint, cfg, log, os.Stdout)
}

func run(ctx context.Context, endpoint string, cfg Config, log logrus.FieldLogger, out io.Writer) error {
	if log == nil {
		log = logrus.StandardLogger()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ovsdb.DefaultTimeout)
		defer cancel()
	}
	cli, err := ovsdb.Dial(ctx, endpoint, log)
	if err != nil {
		return err
	}
	defer cli.Close()
	changes, err := Ensure(ctx, cli, cfg)
	for _, c := range changes {
		fmt.Fprintln(out, c)
	}
	if err != nil {
		return err
	}
	bridge := cfg.Bridge
	if bridge == "" {
		bridge = DefaultBridge
	}
	if len(changes) == 0 {
		fmt.Fprintf(out, "bridge %s is up to date\n", bridge)
	} else {
		fmt.Fprintf(out, "bridge %s: %d changes applied\n", bridge, len(changes))
	}
	return nil
}
