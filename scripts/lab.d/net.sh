# shellcheck shell=bash
# scripts/lab.d/net.sh — sourced by scripts/lab. The network: namespaces, the bridge and its
# ports, addresses, isolation (no route beyond the lab's subnets), the VIPs, each namespace's
# /etc/hosts and resolv.conf.

# Host HOST's namespace is baton-HOST, its port on the bridge v-HOST (<= 15 chars), its dir
# $LAB/hosts/HOST: written out where used (a $(...) costs a fork)

ns_exists() { [ -e "/run/netns/$1" ]; }   # ns_exists NS

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

# host_want_addrs HOST WANTVAR PATVAR — sets the array WANTVAR to the addresses its eth0 must
# have (the controller and the client also have one in every fleet subnet in use: .250 and
# .200), PATVAR to a glob for addresses of that kind which are no longer wanted (a fleet subnet
# that went away; empty for other hosts)
host_want_addrs() {
    local _h=$1 _n _last
    local -n _want=$2 _pat=$3
    _want=("${H_ADDR[$_h]}/$NET_BITS"); _pat=
    case ${H_ROLE[$_h]} in
        bastion) _want+=("$FAR_NET.1/$NET_BITS") ;;
        ctl|client)
            _last=${H_ADDR[$_h]##*.}
            for _n in "${FLEET_NETS[@]}"; do _want+=("$_n.$_last/$NET_BITS"); done
            _pat="$FLEET_NET.*.$_last/$NET_BITS"
            ;;
    esac
}

