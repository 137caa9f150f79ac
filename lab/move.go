package lab

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sirupsen/logrus"
)

// MoveOpts tunes MoveVM.
type MoveOpts struct {
	// MakeBeforeBreak plugs the VM into the destination before it leaves
	// the source, as a live migration does. A veth end lives in one
	// namespace only, so the destination gets a new veth pair per NIC: its
	// host end is plugged into the destination's br-int (new device name,
	// same iface-id and attached-mac) while the VM end waits in the VM's
	// namespace, down (the paused guest on the destination): the
	// destination port exists but has no carrier and carries no traffic,
	// and the VM still talks through the source. After Overlap the VM
	// switches over: each old VM-side device is deleted (so its source
	// port loses its device, as when the source QEMU exits), the waiting
	// one takes its name (eth0, ...), addresses and routes and comes up;
	// then the source ports are deleted. The VM keeps its namespace, MACs,
	// addresses and iface-ids, but its devices are new (new ifindex, empty
	// neighbour cache; a capture on them ends).
	//
	// Without it the move is break-before-make and keeps the devices: the
	// source ports are deleted, then each NIC's host-side veth end moves
	// to the destination host's namespace (`ip link set DEV netns ...`)
	// and is plugged into its br-int with the same iface-id; the VM's
	// devices only lose their carrier meanwhile. At no time do both hosts
	// hold a port with the VM's iface-ids.
	MakeBeforeBreak bool
	// Overlap is how long, with MakeBeforeBreak, both hosts hold ports
	// with the VM's iface-ids before the VM switches (0: only as long as
	// the steps take).
	Overlap time.Duration
	// Announce has the VM send one RARP broadcast from each NIC once it
	// is up at the destination, as QEMU announces a migrated guest.
	Announce bool
}

// MoveResult times a MoveVM.
type MoveResult struct {
	From, To string
	Took     time.Duration // the whole move
	// LinkDown is how long the VM had no path to a switch: from the first
	// of its NICs losing it (break-before-make: its source ports deleted;
	// make-before-break: its old devices deleted) to the last being up on
	// the destination's br-int.
	LinkDown time.Duration
	// Overlap is how long ports with the VM's iface-ids existed on both
	// hosts' br-int (MakeBeforeBreak; else 0).
	Overlap time.Duration
}

// MoveVM moves a VM with all its NICs to another host (see MoveOpts). On
// error the VM may be half moved; RemoveVM and Down still remove all of it.
// The policy's placement of its NICs is the caller's to change.
func (l *Lab) MoveVM(ctx context.Context, name, toHost string, o MoveOpts) (MoveResult, error) {
	v := l.VM(name)
	if v == nil {
		return MoveResult{}, fmt.Errorf("lab %s: no VM %q", l.name, name)
	}
	to, err := l.hostByName(toHost)
	if err != nil {
		return MoveResult{}, fmt.Errorf("vm %s: move: %w", name, err)
	}
	v.ops.Lock()
	defer v.ops.Unlock()
	from := v.Host()
	if from == to {
		return MoveResult{}, fmt.Errorf("vm %s: already on host %s", name, toHost)
	}
	res := MoveResult{From: from.name, To: to.name}
	t0 := time.Now()
	if o.MakeBeforeBreak {
		err = v.moveMakeBeforeBreak(ctx, from, to, o, &res)
	} else {
		err = v.moveBreakBeforeMake(ctx, from, to, &res)
	}
	if err == nil && o.Announce {
		for _, n := range v.NICs() {
			if err = v.SendFrameOn(ctx, n.Iface, rarpAnnounce(n)); err != nil {
				break
			}
		}
	}
	res.Took = time.Since(t0)
	if err != nil {
		return res, fmt.Errorf("vm %s: move %s -> %s: %w", name, from.name, to.name, err)
	}
	l.log.WithFields(logrus.Fields{"vm": name, "from": from.name, "to": to.name, "make_before_break": o.MakeBeforeBreak,
		"took": res.Took.Round(time.Millisecond), "link_down": res.LinkDown.Round(time.Millisecond)}).Info("VM moved")
	return res, nil
}

// setHost records that the VM's ports are now on h; rename maps old
// host-side devices to new ones (make-before-break).
func (v *VM) setHost(h *Host, rename map[string]string) error {
	l := v.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	v.host = h
	if d, ok := rename[v.nic]; ok {
		v.nic = d
	}
	if s := l.st.vm(v.name); s != nil {
		s.Host = h.name
		for _, n := range s.nics() {
			if d, ok := rename[n.Dev]; ok {
				s.setNIC(n.Name, func(dev *string, _ *int) { *dev = d })
			}
		}
	}
	return l.saveLocked()
}

