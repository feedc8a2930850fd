# shellcheck shell=bash
# scripts/lab.d/net.sh — sourced by scripts/lab. The network: namespaces, the bridge and its ports, addresses, isolation (no route beyond
# the lab's subnets), the VIPs' initial place, each namespace's /etc/hosts and resolv.conf.

ns_of() { printf 'baton-%s' "$1"; }          # host -> network namespace
# (hot paths write baton-$h, v-$h (its bridge port, <= 15 chars) and $LAB/hosts/$h directly:
# a $(...) costs a fork)

ns_exists() { [ -e "/run/netns/$1" ]; }

ensure_ns() { # ensure_ns NS — the namespace exists, its lo is up
    if ! ns_exists "$1"; then
        ip netns add "$1"
        # IPv4 only: no IPv6 link-local chatter, no router solicitations
        ip netns exec "$1" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 >/dev/null
    fi
    ip -n "$1" link set lo up
}

# allowed_route ROUTE — isolation: the connected route of a lab subnet (198.18.0.0/24 and the
# fleet subnets in use), never a default route or anything else
allowed_route() {
    local n
    for n in "${LAB_NETS[@]}"; do [[ $1 == "$n.0/$NET_BITS "* ]] && return 0; done
    return 1
}

# host_want_addrs HOST -> WANT: the addresses its eth0 must have (the controller and the client
# also have one in every fleet subnet in use: .250 and .200); EXTRA_PAT: a glob for addresses
# of that kind which are no longer wanted (a fleet subnet that went away)
host_want_addrs() {
    local h=$1 n last
    WANT=("${H_ADDR[$h]}/$NET_BITS"); EXTRA_PAT=
    case ${H_ROLE[$h]} in
        ctl|client)
            last=${H_ADDR[$h]##*.}
            for n in "${FLEET_NETS[@]}"; do WANT+=("$n.$last/$NET_BITS"); done
            EXTRA_PAT="$FLEET_NET.*.$last/$NET_BITS"
            ;;
    esac
}

