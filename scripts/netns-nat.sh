#!/usr/bin/env bash
# A small "internet" with two home NATs, built from network namespaces on this one machine.
#
#   lk-pub (a public host, e.g. a mailbox)      198.18.0.10 ─┐
#                                                            ├─ bridge in lk-inet, 198.18.0.0/24
#   lk-nat-a: wan 198.18.0.2 ── lan 10.0.1.1 ── lk-a 10.0.1.2 │
#   lk-nat-b: wan 198.18.0.3 ── lan 10.0.2.1 ── lk-b 10.0.2.2 ┘
#
# Each NAT masquerades its LAN behind its WAN address and drops every unsolicited inbound packet
# (only replies to connections opened from inside pass). 198.18.0.0/15 is the range reserved for
# network benchmarks: no real host uses it, and nothing here is routed off this machine.
#
#   scripts/netns-nat.sh up [plain|symmetric] [forwarded]
#                                                build it (symmetric: --random-fully port mapping;
#                                                forwarded: lk-pub sits at 10.0.3.2 behind its own
#                                                NAT lk-nat-m, whose WAN is 198.18.0.10 and which
#                                                forwards TCP and UDP port 4001 to it)
#   scripts/netns-nat.sh down                    remove every namespace it made
#   scripts/netns-nat.sh check                   prove the NATs behave (outbound works, inbound dropped)
#   scripts/netns-nat.sh exec NS CMD...          run CMD inside namespace NS (pub, a, b, nat-a, nat-b, nat-m)
#
# LK_NETNS_PREFIX (default "lk") names the namespaces, so two runs can coexist. Needs root; installs
# iptables when missing (apt-get update first). Exits 77 with a reason where namespaces cannot be
# made, so a caller can report the suite as skipped rather than failed.
set -euo pipefail

P=${LK_NETNS_PREFIX:-lk}
NS_INET=$P-inet
NS_PUB=$P-pub
NS_NAT_A=$P-nat-a
NS_NAT_B=$P-nat-b
NS_NAT_M=$P-nat-m
NS_A=$P-a
NS_B=$P-b

skip() { echo "netns-nat: skipped: $*" >&2; exit 77; }

need_tools() {
  [ "$(id -u)" -eq 0 ] || skip "needs root to create network namespaces"
  command -v ip >/dev/null || skip "the ip command (iproute2) is missing"
  if ! command -v iptables >/dev/null || ! command -v ping >/dev/null; then
    command -v apt-get >/dev/null || skip "iptables or ping is missing and apt-get is not available"
    echo "netns-nat: installing iptables and ping" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables iputils-ping >/dev/null
  fi
  ip netns add "$P-probe" 2>/dev/null || skip "this machine does not allow network namespaces"
  ip netns del "$P-probe"
}

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

down() {
  for ns in "$NS_A" "$NS_B" "$NS_NAT_A" "$NS_NAT_B" "$NS_PUB" "$NS_NAT_M" "$NS_INET"; do
    ip netns del "$ns" 2>/dev/null || true
  done
}

# A veth pair from namespace $1 (interface $2, address $3) to the bridge in lk-inet.
attach_to_inet() {
  local ns=$1 ifname=$2 addr=$3
  local peer="${ns#"$P"-}"
  peer="br-${peer//-/}"
  ip link add "$ifname" netns "$ns" type veth peer name "$peer" netns "$NS_INET"
  in_ns "$NS_INET" ip link set "$peer" master br0 up
  in_ns "$ns" ip addr add "$addr/24" dev "$ifname"
  in_ns "$ns" ip link set "$ifname" up
}

# Home router $1 with WAN address $2 and LAN 10.0.$3.0/24, host $4 behind it at 10.0.$3.2.
home() {
  local nat=$1 wan=$2 n=$3 host=$4 mode=$5
  ip netns add "$nat"
  ip netns add "$host"
  in_ns "$nat" ip link set lo up
  in_ns "$host" ip link set lo up
  attach_to_inet "$nat" wan "$wan"
  ip link add lan netns "$nat" type veth peer name eth0 netns "$host"
  in_ns "$nat" ip addr add "10.0.$n.1/24" dev lan
  in_ns "$nat" ip link set lan up
  in_ns "$host" ip addr add "10.0.$n.2/24" dev eth0
  in_ns "$host" ip link set eth0 up
  in_ns "$host" ip route add default via "10.0.$n.1"
  in_ns "$nat" sysctl -qw net.ipv4.ip_forward=1
  local random=()
  [ "$mode" = symmetric ] && random=(--random-fully)
  in_ns "$nat" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE "${random[@]}"
  in_ns "$nat" iptables -P FORWARD DROP
  in_ns "$nat" iptables -A FORWARD -i lan -o wan -j ACCEPT
  in_ns "$nat" iptables -A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  # The router itself answers nothing from outside either.
  in_ns "$nat" iptables -P INPUT DROP
  in_ns "$nat" iptables -A INPUT -i lo -j ACCEPT
  in_ns "$nat" iptables -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  in_ns "$nat" iptables -A INPUT -i lan -j ACCEPT
}