func (v *VM) moveBreakBeforeMake(ctx context.Context, from, to *Host, res *MoveResult) error {
	l := v.lab
	nics := v.NICs()
	var devs []string
	for _, n := range nics {
		devs = append(devs, n.Dev)
	}
	if err := detach(ctx, from, devs); err != nil {
		return err
	}
	down := time.Now()
	// Record where the devices go before they go.
	l.mu.Lock()
	for i, d := range l.st.Devices {
		if d.Netns == from.netns && slices.Contains(devs, d.Name) {
			l.st.Devices[i].Netns = to.netns
		}
	}
	err := l.saveLocked()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	for _, d := range devs {
		if _, err := ip(ctx, from.netns, "link", "set", "dev", d, "netns", to.netns); err != nil {
			return err
		}
	}
	if err := v.setHost(to, nil); err != nil {
		return err
	}
	for _, d := range devs {
		if _, err := ip(ctx, to.netns, "link", "set", "dev", d, "up"); err != nil {
			return err
		}
	}
	if err := v.attach(ctx, to, nics); err != nil {
		return err
	}
	res.LinkDown = time.Since(down)
	return nil
}

func (v *VM) moveMakeBeforeBreak(ctx context.Context, from, to *Host, o MoveOpts, res *MoveResult) error {
	l := v.lab
	old := v.NICs()
	// Reserve and record the destination's devices.
	l.mu.Lock()
	nics := slices.Clone(old)
	tmp := make([]string, len(nics))
	rename := map[string]string{}
	for i := range nics {
		dev, _, err := l.nextDevLocked()
		if err != nil {
			l.mu.Unlock()
			return err
		}
		rename[nics[i].Dev] = dev
		nics[i].Dev = dev
		tmp[i] = "m" + nics[i].Iface
		l.st.Devices = append(l.st.Devices, deviceState{Netns: to.netns, Name: dev}, deviceState{Netns: v.netns, Name: tmp[i]})
	}
	err := l.saveLocked()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	// Until the switch, a failure leaves the VM on the source as it was.
	undo := func(err error) error {
		uctx := context.WithoutCancel(ctx)
		var devs []string
		for _, n := range nics {
			devs = append(devs, n.Dev)
		}
		if derr := detach(uctx, to, devs); derr != nil {
			l.log.WithError(derr).Warn("undo a failed move")
		}
		for _, d := range tmp {
			if ok, _ := linkExists(uctx, v.netns, d); ok {
				if _, derr := ip(uctx, v.netns, "link", "del", "dev", d); derr != nil {
					l.log.WithError(derr).Warn("undo a failed move")
				}
			}
		}
		l.mu.Lock()
		l.st.Devices = slices.DeleteFunc(l.st.Devices, func(d deviceState) bool {
			return (d.Netns == to.netns && slices.Contains(devs, d.Name)) || (d.Netns == v.netns && slices.Contains(tmp, d.Name))
		})
		_ = l.saveLocked()
		l.mu.Unlock()
		return err
	}
	for i, n := range nics {
		if err := v.makeVeth(ctx, to, n.Dev, tmp[i], n); err != nil {
			return undo(err)
		}
	}
	if err := v.attach(ctx, to, nics); err != nil {
		return undo(err)
	}
	added := time.Now()
	if o.Overlap > 0 {
		select {
		case <-ctx.Done():
			return undo(ctx.Err())
		case <-time.After(o.Overlap):
		}
	}

	// Switch over.
	down := time.Now()
	for i, n := range nics {
		if _, err := ip(ctx, v.netns, "link", "del", "dev", n.Iface); err != nil {
			return err
		}
		if _, err := ip(ctx, v.netns, "link", "set", "dev", tmp[i], "name", n.Iface); err != nil {
			return err
		}
		if err := v.configure(ctx, n.Iface, n, i == 0); err != nil {
			return err
		}
	}
	res.LinkDown = time.Since(down)
	if err := v.setHost(to, rename); err != nil {
		return err
	}
	l.mu.Lock()
	l.st.Devices = slices.DeleteFunc(l.st.Devices, func(d deviceState) bool {
		_, old := rename[d.Name]
		return (d.Netns == from.netns && old) || (d.Netns == v.netns && slices.Contains(tmp, d.Name))
	})
	err = l.saveLocked()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	var devs []string
	for _, n := range old {
		devs = append(devs, n.Dev)
	}
	if err := detach(ctx, from, devs); err != nil {
		return err
	}
	res.Overlap = time.Since(added)
	return nil
}

// rarpAnnounce is the frame QEMU broadcasts to announce a migrated NIC: a
// RARP "request reverse" with the NIC's MAC as sender and target.
func rarpAnnounce(n VMNIC) []byte {
	f := make([]byte, 60)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], n.MAC)
	f[12], f[13] = 0x80, 0x35 // RARP
	copy(f[14:], []byte{0, 1, 8, 0, 6, 4, 0, 3})
	copy(f[22:28], n.MAC)
	copy(f[32:38], n.MAC)
	return f
}