# load_sw_ports — one look at the bridge namespace: SW_PORT[PORT]=ok for each port of the
# bridge that is up; SW_BRIDGE=up|down|missing
load_sw_ports() {
    SW_PORT=()
    SW_BRIDGE=missing
    local name state rest n=0
    ns_exists "$SW_NS" || return 0
    # brief lines "NAME[@PEER] STATE MAC <FLAGS>": the bridge, then its ports (none when the
    # bridge is missing: the batch stops at the first command that fails)
    while read -r name state rest; do
        n=$((n + 1)); name=${name%%@*}; rest=${rest#*<}; rest=",${rest%%>*},"
        if [ $n = 1 ]; then
            [ "$name" = "$BRIDGE" ] || break
            if [[ $rest == *,UP,* ]]; then SW_BRIDGE=up; else SW_BRIDGE=down; fi
        elif [[ $rest == *,UP,* ]]; then
            SW_PORT[$name]=ok
        fi
    done < <(ip -n "$SW_NS" -br -b - 2>/dev/null <<<"link show dev $BRIDGE
link show master $BRIDGE")
}

# host_net_ok HOST — with one `ip` call: its namespace exists, lo and eth0 are up, eth0 is on
# the bridge (SW_PORT, see load_sw_ports) and has the wanted addresses (for the controller and
# the client: none that is no longer wanted), no route but allowed ones. Sets H_ETH0[HOST] to
# eth0's addresses (" A/P A/P ... "); NET_PROBLEM says what is wrong when it fails.
host_net_ok() {
    local h=$1 ns=baton-$1 out f1 f2 rest a lo=0 eth=0 addrs=" "
    NET_PROBLEM=
    ns_exists "$ns" || { NET_PROBLEM="no namespace"; return 1; }
    [ "${SW_PORT[v-$h]-}" = ok ] || { NET_PROBLEM="not plugged into $BRIDGE"; return 1; }
    # brief output (no lookup of the peer's namespace name, which costs one query per
    # namespace): routes, then "DEV OPERSTATE ADDR...", then "DEV OPERSTATE MAC <FLAGS>"
    out=$(ip -n "$ns" -4 -br -b - 2>/dev/null <<<$'route show\naddr show\nlink show') ||
        { NET_PROBLEM="ip in $ns failed"; return 1; }
    while read -r f1 f2 rest; do
        [ -n "$f1" ] || continue
        case $f2 in
            UP|DOWN|UNKNOWN|LOWERLAYERDOWN|NOTPRESENT|DORMANT|TESTING)
                f1=${f1%%@*}
                if [[ $rest == *"<"* ]]; then
                    a=${rest#*<}; a=${a%%>*}
                    if [[ ",$a," == *,UP,* ]]; then
                        [ "$f1" = lo ] && lo=1
                        [ "$f1" = eth0 ] && eth=1
                    fi
                elif [ "$f1" = eth0 ]; then
                    for a in $rest; do addrs+="$a "; done
                fi
                ;;
            *) allowed_route "$f1 $f2 $rest " || { NET_PROBLEM="foreign route: $f1 $f2 $rest"; return 1; } ;;
        esac
    done <<<"$out"
    [ $lo = 1 ] || { NET_PROBLEM="lo down"; return 1; }
    [ $eth = 1 ] || { NET_PROBLEM="eth0 down"; return 1; }
    H_ETH0[$h]=$addrs
    host_want_addrs "$h"
    for a in "${WANT[@]}"; do
        [[ $addrs == *" $a "* ]] || { NET_PROBLEM="address $a missing"; return 1; }
    done
    if [ -n "$EXTRA_PAT" ]; then
        for a in $addrs; do
            # shellcheck disable=SC2053
            [[ $a == $EXTRA_PAT ]] && [[ " ${WANT[*]} " != *" $a "* ]] && { NET_PROBLEM="stale address $a"; return 1; }
        done
    fi
    return 0
}

# ensure_host_net HOST — namespace, veth on the bridge, addresses, isolation; NEW_HOST[HOST]=1
# when its namespace had to be created
ensure_host_net() {
    local h=$1 ns=baton-$1 v=v-$1 a r have
    NEW_HOST[$h]=0
    host_net_ok "$h" && return 0
    unset "H_ETH0[$h]"
    host_want_addrs "$h"
    if ! ns_exists "$ns"; then
        # a new host: the namespace, IPv4 only (no IPv6 link-local chatter, no router
        # solicitations), its veth on the bridge, links up, addresses: five commands
        ip netns add "$ns"
        NEW_HOST[$h]=1
        say "created namespace $ns"
        nsenter --net="/run/netns/$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 >/dev/null
        ip -n "$SW_NS" link del "$v" 2>/dev/null || true      # a port left by an earlier namespace
        ip -n "$SW_NS" -b - <<<"link add $v type veth peer name eth0 netns $ns
link set $v master $BRIDGE up"
        { printf 'link set lo up\nlink set eth0 up\n'; printf 'addr add %s dev eth0\n' "${WANT[@]}"; } | ip -n "$ns" -b -
        return 0
    fi
    ensure_ns "$ns"                                           # (exists: sets lo up)
    if ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
        ip -n "$SW_NS" link del "$v" 2>/dev/null || true
        ip -n "$SW_NS" link add "$v" type veth peer name eth0 netns "$ns"
    fi
    ip -n "$SW_NS" link set "$v" master "$BRIDGE" up
    ip -n "$ns" link set eth0 up
    have=$(ip -n "$ns" -o -4 addr show dev eth0)
    for a in "${WANT[@]}"; do
        [[ $have == *" inet $a "* ]] || ip -n "$ns" addr add "$a" dev eth0
    done
    if [ -n "$EXTRA_PAT" ]; then
        while read -r _ _ _ a _; do
            # shellcheck disable=SC2053
            if [[ $a == $EXTRA_PAT ]] && [[ " ${WANT[*]} " != *" $a "* ]]; then
                say "removing $a from $ns (its fleet subnet is no longer in use)"
                ip -n "$ns" addr del "$a" dev eth0
            fi
        done <<<"$have"
    fi
    # isolation: only the lab's own subnets, never a default route
    while read -r r; do
        [ -n "$r" ] || continue
        allowed_route "$r " && continue
        warn "removing foreign route in $ns: $r"
        # shellcheck disable=SC2086
        ip -n "$ns" route del $r || true
    done < <(ip -n "$ns" -4 route show)
}

ensure_network() {
    ensure_ns "$SW_NS"
    load_sw_ports
    if [ "$SW_BRIDGE" = missing ]; then
        ip -n "$SW_NS" link add "$BRIDGE" type bridge stp_state 0 forward_delay 0
        say "created bridge $BRIDGE in $SW_NS"
    fi
    [ "$SW_BRIDGE" = up ] || ip -n "$SW_NS" link set "$BRIDGE" up

    local h
    for h in "${HOSTS[@]}"; do ensure_host_net "$h"; done

    # initial traffic for a VIP pair: only when all its hosts are brand new
    local p
    for p in "${PAIRS[@]}"; do vip_if_new "$p"; done
}

vip_if_new() { # vip_if_new PAIR — the VIP on the initial primary when both hosts are brand new
    local p=$1 h
    [ "${P_METHOD[$p]}" = vip ] || return 0
    for h in "${P_PRIMARY[$p]}" "${P_STANDBY[$p]}"; do [ "${NEW_HOST[$h]-0}" = 1 ] || return 0; done
    ip -n "baton-${P_PRIMARY[$p]}" addr add "${P_TARGET[$p]}" dev eth0
}

# fleet_net_ok HOST PID — (builtins only: no `ip` per host, which costs a few ms each with
# hundreds of namespaces) the network of a fleet host whose sshd PID lives in its namespace,
# as the kernel shows it to that process: its bridge port is up (SW_PORT), its main routing
# table holds only connected /24 routes of the lab's subnets, one of them its own on eth0
# (there only while eth0 is up with an address in it), and its own address is local.
# Sets H_LOCAL[HOST] to its local addresses (" A A ... ", no prefixes, no 127.*).
# (Not seen here: lo's state, prefix lengths; `host_net_ok` looks at those, as does status.)
fleet_net_ok() {
    local h=$1 pid=$2 f own=0 net line c='' locals=" " lines=()
    NET_PROBLEM=
    [ "${SW_PORT[v-$h]-}" = ok ] || { NET_PROBLEM="not plugged into $BRIDGE"; return 1; }
    # (mapfile and read -d '': one read of each file; `while read` costs a system call a line)
    mapfile -t -s 1 lines <"/proc/$pid/net/route" || { NET_PROBLEM="cannot read its routes"; return 1; }
    for line in "${lines[@]}"; do
        # shellcheck disable=SC2206
        f=($line)       # Iface Destination Gateway Flags RefCnt Use Metric Mask ...; hex, little-endian
        if ! [[ ${f[1]} =~ ^00[0-9A-F]{6}$ && ${f[2]} == 00000000 && ${f[7]} == 00FFFFFF ]]; then
            NET_PROBLEM="foreign route: $line"; return 1
        fi
        net=$((16#${f[1]:6:2})).$((16#${f[1]:4:2})).$((16#${f[1]:2:2}))      # 000112C6: 198.18.1.0
        allowed_route "$net.0/$NET_BITS " || { NET_PROBLEM="foreign route: $net.0/$NET_BITS dev ${f[0]}"; return 1; }
        [ "${f[0]}" = eth0 ] && [ "$net" = "${H_NET[$h]}" ] && own=1
    done
    [ $own = 1 ] || { NET_PROBLEM="no route to its own subnet (eth0 down or no address)"; return 1; }
    # local addresses: "|-- 198.18.1.1" followed by "/32 host LOCAL" (in the first table shown)
    IFS= read -r -d '' c <"/proc/$pid/net/fib_trie" || true
    c=${c#*:}; c=${c%%$'\n'[A-Z]*}
    while [[ $c =~ $RE_LOCAL ]]; do
        [[ ${BASH_REMATCH[1]} == 127.* ]] || locals+="${BASH_REMATCH[1]} "
        c=${c#*"${BASH_REMATCH[0]}"}
    done
    [[ $locals == *" ${H_ADDR[$h]} "* ]] || { NET_PROBLEM="address ${H_ADDR[$h]} missing"; return 1; }
    H_LOCAL[$h]=$locals
}

# /etc/netns/NS/hosts of a fleet host: itself and its partner
fleet_hosts_text() {
    local h o pair=${H_PAIR[$1]}
    printf -v TXT '# Written by scripts/lab up (bind-mounted over /etc/hosts by ip netns exec)\n127.0.0.1\tlocalhost %s\n' "$LAB_HOSTNAME"
    for o in "${P_PRIMARY[$pair]}" "${P_STANDBY[$pair]}"; do
        printf -v h '%s\t%s.%s %s\n' "${H_ADDR[$o]}" "$o" "${ZONE%.}" "$o"; TXT+=$h
    done
}

write_netns_etc() {
    local h d o txt
    for h in "${HOSTS[@]}"; do
        d=/etc/netns/baton-$h
        [ -d "$d" ] || install -d -m 0755 "$d"
        printf -v txt '# Written by scripts/lab up (bind-mounted over /etc/hosts by ip netns exec)\n127.0.0.1\tlocalhost %s\n' "$LAB_HOSTNAME"
        for o in "${HOSTS[@]}"; do printf -v TXT '%s\t%s.%s %s\n' "${H_ADDR[$o]}" "$o" "${ZONE%.}" "$o"; txt+=$TXT; done
        put_text "$d/hosts" 0644 root:root "$txt"
        resolv_conf_text
        put_text "$d/resolv.conf" 0644 root:root "$TXT"
    done
}

# foreign_routes NS — print the routes of NS that isolation does not allow
foreign_routes() {
    local r
    while read -r r; do
        [ -n "$r" ] || continue
        allowed_route "$r " || echo "$r"
    done < <(ip -n "$1" -4 route show 2>/dev/null)
}