# load_sw_ports — one look at the bridge namespace: SW_PORT[PORT]=ok for each port of the
# bridge that is up; SW_BRIDGE=up|down|missing (caches, see common.sh)
load_sw_ports() {
    SW_PORT=()
    SW_BRIDGE=missing
    local name rest n=0
    ns_exists "$SW_NS" || return 0
    # brief lines "NAME[@PEER] STATE MAC <FLAGS>": the bridge, then its ports (none when the
    # bridge is missing: the batch stops at the first command that fails)
    while read -r name _ rest; do
        n=$((n + 1)); name=${name%%@*}; rest=${rest#*<}; rest=",${rest%%>*},"
        if [ $n = 1 ]; then
            [ "$name" = "$BRIDGE" ] || break
            if [[ $rest == *,UP,* ]]; then SW_BRIDGE=up; else SW_BRIDGE=down; fi
        elif [[ $rest == *,UP,* ]]; then
            SW_PORT["$name"]=ok
        fi
    done < <(ip -n "$SW_NS" -br -b - 2>/dev/null <<<"link show dev $BRIDGE
link show master $BRIDGE")
}

# net_problem VAR WHAT — (of host_net_ok, fleet_net_ok) sets VAR, when given, to WHAT
net_problem() { [ -z "$1" ] || printf -v "$1" '%s' "$2"; }

# host_net_ok HOST [PROBLEMVAR] — with one `ip` call: its namespace exists, lo and eth0 are up,
# eth0 is on the bridge (SW_PORT, see load_sw_ports) and has the wanted addresses (for the
# controller and the client: none that is no longer wanted), no route but allowed ones. Sets
# H_ETH0[HOST] to eth0's addresses (" A/P A/P ... "); PROBLEMVAR says what is wrong when it
# fails.
host_net_ok() {
    local h=$1 ns=baton-$1 why=${2-} out f1 f2 rest a lo=0 eth=0 addrs=" " want=() pat
    ns_exists "$ns" || { net_problem "$why" "no namespace"; return 1; }
    [ "${SW_PORT[v-$h]-}" = ok ] || { net_problem "$why" "not plugged into $BRIDGE"; return 1; }
    # brief output (no lookup of the peer's namespace name, which costs one query per
    # namespace): routes, then "DEV OPERSTATE ADDR...", then "DEV OPERSTATE MAC <FLAGS>"
    out=$(ip -n "$ns" -4 -br -b - 2>/dev/null <<<$'route show\naddr show\nlink show') ||
        { net_problem "$why" "ip in $ns failed"; return 1; }
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
            *) allowed_route "$f1 $f2 $rest " || { net_problem "$why" "foreign route: $f1 $f2 $rest"; return 1; } ;;
        esac
    done <<<"$out"
    [ $lo = 1 ] || { net_problem "$why" "lo down"; return 1; }
    [ $eth = 1 ] || { net_problem "$why" "eth0 down"; return 1; }
    if [ -n "${H_IP6[$h]-}" ]; then host_net6_ok "$h" "$why" || return 1; fi
    # shellcheck disable=SC2034  # a cache (common.sh), read by reset_fleet and status
    H_ETH0["$h"]=$addrs
    host_want_addrs "$h" want pat
    for a in "${want[@]}"; do
        [[ $addrs == *" $a "* ]] || { net_problem "$why" "address $a missing"; return 1; }
    done
    if [ -n "$pat" ]; then
        for a in $addrs; do
            # shellcheck disable=SC2053  # pat is a glob on purpose
            [[ $a == $pat ]] && [[ " ${want[*]} " != *" $a "* ]] && { net_problem "$why" "stale address $a"; return 1; }
        done
    fi
    return 0
}

# host_net6_ok HOST [PROBLEMVAR] — (of host_net_ok, for a dual-stack host) IPv6 is on, eth0
# has its IPv6 address, and no IPv6 route leads anywhere but the lab's IPv6 subnet and the link
host_net6_ok() {
    local h=$1 ns=baton-$1 why=${2-} out r
    out=$(ip -n "$ns" -6 -o addr show dev eth0 scope global 2>/dev/null) || { net_problem "$why" "ip -6 in $ns failed"; return 1; }
    [[ $out == *" inet6 ${H_IP6[$h]}/$NET6_BITS "* ]] || { net_problem "$why" "address ${H_IP6[$h]}/$NET6_BITS missing"; return 1; }
    while read -r r; do
        [ -n "$r" ] || continue
        allowed_route6 "$r " || { net_problem "$why" "foreign IPv6 route: $r"; return 1; }
    done < <(ip -n "$ns" -6 route show 2>/dev/null)
    return 0
}

# allowed_route6 ROUTE — IPv6 isolation: the lab's IPv6 subnet and the link-local one, on eth0,
# never a default route or anything else
allowed_route6() {
    [[ $1 == "$NET6_PREFIX::/$NET6_BITS dev eth0 "* || $1 == "fe80::/64 dev eth0 "* ]]
}

# ipv6_sysctls NS — a dual-stack host's namespace: IPv6 on, and quiet (no router solicitations,
# nothing taken from router advertisements)
ipv6_sysctls() {
    nsenter --net="/run/netns/$1" sysctl -q -w net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 \
        net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
        net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0 >/dev/null
}

# ensure_host_net6 HOST — (of ensure_host_net, for a dual-stack host) IPv6 on, its IPv6 address
# (nodad: usable at once), no foreign IPv6 route
ensure_host_net6() {
    local h=$1 ns=baton-$1 r
    ipv6_sysctls "$ns"
    nsenter --net="/run/netns/$ns" sysctl -q -w net.ipv6.conf.eth0.disable_ipv6=0 net.ipv6.conf.eth0.accept_ra=0 >/dev/null
    [[ $(ip -n "$ns" -6 -o addr show dev eth0 scope global) == *" inet6 ${H_IP6[$h]}/$NET6_BITS "* ]] ||
        ip -n "$ns" addr add "${H_IP6[$h]}/$NET6_BITS" dev eth0 nodad
    while read -r r; do
        [ -n "$r" ] || continue
        allowed_route6 "$r " && continue
        warn "removing foreign IPv6 route in $ns: $r"
        # shellcheck disable=SC2086  # split on purpose: the route is words for ip
        ip -n "$ns" -6 route del $r || true
    done < <(ip -n "$ns" -6 route show)
}

# ensure_host_net HOST — namespace, veth on the bridge, addresses, isolation; NEW_HOST[HOST]=1
# when its namespace had to be created
ensure_host_net() {
    local h=$1 ns=baton-$1 v=v-$1 a r have want=() pat
    NEW_HOST["$h"]=0
    host_net_ok "$h" && return 0
    unset "H_ETH0[$h]"
    host_want_addrs "$h" want pat
    if ! ns_exists "$ns"; then
        # a new host: the namespace, IPv4 only (no IPv6 link-local chatter, no router
        # solicitations), its veth on the bridge, links up, addresses: five commands
        ip netns add "$ns"
        NEW_HOST["$h"]=1
        say "created namespace $ns"
        if [ -n "${H_IP6[$h]-}" ]; then
            ipv6_sysctls "$ns"          # a dual-stack host (its address: ensure_host_net6)
        else
            nsenter --net="/run/netns/$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 >/dev/null
        fi
        ip -n "$SW_NS" link del "$v" 2>/dev/null || true      # a port left by an earlier namespace
        ip -n "$SW_NS" -b - <<<"link add $v type veth peer name eth0 netns $ns
link set $v master $BRIDGE up"
        { printf 'link set lo up\nlink set eth0 up\n'; printf 'addr add %s dev eth0\n' "${want[@]}"; } | ip -n "$ns" -b -
        [ -z "${H_IP6[$h]-}" ] || ensure_host_net6 "$h"
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
    for a in "${want[@]}"; do
        [[ $have == *" inet $a "* ]] || ip -n "$ns" addr add "$a" dev eth0
    done
    if [ -n "$pat" ]; then
        while read -r _ _ _ a _; do
            # shellcheck disable=SC2053  # pat is a glob on purpose
            if [[ $a == $pat ]] && [[ " ${want[*]} " != *" $a "* ]]; then
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
        # shellcheck disable=SC2086  # split on purpose: the route is words for ip
        ip -n "$ns" route del $r || true
    done < <(ip -n "$ns" -4 route show)
    [ -z "${H_IP6[$h]-}" ] || ensure_host_net6 "$h"
}

# ensure_network — the bridge, every base host's network, the base VIPs' initial place
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
    if [[ ${P_TARGET[$p]} == *:* ]]; then
        ip -n "baton-${P_PRIMARY[$p]}" addr add "${P_TARGET[$p]}" dev eth0 nodad
    else
        ip -n "baton-${P_PRIMARY[$p]}" addr add "${P_TARGET[$p]}" dev eth0
    fi
}