# The public host behind a port-forwarding router: WAN 198.18.0.10, the host at 10.0.3.2, TCP
# and UDP port 4001 forwarded to it (DNAT), everything else from outside dropped.
forwarded_host() {
  ip netns add "$NS_NAT_M"
  ip netns add "$NS_PUB"
  in_ns "$NS_NAT_M" ip link set lo up
  in_ns "$NS_PUB" ip link set lo up
  attach_to_inet "$NS_NAT_M" wan 198.18.0.10
  ip link add lan netns "$NS_NAT_M" type veth peer name eth0 netns "$NS_PUB"
  in_ns "$NS_NAT_M" ip addr add 10.0.3.1/24 dev lan
  in_ns "$NS_NAT_M" ip link set lan up
  in_ns "$NS_PUB" ip addr add 10.0.3.2/24 dev eth0
  in_ns "$NS_PUB" ip link set eth0 up
  in_ns "$NS_PUB" ip route add default via 10.0.3.1
  in_ns "$NS_NAT_M" sysctl -qw net.ipv4.ip_forward=1
  in_ns "$NS_NAT_M" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
  for proto in tcp udp; do
    in_ns "$NS_NAT_M" iptables -t nat -A PREROUTING -i wan -p "$proto" --dport 4001 \
      -j DNAT --to-destination 10.0.3.2:4001
  done
  in_ns "$NS_NAT_M" iptables -P FORWARD DROP
  in_ns "$NS_NAT_M" iptables -A FORWARD -i lan -o wan -j ACCEPT
  in_ns "$NS_NAT_M" iptables -A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED,DNAT -j ACCEPT
}

up() {
  local mode=${1:-plain} forwarded=${2:-}
  case "$mode" in plain|symmetric) ;; *) echo "netns-nat: mode is plain or symmetric" >&2; exit 2 ;; esac
  case "$forwarded" in ''|forwarded) ;; *) echo "netns-nat: the second word is 'forwarded' or nothing" >&2; exit 2 ;; esac
  need_tools
  down
  ip netns add "$NS_INET"
  in_ns "$NS_INET" ip link set lo up
  in_ns "$NS_INET" ip link add br0 type bridge
  in_ns "$NS_INET" ip link set br0 up
  if [ "$forwarded" = forwarded ]; then
    forwarded_host
  else
    ip netns add "$NS_PUB"
    in_ns "$NS_PUB" ip link set lo up
    attach_to_inet "$NS_PUB" eth0 198.18.0.10
  fi
  home "$NS_NAT_A" 198.18.0.2 1 "$NS_A" "$mode"
  home "$NS_NAT_B" 198.18.0.3 2 "$NS_B" "$mode"
  echo "netns-nat: up ($mode NAT${forwarded:+, public host forwarded}): $NS_PUB=198.18.0.10, $NS_A=10.0.1.2 behind 198.18.0.2, $NS_B=10.0.2.2 behind 198.18.0.3"
}

# Outbound from each home reaches the public host; nothing reaches a home unsolicited.
check() {
  in_ns "$NS_A" ping -c1 -W2 198.18.0.10 >/dev/null || { echo "A cannot reach the public host" >&2; exit 1; }
  in_ns "$NS_B" ping -c1 -W2 198.18.0.10 >/dev/null || { echo "B cannot reach the public host" >&2; exit 1; }
  if in_ns "$NS_PUB" ping -c1 -W1 198.18.0.2 >/dev/null 2>&1; then
    echo "NAT A answers unsolicited traffic" >&2; exit 1
  fi
  if in_ns "$NS_A" ping -c1 -W1 198.18.0.3 >/dev/null 2>&1; then
    echo "NAT B answers unsolicited traffic from A" >&2; exit 1
  fi
  echo "netns-nat: check passed"
}

case "${1:-}" in
  up) up "${2:-plain}" "${3:-}" ;;
  down) down ;;
  check) check ;;
  exec)
    shift
    ns=${1:?namespace}; shift
    case "$ns" in pub) ns=$NS_PUB ;; a) ns=$NS_A ;; b) ns=$NS_B ;; nat-a) ns=$NS_NAT_A ;; nat-b) ns=$NS_NAT_B ;; nat-m) ns=$NS_NAT_M ;; esac
    exec ip netns exec "$ns" "$@"
    ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
