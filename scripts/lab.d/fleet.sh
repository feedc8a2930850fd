# shellcheck shell=bash
# scripts/lab.d/fleet.sh — sourced by scripts/lab. The fleet: its pairs checked quickly, set up
# in parallel, removed, reset.

# fleet_pair_ok PAIR — (no writes; builtins and one `ip` per host) the pair is complete: keys,
# dirs, config files as up would write them, network, both daemons alive and consistent
fleet_pair_ok() {
    local p=$1 h d k e txt spid npid broken
    for h in "${P_PRIMARY[$p]}" "${P_STANDBY[$p]}"; do
        d=$LAB/hosts/$h; k=$d/ssh_host_ed25519_key; e=/etc/netns/baton-$h
        [ -s "$k" ] && [ -s "$k.pub" ] && [ "${STAT_OF[$k]-}" = "600 root:root" ] &&
            [ -d "$d/srv" ] && [ -d "$d/nginx-tmp" ] || return 1
        sshd_config_text "$h" txt; file_current "$d/sshd_config" 0644 root:root "$txt" || return 1
        nginx_conf_text "$h" txt; file_current "$d/nginx.conf" 0644 root:root "$txt" || return 1
        fleet_hosts_text "$h" txt; file_current "$e/hosts" 0644 root:root "$txt" || return 1
        resolv_conf_text txt; file_current "$e/resolv.conf" 0644 root:root "$txt" || return 1
        service_daemons "$h" spid npid broken
        [ -n "$spid" ] && [ -n "$npid" ] && [ "$broken" = 0 ] || return 1
        fleet_net_ok "$h" "$spid" || return 1
    done
}

# fleet_pair_setup PAIR — build or repair both hosts of a fleet pair (what up does for a base
# host, for these two); runs in a background subshell of run_pool
fleet_pair_setup() {
    local p=$1 h d e txt
    for h in "${P_PRIMARY[$p]}" "${P_STANDBY[$p]}"; do
        d=$LAB/hosts/$h; e=/etc/netns/baton-$h
        [ -d "$d/nginx-tmp" ] || install -d -m 0755 "$d" "$d/nginx-tmp"
        host_key "$h"
        chmod 0600 "$d/ssh_host_ed25519_key"
        ensure_srv "$h"
        write_host_files "$h"
        [ -d "$e" ] || install -d -m 0755 "$e"
        fleet_hosts_text "$h" txt; put_text "$e/hosts" 0644 root:root "$txt"
        resolv_conf_text txt; put_text "$e/resolv.conf" 0644 root:root "$txt"
        ensure_host_net "$h"
    done
    vip_if_new "$p"
    for h in "${P_PRIMARY[$p]}" "${P_STANDBY[$p]}"; do start_service_host "$h"; done
}