# fleet_net_ok HOST PID [PROBLEMVAR] — (builtins only: no `ip` per host, which costs a few ms each with
# hundreds of namespaces) the network of a fleet host whose sshd PID lives in its namespace,
# as the kernel shows it to that process: its bridge port is up (SW_PORT), its main routing
# table holds only connected /24 routes of the lab's subnets, one of them its own on eth0
# (there only while eth0 is up with an address in it), and its own address is local.
# Sets H_LOCAL[HOST] to its local addresses (" A A ... ", no prefixes, no 127.*); PROBLEMVAR
# says what is wrong when it fails.
# (Not seen here: lo's state, prefix lengths; `host_net_ok` looks at those, as does status.)
fleet_net_ok() {
    local h=$1 pid=$2 f own=0 net line c='' locals=" " lines=()
    local re_local=$'[|]-- ([0-9.]+)\n *(/32 host LOCAL)' why=${3-}
    [ "${SW_PORT[v-$h]-}" = ok ] || { net_problem "$why" "not plugged into $BRIDGE"; return 1; }
    # (mapfile and read -d '': one read of each file; `while read` costs a system call a line)
    mapfile -t -s 1 lines <"/proc/$pid/net/route" || { net_problem "$why" "cannot read its routes"; return 1; }
    for line in "${lines[@]}"; do
        # shellcheck disable=SC2206  # split on purpose: fields of a line of numbers
        f=($line)       # Iface Destination Gateway Flags RefCnt Use Metric Mask ...; hex, little-endian
        if ! [[ ${f[1]} =~ ^00[0-9A-F]{6}$ && ${f[2]} == 00000000 && ${f[7]} == 00FFFFFF ]]; then
            net_problem "$why" "foreign route: $line"; return 1
        fi
        net=$((16#${f[1]:6:2})).$((16#${f[1]:4:2})).$((16#${f[1]:2:2}))      # 000112C6: 198.18.1.0
        allowed_route "$net.0/$NET_BITS " || { net_problem "$why" "foreign route: $net.0/$NET_BITS dev ${f[0]}"; return 1; }
        [ "${f[0]}" = eth0 ] && [ "$net" = "${H_NET[$h]}" ] && own=1
    done
    [ $own = 1 ] || { net_problem "$why" "no route to its own subnet (eth0 down or no address)"; return 1; }
    # local addresses: "|-- 198.18.1.1" followed by "/32 host LOCAL" (in the first table shown)
    IFS= read -r -d '' c <"/proc/$pid/net/fib_trie" || true
    c=${c#*:}; c=${c%%$'\n'[A-Z]*}
    while [[ $c =~ $re_local ]]; do
        [[ ${BASH_REMATCH[1]} == 127.* ]] || locals+="${BASH_REMATCH[1]} "
        c=${c#*"${BASH_REMATCH[0]}"}
    done
    [[ $locals == *" ${H_ADDR[$h]} "* ]] || { net_problem "$why" "address ${H_ADDR[$h]} missing"; return 1; }
    # shellcheck disable=SC2034  # a cache (common.sh), read by reset_fleet
    H_LOCAL["$h"]=$locals
}

# hosts_text VAR HOST... — sets VAR to an /etc/netns/NS/hosts naming these hosts
hosts_text() {
    local -n _text=$1
    local _o _line
    shift
    printf -v _text '# Written by scripts/lab up (bind-mounted over /etc/hosts by ip netns exec)\n127.0.0.1\tlocalhost %s\n' "$LAB_HOSTNAME"
    for _o; do
        printf -v _line '%s\t%s.%s %s\n' "${H_ADDR[$_o]}" "$_o" "${ZONE%.}" "$_o"; _text+=$_line
    done
}

# fleet_hosts_text HOST VAR — sets VAR to the /etc/netns/NS/hosts of a fleet host: itself and
# its partner
fleet_hosts_text() {
    local _pair=${H_PAIR[$1]}
    hosts_text "$2" "${P_PRIMARY[$_pair]}" "${P_STANDBY[$_pair]}"
}

# write_netns_etc — /etc/netns/NS/{hosts,resolv.conf} of every base host: all base hosts, and
# only the lab's own DNS server; a PostgreSQL host also gets baton-pg/env (pg.sh)
write_netns_etc() {
    local h d etc_hosts resolv
    hosts_text etc_hosts "${HOSTS[@]}"
    resolv_conf_text resolv
    for h in "${HOSTS[@]}"; do
        d=/etc/netns/baton-$h
        [ -d "$d" ] || install -d -m 0755 "$d"
        put_text "$d/hosts" 0644 root:root "$etc_hosts"
        put_text "$d/resolv.conf" 0644 root:root "$resolv"
        [ "${H_ROLE[$h]}" != pg ] || pg_etc_files "$h"     # baton-pg/env (pg.sh)
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

# reset_vip_pair PAIR — the hosts of a base VIP pair have exactly their own address, plus the
# VIP on the initial primary
reset_vip_pair() {
    local p=$1 h ns a keep
    if [[ ${P_TARGET[$p]} == *:* ]]; then reset_vip6_pair "$p"; return; fi
    for h in "${P_PRIMARY[$p]}" "${P_STANDBY[$p]}"; do
        ns=baton-$h
        while read -r a; do
            keep=("${H_ADDR[$h]}/$NET_BITS")
            [ "$h" = "${P_PRIMARY[$p]}" ] && keep+=("${P_TARGET[$p]}")
            [[ " ${keep[*]} " == *" $a "* ]] || ip -n "$ns" addr del "$a" dev eth0
        done < <(ip -n "$ns" -o -4 addr show dev eth0 | awk '{print $4}')
    done
    # (replace: held for good, also when an interrupted overlap handover left it a lifetime)
    ip -n "baton-${P_PRIMARY[$p]}" addr replace "${P_TARGET[$p]}" dev eth0 \
        valid_lft forever preferred_lft forever
}

# reset_vip6_pair PAIR — (of reset_vip_pair) the same for a VIP pair whose VIP is IPv6: the
# hosts have exactly their own IPv4 and IPv6 addresses, plus the VIP (nodad) on the initial
# primary
reset_vip6_pair() {
    local p=$1 h ns a keep
    for h in "${P_PRIMARY[$p]}" "${P_STANDBY[$p]}"; do
        ns=baton-$h
        while read -r a; do
            [ "$a" = "${H_ADDR[$h]}/$NET_BITS" ] || ip -n "$ns" addr del "$a" dev eth0
        done < <(ip -n "$ns" -o -4 addr show dev eth0 | awk '{print $4}')
        keep=("${H_IP6[$h]}/$NET6_BITS")
        [ "$h" = "${P_PRIMARY[$p]}" ] && keep+=("${P_TARGET[$p]}")
        while read -r a; do
            [[ " ${keep[*]} " == *" $a "* ]] || ip -n "$ns" addr del "$a" dev eth0
        done < <(ip -n "$ns" -o -6 addr show dev eth0 scope global | awk '{print $4}')
    done
    ip -n "baton-${P_PRIMARY[$p]}" addr replace "${P_TARGET[$p]}" dev eth0 nodad \
        valid_lft forever preferred_lft forever
    # (and their own IPv6 addresses, which a test may have taken away)
    for h in "${P_PRIMARY[$p]}" "${P_STANDBY[$p]}"; do
        ip -n "baton-$h" addr replace "${H_IP6[$h]}/$NET6_BITS" dev eth0 nodad
    done
}

# clear_quiesce HOST — no quiesce hold or overlap hand-back (baton's nftables tables) is left
# on the host
clear_quiesce() {
    local family
    for family in inet ip ip6; do
        if ip netns exec "baton-$1" nft list table "$family" baton >/dev/null 2>&1; then
            ip netns exec "baton-$1" nft delete table "$family" baton
        fi
    done
}

# flush_neigh HOST... — the hosts forget every neighbour (where the VIPs were)
flush_neigh() {
    local h
    for h; do ip -n "baton-$h" neigh flush dev eth0 2>/dev/null || true; done
}

# remove_stale_namespaces — (up, when there is no lab) the base hosts' namespaces that are
# still there, with whatever still runs in them: a `down` of an older version of this script,
# which did not know these hosts, left them (their daemons would hold the ports the new ones
# need). No lab runs without the bridge's namespace, which up checked is gone.
remove_stale_namespaces() {
    local h stale=()
    for h in "${HOSTS[@]}"; do ns_exists "baton-$h" && stale+=("$h"); done
    [ ${#stale[@]} -gt 0 ] || return 0
    warn "namespaces left by an earlier lab: $(span "${stale[@]/#/baton-}"); removing them"
    end_processes_of "${stale[@]}"
    delete_namespaces "${stale[@]}"
}

# delete_namespaces HOST... — the hosts' namespaces (their veths go with them; "sw" is the
# bridge's) and /etc/netns entries; says which, counting the fleet's
delete_namespaces() {
    local h ns n=0 paths=()
    for h; do
        ns=baton-$h
        if ns_exists "$ns"; then
            ip netns del "$ns"
            if [ -n "${H_PAIR[$h]-}" ] && [[ ${H_PAIR[$h]} == fleet-* ]]; then n=$((n + 1)); else say "deleted namespace $ns"; fi
        fi
        paths+=("/etc/netns/$ns")
    done
    [ "$n" = 0 ] || say "deleted $n fleet namespaces"
    rm -rf "${paths[@]}"
    rmdir /etc/netns 2>/dev/null || true
}
