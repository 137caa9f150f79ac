package main

import (
	"strings"
	"testing"
)

func TestCLIInternetGatewaysAndPublicIPs(t *testing.T) {
	e := newCLIEnv(t)
	// The admin makes h1 a gateway host and defines a pool.
	e.fails("uplink.next_hop", "admin", cmd("update"), "--set", "uplink.interface=eth1", "--set", "uplink.ip=198.51.100.2/24",
		"--set", "uplink.next_hop=192.0.2.1", "host", "h1")
	e.ok("admin", cmd("update"), "--set", "uplink.interface=eth1", "--set", "uplink.ip=198.51.100.2/24",
		"--set", "uplink.next_hop=198.51.100.1", "host", "h1")
	if n := e.built(); len(n.GatewayHosts) != 1 || n.Hosts["h1"].Uplink == nil {
		t.Fatal("h1 is not a gateway host")
	}
	if out := e.ok("admin", cmd("get"), "host", "h1"); !hasLine(out, "h1 172.31.0.11 netdev vxlan 1500 1450 - interface=eth1,ip=198.51.100.2/24,next_hop=198.51.100.1 -") {
		t.Fatalf("get host:\n%s", out)
	}
	out := e.ok("admin", cmd("create"), "--cidr", "203.0.113.0/29", "public-ip-pool", "pub")
	if !hasLine(out, "NAME CIDR ALLOCATED FREE") || !hasLine(out, "pub 203.0.113.0/29 0 6") {
		t.Fatalf("create public-ip-pool printed:\n%s", out)
	}
	e.fails("needs an admin token", "acme", cmd("create"), "--cidr", "192.0.2.0/24", "public-ip-pool", "mine")
	if out := e.ok("globex", cmd("get"), "public-ip-pools"); !hasLine(out, "pub 203.0.113.0/29 0 6") {
		t.Fatalf("get public-ip-pools:\n%s", out)
	}

	// A gateway, attached; a default route to it.
	e.ok("acme", cmd("create"), "--cidr", "10.2.0.0/16", "vpc", "app")
	e.ok("acme", cmd("create"), "--vpc", "app", "--cidr", "10.2.1.0/24", "subnet", "app-a")
	e.ok("acme", cmd("create"), "--set", "subnet=app-a", "nic", "web1")
	e.ok("acme", cmd("create"), "--set", "subnet=app-a", "nic", "web2")
	out = e.ok("acme", cmd("create"), "internet-gateway", "igw1")
	if !hasLine(out, "NAME ACCOUNT VPC STATE") || !hasLine(out, "igw1 acme - detached") {
		t.Fatalf("create internet-gateway printed:\n%s", out)
	}
	e.fails("--vpc is required", "acme", cmd("attach-internet-gateway"), "igw1")
	e.fails(`internet_gateway "igw1" not found`, "globex", cmd("attach-internet-gateway"), "--vpc", "app", "igw1")
	e.fails(`vpc "app" does not exist`, "globex", cmd("create"), "--vpc", "app", "igw", "gigw")
	e.fails(`flags go before the arguments`, "acme", cmd("attach-internet-gateway"), "igw1", "--vpc", "app")
	out = e.ok("acme", cmd("attach-internet-gateway"), "--vpc", "app", "igw1")
	if !hasLine(out, "igw1 acme app attached") {
		t.Fatalf("attach-internet-gateway printed:\n%s", out)
	}
	e.fails(`vpc "app" already has internet gateway "igw1"`, "acme", cmd("create"), "--vpc", "app", "internet-gateway", "igw2")
	e.fails(`internet gateway "nosuch" does not exist`, "acme", cmd("create-route"), "-d", "0.0.0.0/0", "--gateway", "nosuch", "app-main")
	e.fails("give one target", "acme", cmd("create-route"), "-d", "0.0.0.0/0", "--gateway", "igw1", "--blackhole", "app-main")
	out = e.ok("acme", cmd("create-route"), "--destination", "0.0.0.0/0", "--gateway", "igw1", "app-main")
	if !hasLine(out, "0.0.0.0/0 gateway igw1 active") {
		t.Fatalf("create-route printed:\n%s", out)
	}
	e.ok("acme", cmd("replace-route"), "--destination", "0.0.0.0/0", "--gateway", "igw1", "app-main")

	// Public IPs: allocated, named after their address unless named.
	out = e.ok("acme", cmd("allocate-public-ip"), "--pool", "pub")
	if !hasLine(out, "NAME ADDRESS POOL ACCOUNT NIC PRIVATE_IP GATEWAY_HOST STATE") ||
		!hasLine(out, "eip-203-0-113-1 203.0.113.1 pub acme - - h1 unreachable (not associated)") {
		t.Fatalf("allocate-public-ip printed:\n%s", out)
	}
	e.ok("acme", cmd("allocate-public-ip"), "--pool", "pub", "web-ip")
	e.fails("--pool is required", "acme", cmd("allocate-public-ip"), "x")
	e.fails("only an admin may choose it", "acme", cmd("allocate-public-ip"), "--pool", "pub", "--address", "203.0.113.6", "x")
	e.ok("admin", cmd("allocate-public-ip"), "--pool", "pub", "--address", "203.0.113.6", "--account", "globex", "g-ip")

	// Association.
	e.fails("--nic is required", "acme", cmd("associate-public-ip"), "web-ip")
	e.fails("flags go before the arguments", "acme", cmd("associate-public-ip"), "web-ip", "--nic", "web1")
	out = e.ok("acme", cmd("associate-public-ip"), "--nic", "web1", "web-ip")
	if !hasLine(out, "web-ip 203.0.113.2 pub acme web1 10.2.1.4 h1 reachable") {
		t.Fatalf("associate-public-ip printed:\n%s", out)
	}
	e.fails(`10.2.1.4 of nic "web1" already has public IP "web-ip"`, "acme", cmd("associate-public-ip"), "--nic", "web1", "eip-203-0-113-1")
	e.fails("allow reassociation", "acme", cmd("associate-public-ip"), "--nic", "web2", "web-ip")
	e.fails(`nic "web1" does not exist`, "globex", cmd("associate-public-ip"), "--nic", "web1", "g-ip")
	e.fails(`public_ip "web-ip" not found`, "globex", cmd("associate-public-ip"), "--nic", "g1", "web-ip")
	out = e.ok("acme", cmd("associate-public-ip"), "--nic", "web2", "--allow-reassociation", "web-ip")
	if !hasLine(out, "web-ip 203.0.113.2 pub acme web2 10.2.1.5 h1 reachable") {
		t.Fatalf("reassociation printed:\n%s", out)
	}
	out = e.ok("acme", cmd("get"), "public-ips")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !hasLine(lines[1], "eip-203-0-113-1") || !hasLine(lines[2], "web-ip") {
		t.Fatalf("get public-ips:\n%s", out)
	}
	if out := e.ok("acme", cmd("get"), "-o", "json", "eip", "web-ip"); !strings.Contains(out, `"reachable": true`) || !strings.Contains(out, `"gateway_host": "h1"`) {
		t.Fatalf("get -o json:\n%s", out)
	}
	if out := e.ok("acme", cmd("get"), "public-ip-pool", "pub"); !hasLine(out, "pub 203.0.113.0/29 3 3") {
		t.Fatalf("get public-ip-pool:\n%s", out)
	}

	// Release needs a disassociated public IP.
	e.fails("disassociate it first", "acme", cmd("release-public-ip"), "web-ip")
	out = e.ok("acme", cmd("disassociate-public-ip"), "web-ip")
	if !hasLine(out, "web-ip 203.0.113.2 pub acme - - h1 unreachable (not associated)") {
		t.Fatalf("disassociate-public-ip printed:\n%s", out)
	}
	e.ok("acme", cmd("release-public-ip"), "web-ip")
	e.fails(`public_ip "web-ip" not found`, "acme", cmd("get"), "public-ip", "web-ip")

	// Deleting a NIC disassociates its public IP.
	e.ok("acme", cmd("associate-public-ip"), "--nic", "web2", "eip-203-0-113-1")
	e.ok("acme", cmd("delete"), "nic", "web2")
	if out := e.ok("acme", cmd("get"), "public-ip", "eip-203-0-113-1"); !hasLine(out, "eip-203-0-113-1 203.0.113.1 pub acme - - h1 unreachable (not associated)") {
		t.Fatalf("after deleting the NIC:\n%s", out)
	}

	// The gateway is detached before it (or its VPC) goes; its route
	// stays, a blackhole.
	e.fails(`detach internet gateway "igw1" first`, "acme", cmd("delete"), "vpc", "app")
	e.fails("detach it first", "acme", cmd("delete"), "internet-gateway", "igw1")
	out = e.ok("acme", cmd("detach-internet-gateway"), "igw1")
	if !hasLine(out, "igw1 acme - detached") {
		t.Fatalf("detach-internet-gateway printed:\n%s", out)
	}
	if out := e.ok("acme", cmd("get"), "route-table", "app-main"); !hasLine(out, `0.0.0.0/0 gateway igw1 blackhole (internet gateway "igw1" is not attached to vpc "app")`) {
		t.Fatalf("get route-table after detach:\n%s", out)
	}
	if out := e.ok("acme", cmd("get"), "igws"); !hasLine(out, "igw1 acme - detached") {
		t.Fatalf("get igws:\n%s", out)
	}
	e.ok("acme", cmd("delete"), "internet-gateway", "igw1")

	// A pool with public IPs cannot go.
	e.fails(`public_ip_pool "pub" is used by public_ip "eip-203-0-113-1", public_ip "g-ip"`, "admin", cmd("delete"), "public-ip-pool", "pub")
	e.ok("acme", cmd("release-public-ip"), "eip-203-0-113-1")
	e.ok("admin", cmd("release-public-ip"), "g-ip")
	e.ok("admin", cmd("delete"), "public-ip-pool", "pub")

	// An uplink goes with "uplink=".
	e.ok("admin", cmd("update"), "--set", "uplink=", "host", "h1")
	if e.built().Hosts["h1"].Uplink != nil {
		t.Fatal("h1 kept its uplink")
	}
}

func TestCLIGatewayCommands(t *testing.T) {
	app := newApp()
	for _, name := range []string{"attach-internet-gateway", "detach-internet-gateway", "allocate-public-ip", "associate-public-ip",
		"disassociate-public-ip", "release-public-ip"} {
		if app.Command(name) == nil {
			t.Errorf("no command %s", name)
		}
	}
	out, err := runArgv(t, []string{"openvpc", "get", "--generate-bash-completion"})
	if err != nil || !strings.Contains(out, "internet-gateway") || !strings.Contains(out, "public-ip-pool") || !strings.Contains(out, "public-ip\n") {
		t.Fatalf("completion of get:\n%s", out)
	}
}