# run_pool FUNC FAILEDVAR ITEM... — FUNC ITEM for each item, in background subshells,
# FLEET_JOBS at a time (their stdout is dropped when there are more than 10 items, their
# stderr shown); sets the array FAILEDVAR to the items whose FUNC failed
run_pool() {
    local _fn=$1 _item _quiet=0
    local -n _failed=$2
    shift 2
    local -A _running=()
    _failed=()
    [ $# -le 10 ] || _quiet=1
    for _item in "$@"; do
        while [ ${#_running[@]} -ge "$FLEET_JOBS" ]; do pool_wait _running "${!_failed}"; done
        if [ $_quiet = 1 ]; then ( "$_fn" "$_item" ) >/dev/null & else ( "$_fn" "$_item" ) & fi
        _running[$!]=$_item
    done
    while [ ${#_running[@]} -gt 0 ]; do pool_wait _running "${!_failed}"; done
}

# pool_wait RUNNINGVAR FAILEDVAR — (of run_pool) wait for one job of RUNNINGVAR (pid -> item)
# to end; a failed one's item is added to FAILEDVAR
pool_wait() {
    local -n _jobs=$1 _bad=$2
    local _pid='' _rc=0
    wait -n -p _pid || _rc=$?
    if [ -z "$_pid" ]; then _jobs=(); return 0; fi
    [ "$_rc" = 0 ] || _bad+=("${_jobs[$_pid]}")
    unset "_jobs[$_pid]"
}

# fleet_up — every fleet pair complete: a quick look at each (fleet_pair_ok), then the ones
# that need work set up in parallel
fleet_up() {
    [ "$FLEET_N" -gt 0 ] || return 0
    local p todo=() failed=() t0=$EPOCHREALTIME
    for p in "${FLEET_PAIRS[@]}"; do
        fleet_pair_ok "$p" && continue
        todo+=("$p")
        unset "H_ETH0[${P_PRIMARY[$p]}]" "H_ETH0[${P_STANDBY[$p]}]" "H_LOCAL[${P_PRIMARY[$p]}]" "H_LOCAL[${P_STANDBY[$p]}]"
        # shellcheck disable=SC2034  # run state (common.sh), read by verify_reachable
        { FLEET_TOUCHED[${P_PRIMARY[$p]}]=1; FLEET_TOUCHED[${P_STANDBY[$p]}]=1; }
    done
    [ ${#todo[@]} -gt 0 ] || return 0
    say "fleet: setting up ${#todo[@]} of $FLEET_N pairs, $FLEET_JOBS at a time: $(span "${todo[@]}")"
    run_pool fleet_pair_setup failed "${todo[@]}"
    # a host set up anew may have a new MAC address (a new veth): the controller and the
    # client forget the old ones, or they would send to them until their entries time out
    local h
    for h in "$CTL_HOST" "$CLIENT_HOST"; do ip -n "baton-$h" neigh flush dev eth0 2>/dev/null || true; done
    [ ${#failed[@]} = 0 ] ||
        die "fleet pairs not set up: $(span "${failed[@]}"); see the messages above and $LAB/hosts/fNNN?/*.log"
    say "fleet: set up in $(elapsed "$t0")"
}

# remove_fleet_pairs FROM TO — fleet pairs FROM..TO completely: their daemons (by pid) and
# anything else in their namespaces, the namespaces (their veths go with them), host dirs,
# /etc/netns entries, pair files, state
remove_fleet_pairs() {
    local k h p hosts=() names=() paths=()
    for ((k = $1; k <= $2; k++)); do
        fleet_define "$k" - false p
        names+=("$p"); hosts+=("${P_PRIMARY[$p]}" "${P_STANDBY[$p]}")
    done
    end_processes_of "${hosts[@]}"
    for h in "${hosts[@]}"; do
        if ns_exists "baton-$h"; then ip netns del "baton-$h"; fi
        paths+=("/etc/netns/baton-$h" "$LAB/hosts/$h")
    done
    for k in "${names[@]}"; do
        paths+=("$LAB/fleet/pairs/$k.toml" "$LAB/fleet/state/$k."* "$LAB/fleet/state/.$k."*)
    done
    rm -rf "${paths[@]}"
    say "removed ${#names[@]} fleet pairs: $(span "${names[@]}")"
}

# reset_fleet — the VIP only on each pair's initial primary, srv files at version 1, the
# fleet's state empty. A host whose local addresses fleet_up saw (H_LOCAL) to be exactly its
# own (and the VIP on the primary) is left as it is.
reset_fleet() {
    local p h ns a prim vip addrs keep
    [ "$FLEET_N" -gt 0 ] || return 0
    for p in "${FLEET_PAIRS[@]}"; do
        prim=${P_PRIMARY[$p]}; vip=${P_TARGET[$p]}
        for h in "$prim" "${P_STANDBY[$p]}"; do
            ns=baton-$h
            keep=" ${H_ADDR[$h]} "
            [ "$h" = "$prim" ] && keep+="${vip%/*} "
            if [ "${H_LOCAL[$h]-}" != "$keep" ]; then
                addrs=${H_ETH0[$h]-}
                [ -n "$addrs" ] || addrs=" $(ip -n "$ns" -o -4 addr show dev eth0 | awk '{printf "%s ", $4}')"
                keep=" ${H_ADDR[$h]}/$NET_BITS "
                [ "$h" = "$prim" ] && keep+="$vip "
                for a in $addrs; do
                    [[ $keep == *" $a "* ]] || ip -n "$ns" addr del "$a" dev eth0
                done
                if [ "$h" = "$prim" ] && [[ $addrs != *" $vip "* ]]; then
                    ip -n "$ns" addr add "$vip" dev eth0
                fi
            fi
            srv_is_initial "$h" || reset_srv "$h"
        done
    done
    local st=("$LAB/fleet/state"/* "$LAB/fleet/state"/.[!.]* "$LAB/fleet/state"/..?*)
    [ ${#st[@]} = 0 ] || find "$LAB/fleet/state" -mindepth 1 -delete
}
