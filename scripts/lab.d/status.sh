# shellcheck shell=bash
# scripts/lab.d/status.sh — sourced by scripts/lab. Health: probing the daemons from the
# controller's namespace, `up`'s final check, `status`.

# probe_many SECONDS MAPVAR ADDR:PORT... — one shell in the controller namespace waits (SECONDS
# in all) until each endpoint accepts, all endpoints at once (a connection to a host that is
# gone hangs for seconds); sets MAPVAR[ADDR:PORT]=1 (an associative array) for those that did.
# Pair far's hosts, which the controller cannot reach, are probed from the bastion.
probe_many() {
    local _secs=$1 _ep _out _near=() _far=()
    local -n _ok=$2
    shift 2
    _ok=()
    for _ep; do
        if [[ $_ep == "$FAR_NET".* ]]; then _far+=("$_ep"); else _near+=("$_ep"); fi
    done
    _out=$(probe_from "$CTL_HOST" "$_secs" "${_near[@]}"
           [ ${#_far[@]} = 0 ] || ! ns_exists "baton-${BASTION_HOSTS[0]}" ||
               probe_from "${BASTION_HOSTS[0]}" "$_secs" "${_far[@]}")
    while read -r _ep; do
        [ -n "$_ep" ] && _ok["$_ep"]=1
    done <<<"$_out"
    return 0
}

# probe_from HOST SECONDS ADDR:PORT... — (of probe_many) print each endpoint that accepted a
# connection from HOST's namespace within SECONDS
probe_from() {
    local _ns=baton-$1 _secs=$2
    shift 2
    [ $# -gt 0 ] || return 0
    # shellcheck disable=SC2016  # the script is for the inner bash, its arguments follow
    ip netns exec "$_ns" timeout $((_secs + 1)) bash -c '
        end=$(( ${EPOCHREALTIME/./} + $0 * 1000000 ))
        probe() {
            until : 2>/dev/null 3<>"/dev/tcp/${1%:*}/${1##*:}"; do
                (( ${EPOCHREALTIME/./} < end )) || return 0
                sleep 0.05
            done
            echo "$1"
        }
        for ep; do probe "$ep" & done
        wait' "$_secs" "$@" 2>/dev/null || true
}

# verify_reachable — every base host's sshd and nginx (a PostgreSQL host's sshd; an HAProxy
# host's sshd and frontend, and the health checks of its servers pass) answer, and
# those of the fleet hosts this run set up (a fleet daemon found alive and consistent is
# trusted: a connection to sshd costs it a fork and re-exec, which adds up over a large fleet)
verify_reachable() {
    local h eps=() probed=("${SERVICE_HOSTS[@]}") bad=0
    local -A answered=()
    for h in "${FLEET_HOSTS[@]}"; do [ -z "${FLEET_TOUCHED[$h]-}" ] || probed+=("$h"); done
    for h in "${probed[@]}"; do eps+=("${H_ADDR[$h]}:22" "${H_ADDR[$h]}:80"); done
    for h in "${PG_HOSTS[@]}"; do eps+=("${H_ADDR[$h]}:22"); done
    for h in "${LB_HOSTS[@]}"; do eps+=("${H_ADDR[$h]}:22" "${P_TARGET[${H_PAIR[$h]}]}"); done
    for h in "${BASTION_HOSTS[@]}"; do eps+=("${H_ADDR[$h]}:22"); done
    probe_many 10 answered "${eps[@]}"
    for h in "${probed[@]}"; do
        [ -n "${answered[${H_ADDR[$h]}:22]-}" ] || { warn "sshd on $h (${H_ADDR[$h]}:22) does not answer"; bad=1; }
        [ -n "${answered[${H_ADDR[$h]}:80]-}" ] || { warn "nginx on $h (${H_ADDR[$h]}:80) does not answer"; bad=1; }
    done
    for h in "${PG_HOSTS[@]}" "${BASTION_HOSTS[@]}"; do
        [ -n "${answered[${H_ADDR[$h]}:22]-}" ] || { warn "sshd on $h (${H_ADDR[$h]}:22) does not answer"; bad=1; }
    done
    local p why
    for h in "${LB_HOSTS[@]}"; do
        p=${H_PAIR[$h]}
        [ -n "${answered[${H_ADDR[$h]}:22]-}" ] || { warn "sshd on $h (${H_ADDR[$h]}:22) does not answer"; bad=1; }
        [ -n "${answered[${P_TARGET[$p]}]-}" ] || { warn "haproxy on $h (frontend ${P_TARGET[$p]}) does not answer"; bad=1; }
        # (HAProxy checks each server every second: a server started just now passes within 2 s)
        lb_wait_ready "$p" 5 why || { warn "pair $p: HAProxy on $h: $why"; bad=1; }
    done
    local soa=
    for _ in $(seq 1 50); do
        soa=$(dns_query "$ZONE" SOA) && [ -n "$soa" ] && break
        sleep 0.1
    done
    [ -n "$soa" ] || { warn "Knot at $DNS_ADDR does not answer for $ZONE"; bad=1; }
    etcd_verify || bad=1
    secondary_in_sync || { warn "the secondary Knot at $DNS2_ADDR does not serve the primary's $ZONE (SOA serial $(soa_serial "$DNS_ADDR") there, '$(soa_serial "$DNS2_ADDR")' here); see $LAB/dns2/knot.log"; bad=1; }
    return $bad
}

# cmd_status — `scripts/lab status`: every namespace and daemon, the pairs' traffic; fails
# unless all is up
cmd_status() {
    local bad=0 h ns pid kind addrs problem eps=()
    local -A answered=()
    H_ETH0=()
    # one probe for every daemon that is alive
    for h in "${HOSTS[@]}" "${FLEET_HOSTS[@]}"; do
        for kind in $(host_daemons "$h"); do
            case $kind in
                sshd) eps+=("${H_ADDR[$h]}:22") ;; nginx|haproxy) eps+=("${H_ADDR[$h]}:80") ;;
                knotd) eps+=("${H_ADDR[$h]}:53") ;; postgres) eps+=("${H_ADDR[$h]}:$PG_PORT") ;;
                etcd) eps+=("${H_ADDR[$h]}:$ETCD_CLIENT_PORT") ;;
            esac
        done
    done
    if ns_exists "baton-$CTL_HOST"; then probe_many 2 answered "${eps[@]}"; fi

    if ns_exists "$SW_NS"; then
        local br=down
        grep -q '[<,]UP[,>]' <<<"$(ip -n "$SW_NS" link show "$BRIDGE" 2>/dev/null)" && br=up
        printf '%-14s %-6s bridge %s %s\n' "$SW_NS" up "$BRIDGE" "$br"
        [ "$br" = up ] || bad=1
    else
        printf '%-14s %-6s\n' "$SW_NS" DOWN; bad=1
    fi
    for h in "${HOSTS[@]}"; do
        ns=baton-$h
        if ! ns_exists "$ns"; then
            printf '%-14s %-6s\n' "$ns" DOWN; bad=1
            for kind in $(host_daemons "$h"); do printf '  %-12s %s\n' "$kind" DEAD; done
            continue
        fi
        addrs=$(ip -n "$ns" -o -4 addr show dev eth0 2>/dev/null | awk '{printf "%s ", $4}')
        local state=up
        [[ " $addrs" == *" ${H_ADDR[$h]}/$NET_BITS "* ]] || { state=BROKEN; bad=1; }
        if [ -n "$(foreign_routes "$ns")" ]; then
            state=FOREIGN-ROUTE; bad=1
        fi
        grep -q '[<,]UP[,>]' <<<"$(ip -n "$ns" link show eth0 2>/dev/null)" || { state=LINK-DOWN; bad=1; }
        grep -q "[<,]UP[,>].* master $BRIDGE " <<<"$(ip -n "$SW_NS" link show "v-$h" 2>/dev/null)" ||
            { state=UNPLUGGED; bad=1; }
        printf '%-14s %-6s eth0 %s\n' "$ns" "$state" "${addrs% }"
        for kind in $(host_daemons "$h"); do
            if find_daemon "$kind" "$h" pid && in_ns "$pid" "$ns"; then
                local port=22 extra=
                [ "$kind" = nginx ] && port=80
                [ "$kind" = haproxy ] && port=80
                [ "$kind" = knotd ] && port=53
                [ "$kind" = postgres ] && port=$PG_PORT
                [ "$kind" = etcd ] && port=$ETCD_CLIENT_PORT
                if [ -n "${answered[${H_ADDR[$h]}:$port]-}" ]; then extra="answers on ${H_ADDR[$h]}:$port"; else extra="NOT ANSWERING on ${H_ADDR[$h]}:$port"; bad=1; fi
                if [ "${H_ROLE[$h]}" = service ] && ! srv_mounted_for "$pid" "$h"; then extra+=", srv NOT MOUNTED"; bad=1; fi
                if [ "$kind" = etcd ]; then etcd_health_note "$h" extra || bad=1; fi
                if [ "${H_ROLE[$h]}" = pg ] && [ "$kind" = sshd ] && ! pg_sshd_ok "$h" "$pid"; then
                    extra+=", $PG_ETC or /run/postgresql NOT MOUNTED"; bad=1
                fi
                printf '  %-12s alive  pid %s, %s\n' "$kind" "$pid" "$extra"
            else
                printf '  %-12s %s\n' "$kind" DEAD; bad=1
            fi
        done
    done
    # the fleet: one line per host
    [ "$FLEET_N" = 0 ] || load_sw_ports
    local d line a
    for h in "${FLEET_HOSTS[@]}"; do
        ns=baton-$h
        if host_net_ok "$h" problem; then
            a=${H_ETH0[$h]# }; a=${a% }
            printf -v line '%-14s %-6s eth0 %-32s' "$ns" up "$a"
        else
            printf -v line '%-14s %-6s %-37s' "$ns" BROKEN "($problem)"; bad=1
        fi
        for kind in sshd nginx; do
            local port=22; [ "$kind" = nginx ] && port=80
            if find_daemon "$kind" "$h" pid && in_ns "$pid" "$ns"; then
                d="$kind pid $pid"
                if [ -z "${answered[${H_ADDR[$h]}:$port]-}" ]; then d+=" NOT ANSWERING"; bad=1; fi
                if ! srv_mounted_for "$pid" "$h"; then d+=" srv NOT MOUNTED"; bad=1; fi
            else
                d="$kind DEAD"; bad=1
            fi
            line+=" $d,"
        done
        line=${line%,}
        printf '%s\n' "$line"
    done
    local p holders a
    for p in "${PAIRS[@]}" "${FLEET_PAIRS[@]}"; do
        case ${P_METHOD[$p]} in
            vip)
                holders=
                for h in "${P_PRIMARY[$p]}" "${P_STANDBY[$p]}"; do
                    ns_exists "baton-$h" || continue
                    a=${H_ETH0[$h]-}
                    [ -n "$a" ] || a=" $(ip -n "baton-$h" -o -4 addr show dev eth0 2>/dev/null | awk '{printf "%s ", $4}')"
                    # an IPv6 VIP (H_ETH0 holds IPv4 addresses only)
                    [[ ${P_TARGET[$p]} != *:* ]] || a=" $(ip -n "baton-$h" -o -6 addr show dev eth0 2>/dev/null | awk '{printf "%s ", $4}')"
                    [[ $a == *" ${P_TARGET[$p]} "* ]] && holders+="$h "
                done
                holders=${holders% }
                printf 'pair %-9s vip %s on: %s\n' "$p" "${P_TARGET[$p]}" "${holders:-nobody}"
                # a PostgreSQL pair: also its roles (pg.sh)
                if [ "${H_ROLE[${P_PRIMARY[$p]}]}" = pg ]; then pg_status_line "$p" || bad=1; fi
                ;;
            dns)
                local line='' s rtype=A
                [ "${P_HOST6[$p]-}" != 1 ] || rtype=AAAA
                for s in "$DNS_HOST" "$DNS2_HOST"; do
                    a=
                    ns_exists "baton-$CTL_HOST" && a=$(dns_query "${P_TARGET[$p]}" "$rtype" "${H_ADDR[$s]}" | tr '\n' ' ')
                    a=${a% }
                    line+="${line:+, }${a:-(no answer)} on $s"
                done
                printf 'pair %-9s dns %s %s %s\n' "$p" "${P_TARGET[$p]}" "$rtype" "$line"
                ;;
            haproxy) lb_status_line "$p" || bad=1 ;;
        esac
    done
    if getent passwd "$DEPLOY_USER" >/dev/null && [ -f "$SUDOERS_FILE" ]; then
        printf 'user %s and %s present\n' "$DEPLOY_USER" "$SUDOERS_FILE"
    else
        printf 'user %s or %s MISSING\n' "$DEPLOY_USER" "$SUDOERS_FILE"; bad=1
    fi
    if [ ${#PG_HOSTS[@]} -gt 0 ]; then
        if cmp -s "$PG_HOOK" "$PG_HOOK_SRC"; then
            printf 'hook %s installed (the repo'"'"'s examples/postgres/baton-pg)\n' "$PG_HOOK"
        else
            printf 'hook %s MISSING or not the repo'"'"'s examples/postgres/baton-pg\n' "$PG_HOOK"; bad=1
        fi
    fi
    # keepalived's two hosts (keepalived.sh)
    kp_status bad
    local what="$LAB"
    [ "$FLEET_N" = 0 ] || what+=", $FLEET_N fleet pairs"
    if [ "$bad" = 0 ]; then say "all up ($what)"; else say "NOT all up ($what)"; fi
    return $bad
}
