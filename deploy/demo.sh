#!/usr/bin/env bash
# make demo: two espx gateways in network namespaces with an on-demand
# (trap) IKEv2 tunnel between them, and no tunnel up at the start:
#
#   hostA ---- gwA ======== gwB ---- hostB
#   198.51.100.10   192.0.2.1  192.0.2.2   203.0.113.20
#
# The first ping from hostA to hostB hits gwA's trap policy: gwA's data
# plane holds the packet and raises an acquire, gwA negotiates the IKE and
# child SAs with gwB, and the held ping goes through. The script then shows
# the SAs and per-core counters with espxctl, lets the tunnel close when
# idle and brings it back with the next ping. It removes every namespace
# and process it made when it ends, however it ends. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "make demo needs root: it creates network namespaces and attaches XDP programs" >&2
	exit 1
fi
for c in ip ping ethtool; do
	command -v "$c" >/dev/null || { echo "missing $c: run .ci/deps (make deps)" >&2; exit 1; }
done

P="espxdemo$$"
TMP="$(mktemp -d /tmp/espx-demo.XXXXXX)"
NS=()
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	for ns in "${NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "building espxd and espxctl"
go build -o "$TMP/espxd" ./cmd/espxd
go build -o "$TMP/espxctl" ./cmd/espxctl

say "namespaces $P-{hostA,gwA,gwB,hostB}"
for n in hostA gwA gwB hostB; do
	ip netns add "$P-$n"
	NS+=("$P-$n")
	ip -n "$P-$n" link set lo up
done
veth() { # nsA ifA nsB ifB
	ip -n "$P-$1" link add "$2" type veth peer name "$4" netns "$P-$3"
	ip -n "$P-$1" link set "$2" up
	ip -n "$P-$3" link set "$4" up
	# XDP sees what the kernel hands the device: no offloaded checksums
	# or segments.
	for side in "$1 $2" "$3 $4"; do
		set -- $side
		ip netns exec "$P-$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 || true
	done
}
veth hostA eth0 gwA prot
veth gwA unprot gwB unprot
veth hostB eth0 gwB prot
ip -n "$P-hostA" addr add 198.51.100.10/24 dev eth0
ip -n "$P-hostA" route add default via 198.51.100.1
ip -n "$P-gwA" addr add 198.51.100.1/24 dev prot
ip -n "$P-gwA" addr add 192.0.2.1/24 dev unprot
ip -n "$P-gwB" addr add 192.0.2.2/24 dev unprot
ip -n "$P-gwB" addr add 203.0.113.1/24 dev prot
ip -n "$P-hostB" addr add 203.0.113.20/24 dev eth0
ip -n "$P-hostB" route add default via 203.0.113.1

conf() { # name local remote localnet remotenet
	cat >"$TMP/$1.toml" <<CONF
[dataplane]
protected = "prot"
unprotected = "unprot"
default-policy = "discard"

[control]
socket = "$TMP/$1.sock"

[metrics]
listen = "127.0.0.1:9560"

[[connection]]
name = "to-peer"
local = "$2"
remote = "$3"
local-id = "@$1.example"
remote-id = "@$6.example"
psk = "espx demo key: change me in real life"
ike = "aes128gcm16-prfsha256-x25519"
esp = "aes128gcm16"
local-ts = ["$4"]
remote-ts = ["$5"]
start-action = "trap"
inactivity = "5s"   # short for the demo; the default is 15m
dpd-delay = "10s"
CONF
}
conf gwA 192.0.2.1 192.0.2.2 198.51.100.0/24 203.0.113.0/24 gwB
conf gwB 192.0.2.2 192.0.2.1 203.0.113.0/24 198.51.100.0/24 gwA

say "starting espxd in gwA and gwB (trap policies, no SAs)"
for g in gwA gwB; do
	ip netns exec "$P-$g" "$TMP/espxd" -config "$TMP/$g.toml" >"$TMP/$g.log" 2>&1 &
	PIDS+=($!)
done
for g in gwA gwB; do
	for _ in $(seq 100); do
		"$TMP/espxctl" -socket "$TMP/$g.sock" sas >/dev/null 2>&1 && break
		sleep 0.1
	done
done
ctl() { "$TMP/espxctl" -socket "$TMP/$1.sock" "${@:2}"; }
echo "gwA SAs:"; ctl gwA sas
echo "gwA security policies (espxctl policies): the trap waits for traffic"
ctl gwA policies | sed 's/^/  /'

say "ping hostA -> hostB: the first packet brings the tunnel up"
ip netns exec "$P-hostA" ping -n -c 5 -i 0.2 203.0.113.20

say "what gwA logged"
grep -E 'acquire|initiating|established|child SA' "$TMP/gwA.log" | sed 's/^/  /'

say "IKE SAs (espxctl ike)"
ctl gwA ike

say "SAs in the data plane (espxctl sas)"
echo "gwA:"; ctl gwA sas
echo "gwB:"; ctl gwB sas
echo "gwA, espxctl -details sas:"; ctl gwA -details sas | sed 's/^/  /'

say "gwA per-core counters (espxctl counters)"
ctl gwA counters

say "Prometheus metrics of gwA (excerpt)"
ip netns exec "$P-gwA" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9560; printf "GET /metrics HTTP/1.0\r\n\r\n" >&3; cat <&3' |
	grep -E '^espx_dataplane_(encrypted|decrypted)_packets_total|^espx_dataplane_acquires_raised_total|^espx_dataplane_sas' | sed 's/^/  /'

say "idle: the tunnel closes after 5 s without traffic"
for _ in $(seq 40); do
	[ "$(ctl gwA sas | wc -l)" -le 1 ] && break
	sleep 0.25
done
grep -E 'closing idle|IKE SA deleted' "$TMP/gwA.log" "$TMP/gwB.log" | sed 's/^[^:]*://; s/^/  /'
echo "gwA SAs:"; ctl gwA sas

say "the next packet brings it back"
ip netns exec "$P-hostA" ping -n -c 2 -i 0.2 203.0.113.20
ctl gwA ike

say "done; removing the namespaces"
