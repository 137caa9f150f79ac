#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian 12 machine (as
# root): Open vSwitch (used privately by the lab; the system service is
# never started), packet tools, and Go if it is missing from PATH.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ovs-vswitchd || need+=(openvswitch-switch openvswitch-common)
have tcpdump      || need+=(tcpdump)
have ethtool      || need+=(ethtool)
have arping       || need+=(arping)
have ip           || need+=(iproute2)
have ping         || need+=(iputils-ping)
have nc           || need+=(netcat-openbsd)
have iperf3       || need+=(iperf3)
have bc           || need+=(bc)
[ -x /usr/bin/python3 ] || need+=(python3)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: need root to install: ${need[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${need[*]}"
  # Keep package scripts from starting the system OVS service: the lab runs
  # its own private instances.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    guard=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d
fi

if ! have go && [ -x /usr/local/go/bin/go ]; then
  echo "install-deps: Go is at /usr/local/go/bin; add it to PATH" >&2
fi
have go || { echo "install-deps: Go toolchain not found" >&2; exit 1; }
echo "install-deps: ok ($(ovs-vswitchd --version | head -1))"
