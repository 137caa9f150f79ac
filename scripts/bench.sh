#!/usr/bin/env bash
# Reproducible figures for BENCHMARKS.md: compiler benchmarks, the OpenFlow
# codec and a 100k-flow bundle on real OVS, and the demo lab's time from
# `lab up` to all pings passing. Prints the median of RUNS runs of each.
# Needs root (lab, OVS). Usage: RUNS=5 bash scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
RUNS=${RUNS:-5}
out=$(mktemp -d)
trap 'rm -rf "$out"; bin/openvpc lab down --name bench >/dev/null 2>&1 || true' EXIT

# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) exit; if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# Internet gateway throughput: iperf3 TCP for 10 s, VM → internet host through
# the gateway host (tunnel, 1:1 NAT, uplink) against VM → VM across hosts.
igw() {
  for i in $(seq "$RUNS"); do
    go test -count=1 -run TestGatewayThroughput -v ./e2e/igw -args -perf 2>/dev/null | grep RESULT >> "$out/igw.txt"
  done
  inet=$(sed -n 's/.*vm-internet-gbps=\([0-9.]*\).*/\1/p' "$out/igw.txt" | median)
  vmvm=$(sed -n 's/.*vm-vm-gbps=\([0-9.]*\).*/\1/p' "$out/igw.txt" | median)
  echo
  echo "iperf3 TCP, 10 s: VM → internet host through the gateway host: median $inet Gbit/s; VM → VM across hosts: $vmvm Gbit/s (runs: $(grep -c RESULT "$out/igw.txt"))"
}

# Tunnels: iperf3 TCP for 10 s per encapsulation against a plain veth and an
# OVS NORMAL bridge, and the live-migration gap (median of 5 moves per run).
tunnels() {
  for i in $(seq "$RUNS"); do
    go test -count=1 -run TestThroughputAndMigrationGap -v ./e2e/tunnels -args -perf 2>/dev/null | grep RESULT >> "$out/tunnels.txt"
  done
  echo
  echo "| path (iperf3 TCP 10 s, MTU 1450) | median Gbit/s |"
  echo "|---|---|"
  for k in gre geneve vxlan veth ovs-normal; do
    echo "| $k | $(sed -n "s/.* $k-gbps=\([0-9.]*\).*/\1/p" "$out/tunnels.txt" | median) |"
  done
  echo "live migration gap under a 10 ms ping: median $(sed -n 's/.*gap-ms=\([0-9]*\).*/\1/p' "$out/tunnels.txt" | median) ms"
}

echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# date: $(date -u +%Y-%m-%dT%H:%MZ), $(go version | cut -d' ' -f3), $(ovs-vswitchd --version | head -1)"
echo "# runs: $RUNS (median)"
echo
# ONLY=igw or ONLY=tunnels runs just that section.
case "${ONLY:-}" in
  igw) igw; exit 0 ;;
  tunnels) tunnels; exit 0 ;;
esac

go test -run '^$' -bench 'BenchmarkCompile' -benchmem -count "$RUNS" ./pipelines > "$out/compile.txt"
go test -run '^$' -bench 'BenchmarkEncode100k|BenchmarkDecode100k' -count "$RUNS" ./ofrules > "$out/codec.txt"
go test -run '^$' -bench 'BenchmarkBundle100kOVS' -benchtime 1x -count "$RUNS" ./ofrules/ofconn > "$out/bundle.txt"

echo "| benchmark | median time/op | flows per host | security-group / route flows | flow-mods per change |"
echo "|---|---|---|---|---|"
# metric NAME UNIT FILE: the median of a benchmark's reported metric
metric() { awk -v n="$1" -v u="$2" '$1==n {for (i=1;i<=NF;i++) if ($i==u) print $(i-1)}' "$3" | median; }
for f in compile codec bundle; do
  for name in $(awk '/^Benchmark/ {print $1}' "$out/$f.txt" | sort -u); do
    t=$(metric "$name" ns/op "$out/$f.txt")
    fl=$(metric "$name" flows/host "$out/$f.txt")
    sg=$(metric "$name" sg-flows "$out/$f.txt")
    [ -n "$sg" ] || sg=$(metric "$name" route-flows "$out/$f.txt")
    mods=$(metric "$name" mods/change "$out/$f.txt")
    printf '| %s | %.3f ms | %s | %s | %s |\n' "${name%-*}" "$(echo "$t / 1000000" | bc -l)" "${fl:--}" "${sg:--}" "${mods:--}"
  done
done
echo

go build -o bin/openvpc ./cmd/openvpc
for i in $(seq "$RUNS"); do
  bin/openvpc lab up -f examples/demo.yaml --name bench --wait-pings > "$out/lab$i.txt" 2>/dev/null
  bin/openvpc lab down --name bench >/dev/null 2>&1
  sed -n 's/.*ping each other \([0-9.]*\)\(m\?s\) after.*/\1 \2/p' "$out/lab$i.txt" |
    awk '{ if ($2=="ms") print $1; else print $1*1000 }' >> "$out/lab.txt"
done
echo "demo lab (3 hosts, 8 VMs, 2 VPCs): lab up → all $(grep -o 'all [0-9]* VM pairs' "$out/lab1.txt" | awk '{print $2}') VM pairs pinging: median $(median < "$out/lab.txt") ms (runs: $(paste -sd' ' "$out/lab.txt"))"

# Convergence on real OVS with dummy ports (the brief's yardstick shapes, with their security groups).
for i in $(seq "$RUNS"); do
  go test -count=1 -run TestScaleConvergence -v ./e2e -args -scale 2>/dev/null | grep RESULT >> "$out/scale.txt"
done
echo
echo "| hosts × ports, groups × rules | controller start → all in sync | switch connect → flows installed | flows/host | one new NIC → its flows installed | one rule added → on the switch | one rule removed |"
echo "|---|---|---|---|---|---|---|"
for shape in "2 200" "3 500"; do
  set -- $shape
  sel=$(grep "hosts=$1 ports/host=$2 " "$out/scale.txt")
  ms() { echo "$sel" | sed -n "s/.* $1=\([0-9.]*\)\(m\?s\).*/\1 \2/p" | awk '{ if ($2=="ms") print $1; else print $1*1000 }' | median; }
  fl=$(echo "$sel" | head -1 | sed -n 's/.*flows\/host=map\[[^:]*:\([0-9]*\).*/\1/p')
  g=$(echo "$sel" | head -1 | sed -n 's/.*groups=\([0-9x]*\).*/\1/p')
  echo "| $1 × $2, $g | $(ms converge) ms | $(ms program) ms | $fl | $(ms one-change) ms | $(ms rule-add) ms | $(ms rule-remove) ms |"
done

# API (embedded etcd store): write throughput and write → flows latency.
for i in $(seq "$RUNS"); do
  go test -count=1 -run TestAPIPerf -v ./e2e/storemode -args -perf 2>/dev/null | grep RESULT >> "$out/api.txt"
done
rate=$(sed -n 's/.*rate=\([0-9.]*\)\/s.*/\1/p' "$out/api.txt" | median)
med=$(sed -n 's/.*median=\([0-9.]*\)ms.*/\1/p' "$out/api.txt" | median)
p99=$(sed -n 's/.*p99=\([0-9.]*\)ms.*/\1/p' "$out/api.txt" | median)
echo
echo "API: $rate NIC creates/s with 8 concurrent clients; API write → flow on a lab switch: median $med ms, p99 $p99 ms (200 changes; medians over runs)"

igw
tunnels
