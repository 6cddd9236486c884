#!/usr/bin/env bash
# The seed scenario end to end, narrated: a "physical host" running a
# private Open vSwitch and vpcflow, two VMs plugged into br-test, a Linux
# bridge with a container behind each VM, and nothing but REST calls to
# make the containers reach each other. Everything lives in network
# namespaces this script creates and removes again.
set -euo pipefail

BIN=${VPCFLOW_BIN:-$(cd "$(dirname "$0")/.." && pwd)/bin/vpcflow}
ID=vfd$$
WORK=$(mktemp -d /tmp/vpcflow-demo.XXXXXX)
PHYS=$ID-phys
NAMESPACES=()
PIDS=()

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '%s\n' "$*"; }
run() { printf '\033[36m$ %s\033[0m\n' "$*"; "$@"; }
inphys() { ip netns exec "$PHYS" "$@"; }
# runp shows and runs a command inside the physical host's namespace.
runp() { printf '\033[36m[%s]$ %s\033[0m\n' "$PHYS" "$*"; ip netns exec "$PHYS" "$@"; }

cleanup() {
	set +e
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for f in "$WORK"/ovs/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	sleep 0.5
	for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
	if [ -n "${KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "make demo needs root (network namespaces, Open vSwitch)"; exit 1; }
[ -x "$BIN" ] || { echo "no $BIN: run make build"; exit 1; }

netns() { ip netns add "$1"; NAMESPACES+=("$1"); ip netns exec "$1" ip link set lo up; }

bold "1. The physical host: a private Open vSwitch (userspace datapath) in namespace $PHYS"
netns "$PHYS"
D=$WORK/ovs
mkdir -p "$D"
export OVS_RUNDIR=$D
run ovsdb-tool create "$D/conf.db" /usr/share/openvswitch/vswitch.ovsschema
inphys ovsdb-server "$D/conf.db" --remote=punix:"$D/db.sock" --pidfile="$D/ovsdb-server.pid" --detach --log-file="$D/ovsdb-server.log"
VSCTL=(ovs-vsctl --db=unix:"$D/db.sock" --timeout=10)
"${VSCTL[@]}" --no-wait init
inphys env OVS_RUNDIR="$D" ovs-vswitchd unix:"$D/db.sock" --pidfile="$D/ovs-vswitchd.pid" --detach --log-file="$D/ovs-vswitchd.log"
run "${VSCTL[@]}" add-br br-test -- set bridge br-test datapath_type=netdev

bold "2. Two VMs, as in the seed: ens8 on br-test, a Linux bridge and a container inside each"
vm() { # name port ip mac bridge bridge_cidr container container_ip gw
	local name=$ID-$1 ctr=$ID-$7
	netns "$name"
	netns "$ctr"
	ip link add "$2" type veth peer name ens8 netns "$name"
	ip netns exec "$name" ip link set ens8 address "$4"
	ip link set "$2" netns "$PHYS"
	inphys ip link set "$2" up
	ip netns exec "$name" ip link set ens8 up
	inphys ethtool -K "$2" tx off >/dev/null
	ip netns exec "$name" ethtool -K ens8 tx off >/dev/null
	run "${VSCTL[@]}" add-port br-test "$2" -- set interface "$2" external_ids:attached-mac="$4"
	ip netns exec "$name" ip addr add "$3/24" dev ens8
	ip netns exec "$name" ip route add default via 10.10.10.1
	ip netns exec "$name" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$name" ip link add "$5" type bridge
	ip netns exec "$name" ip addr add "$6" dev "$5"
	ip netns exec "$name" ip link set "$5" up
	ip netns exec "$name" ip link add veth0 type veth peer name eth0 netns "$ctr"
	ip netns exec "$name" ip link set veth0 master "$5" up
	ip netns exec "$ctr" ip addr add "$8" dev eth0
	ip netns exec "$ctr" ip link set eth0 up
	ip netns exec "$ctr" ip route add default via "$9"
	ip netns exec "$ctr" ethtool -K eth0 tx off >/dev/null
	say "   $1: ens8 $3/24 ($4) on br-test port $2; $5 $6; container $7 at $8 via $9"
}
vm test1 vnet1 10.10.10.11 52:58:00:98:c0:81 vpc1 172.18.1.1/24 testns1 172.18.1.3/24 172.18.1.1
vm test2 vnet3 10.10.10.12 52:58:00:98:c0:92 vpc2 172.18.3.1/24 testns2 172.18.3.4/24 172.18.3.1

bold "3. Start vpcflow next to OVS and point br-test at it"
# ip netns exec execs vpcflow in place, so $! is vpcflow's own PID.
ip netns exec "$PHYS" "$BIN" serve --init --openflow 127.0.0.1:6653 --listen 127.0.0.1:8080 \
	--ovsdb unix:"$D/db.sock" --data-dir "$WORK/vpcflow-data" >"$WORK/vpcflow.log" 2>&1 &
PIDS+=($!)
say "   vpcflow serve --init --ovsdb unix:$D/db.sock  (pid $!, log $WORK/vpcflow.log)"
for _ in $(seq 50); do inphys curl -sf http://127.0.0.1:8080/healthz >/dev/null && break; sleep 0.1; done
runp "$BIN" bridge setup br-test --ovsdb unix:"$D/db.sock" --controller tcp:127.0.0.1:6653
for _ in $(seq 100); do inphys curl -s http://127.0.0.1:8080/v1/switches | grep -q dpid && break; sleep 0.1; done
runp "$BIN" switches

say ""
say "   Before any REST call the VMs cannot reach anything: the fabric only drops."
run ip netns exec "$ID-testns1" ping -c 1 -W 1 172.18.3.4 || true

api() { # method path [json]
	printf '\033[36m$ curl -X %s -H '\''Content-Type: application/json'\'' http://127.0.0.1:8080%s %s\033[0m\n' "$1" "$2" "${3:+-d '$3'}"
	inphys curl -sS -X "$1" -H 'Content-Type: application/json' ${3:+-d "$3"} "http://127.0.0.1:8080$2"
	echo
}
bold "4. Register the VPC, the vSwitch, and per VM a host and its container subnet (route entry)"
api POST /v1/vpcs '{"name":"vpc-seed"}'
api POST /v1/vpcs/vpc-seed/vswitches '{"name":"vsw-a","cidr":"10.10.10.0/24","gateway":"10.10.10.1"}'
api POST /v1/vpcs/vpc-seed/hosts '{"name":"test1","vswitch":"vsw-a","ip":"10.10.10.11","mac":"52:58:00:98:c0:81","bridge":"br-test","interface":"vnet1"}'
api POST /v1/vpcs/vpc-seed/subnets '{"cidr":"172.18.1.0/24","host":"test1"}'
api POST /v1/vpcs/vpc-seed/hosts '{"name":"test2","vswitch":"vsw-a","ip":"10.10.10.12","mac":"52:58:00:98:c0:92","bridge":"br-test","interface":"vnet3"}'
api POST /v1/vpcs/vpc-seed/subnets '{"cidr":"172.18.3.0/24","host":"test2"}'

bold "5. Container to container across the fabric: ttl=62 (one hop in each VM, none in the fabric)"
say "   (The failed ping in step 3 left test1's ARP entry for its gateway FAILED; Linux would"
say "   only retry after its 1 s timer, so flush it rather than show a slow first reply.)"
run ip netns exec "$ID-test1" ip neigh flush dev ens8
run ip netns exec "$ID-testns1" ping -c 3 172.18.3.4
run ip netns exec "$ID-test1" ping -c 1 10.10.10.12

bold "6. The VMs' ARP tables: every neighbour, the gateway included, at ee:ff:ff:ff:ff:ff"
run ip netns exec "$ID-test1" ip neigh show dev ens8
run ip netns exec "$ID-test2" ip neigh show dev ens8

bold "7. The flows vpcflow installed (see docs/pipeline.md)"
run ovs-ofctl -O OpenFlow13 dump-flows unix:"$D/br-test.mgmt"

bold "Done — cleaning up namespaces, OVS and vpcflow"
