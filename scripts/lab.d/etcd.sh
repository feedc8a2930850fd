# shellcheck shell=bash
# scripts/lab.d/etcd.sh — sourced by scripts/lab (and by lab.d/selftest, for etcd_selftest
# alone). The etcd cluster, and baton's second configuration, which keeps its state there:
#
#   members    etcd1, etcd2, etcd3 (role etcd in tables.sh: 198.18.0.71-.73, namespaces
#              baton-etcdN): Debian's etcd 3.4, run as user etcd, clients on ADDR:2379 and on
#              its own namespace's 127.0.0.1:2379, peers on ADDR:2380. A static cluster:
#              --initial-cluster names every member by address, so it needs no discovery service
#              and no DNS; started with an empty environment (env -i: no ETCD_* variable can add
#              a discovery URL, a proxy or a listener), no metrics listener, no v2 API; and, like
#              every lab namespace, its namespace has no route beyond the lab's subnets.
#   ctl2, ctl3 role ctlx in tables.sh (198.18.0.251, .252): controllers beside ctl, plain
#              namespaces where a second and a third `baton watch` run; they reach the base
#              pairs' hosts, the DNS servers and etcd (not the fleet's subnets, as config-etcd/
#              has only the base pairs, nor far's, which only the bastion reaches)
#
# In the lab dir:
#   hosts/etcdN/data       the member's data dir (0700, user etcd); kept by up and reset
#   hosts/etcdN/etcd.log   its log (zap, JSON lines; appended at each start)
#   hosts/etcdN/etcd.pid   its pid (written by the shell that execs it)
#   config-etcd/baton.toml config/baton.toml's settings, state_dir "../state-etcd", and a
#                          [store] section on this cluster (prefix ETCD_PREFIX)
#   config-etcd/pairs/     copies of config/pairs/ (the same relative paths hold one level down)
#   state-etcd/            its state dir (0700; reset empties it and every key under the prefix)

# etcd_endpoints VAR — sets VAR to the members' client URLs, comma-separated
etcd_endpoints() {
    local _m _e=''
    for _m in "${ETCD_HOSTS[@]}"; do _e+="${_e:+,}http://${H_ADDR[$_m]}:$ETCD_CLIENT_PORT"; done
    printf -v "$1" '%s' "$_e"
}

# etcd_ctl HOST ARG... — etcdctl in HOST's namespace, on every member, with short timeouts
etcd_ctl() {
    local _h=$1 _eps
    shift
    etcd_endpoints _eps
    ip netns exec "baton-$_h" env -i PATH="$SAFE_PATH" LANG=C ETCDCTL_API=3 \
        etcdctl --endpoints="$_eps" --dial-timeout=1s --command-timeout=3s "$@" </dev/null 9<&-
}

# etcd_args HOST VAR — sets the array VAR to the member's command line
etcd_args() {
    local _h=$1 _a=${H_ADDR[$1]} _m _cluster=''
    local -n _args=$2
    for _m in "${ETCD_HOSTS[@]}"; do _cluster+="${_cluster:+,}$_m=http://${H_ADDR[$_m]}:$ETCD_PEER_PORT"; done
    _args=("$ETCD_BIN" --name "$_h" --data-dir "$LAB/hosts/$_h/data"
        --listen-peer-urls "http://$_a:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://$_a:$ETCD_PEER_PORT"
        --listen-client-urls "http://$_a:$ETCD_CLIENT_PORT,http://127.0.0.1:$ETCD_CLIENT_PORT"
        --advertise-client-urls "http://$_a:$ETCD_CLIENT_PORT"
        --initial-cluster "$_cluster" --initial-cluster-token "$ETCD_TOKEN" --initial-cluster-state new
        --enable-v2=false --logger zap --log-outputs stderr)
}

# etcd_start HOST — start the member in its namespace, in a session of its own (a ^C in the
# terminal of `up` does not reach it), as user etcd, with an empty environment; its data dir
# decides whether it joins the cluster anew or restarts with what it has (--initial-* are then
# ignored). Returns at once; etcd_wait_pids waits for the pid files, etcd_verify for health.
etcd_start() {
    local h=$1 d=$LAB/hosts/$1 args=()
    etcd_args "$h" args
    rm -f "$d/etcd.pid"
    # shellcheck disable=SC2016  # the script is for the inner sh, its arguments follow
    (cd / && exec ip netns exec "baton-$h" setsid /bin/sh -c 'echo $$ >"$0" && exec "$@"' "$d/etcd.pid" \
        setpriv --reuid="$ETCD_USER" --regid="$ETCD_USER" --init-groups -- \
        env -i PATH="$SAFE_PATH" LANG=C "${args[@]}") </dev/null >>"$d/etcd.log" 2>&1 9<&- &
}

# etcd_stop SECONDS PID... — TERM, wait up to SECONDS, then KILL what is left
etcd_stop() {
    local secs=$1 pid left=() i
    shift
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null || true
    for ((i = 0; i < secs * 20; i++)); do
        left=()
        for pid; do proc_gone "$pid" || left+=("$pid"); done
        [ ${#left[@]} -gt 0 ] || return 0
        sleep 0.05
    done
    warn "killing etcd ${left[*]} (did not end within ${secs}s of TERM)"
    kill -KILL "${left[@]}" 2>/dev/null || true
}

# etcd_leader VAR — sets VAR to the member that leads, as the members say (from the
# controller's namespace, or a member's when that is gone); "" when none does or none answers
etcd_leader() {
    local _from=$CTL_HOST _line _f _m
    printf -v "$1" ''
    ns_exists "baton-$_from" || _from=${ETCD_HOSTS[0]}
    ns_exists "baton-$_from" || return 0
    # "URL, ID, VERSION, DB SIZE, IS LEADER, IS LEARNER, RAFT TERM, ..."
    while IFS= read -r _line; do
        IFS=, read -r -a _f <<<"$_line"
        [ "${_f[4]- }" = " true" ] || continue
        for _m in "${ETCD_HOSTS[@]}"; do
            [ "${_f[0]}" = "http://${H_ADDR[$_m]}:$ETCD_CLIENT_PORT" ] && printf -v "$1" '%s' "$_m"
        done
    done < <(etcd_ctl "$_from" endpoint status -w simple 2>/dev/null)
}

# etcd_up — (up) every member runs in its namespace with its current command line: a live one
# is left alone, a dead one started with its data dir, one in a stale namespace or with an
# older command line restarted. The cluster is built anew (data dirs emptied) only when some
# members have data and others none: such a member could not join a cluster that exists.
etcd_up() {
    local h d pid have=0 args=() cmd=() starting=()
    for h in "${ETCD_HOSTS[@]}"; do [ -d "$LAB/hosts/$h/data/member" ] && have=$((have + 1)); done
    if [ $have -gt 0 ] && [ $have -lt ${#ETCD_HOSTS[@]} ]; then
        warn "etcd: only $have of ${#ETCD_HOSTS[@]} members have a data dir; building the cluster anew (its keys are lost)"
        etcd_down
        for h in "${ETCD_HOSTS[@]}"; do rm -rf "$LAB/hosts/$h/data"; done
    fi
    for h in "${ETCD_HOSTS[@]}"; do
        d=$LAB/hosts/$h
        [ -d "$d" ] || install -d -m 0755 "$d"
        if [ ! -d "$d/data" ]; then
            getent passwd "$ETCD_USER" >/dev/null || die "no user $ETCD_USER (Debian's etcd-server creates it; reinstall it)"
            install -d -m 0700 -o "$ETCD_USER" -g "$ETCD_USER" "$d/data"
        fi
        if find_daemon etcd "$h" pid; then
            etcd_args "$h" args
            mapfile -d '' -t cmd 2>/dev/null <"/proc/$pid/cmdline" || cmd=()
            if ! in_ns "$pid" "baton-$h"; then
                # (cut off from its peers: it would wait 7 s to hand over a leadership it holds)
                warn "etcd on $h runs in a stale namespace; restarting it"; etcd_stop 1 "$pid"
            elif [ "${cmd[*]}" != "${args[*]}" ]; then
                say "restarting etcd on $h (new command line)"; etcd_stop 10 "$pid"
            else
                continue
            fi
        fi
        etcd_start "$h"
        starting+=("$h")
    done
    [ ${#starting[@]} -gt 0 ] || return 0
    say "starting etcd on ${starting[*]}"
    for h in "${starting[@]}"; do
        wait_pidfile etcd "$h" || { tail -n 5 "$LAB/hosts/$h/etcd.log" >&2 2>/dev/null; die "etcd on $h did not start"; }
    done
}

# etcd_verify — (verify_reachable) within 20 s, every member answers `endpoint health` (a
# proposal committed through it) from the controller's namespace, and exactly one leads
etcd_verify() {
    local end=$((SECONDS + 20)) out='' n leaders line
    while :; do
        out=$(etcd_ctl "$CTL_HOST" endpoint health 2>&1)
        n=$(grep -c ' is healthy: ' <<<"$out")
        if [ "$n" = ${#ETCD_HOSTS[@]} ]; then
            out=$(etcd_ctl "$CTL_HOST" endpoint status -w simple 2>&1)
            leaders=0
            while IFS= read -r line; do [[ $line == *", true, false, "* ]] && leaders=$((leaders + 1)); done <<<"$out"
            [ $leaders != 1 ] || return 0
            out="$leaders leaders: $out"
        fi
        [ $SECONDS -lt $end ] || break
        sleep 0.2
    done
    warn "etcd: not all ${#ETCD_HOSTS[@]} members healthy with one leader after 20 s: $(tr '\n' ' ' <<<"$out" | cut -c1-400); see $LAB/hosts/etcdN/etcd.log"
    return 1
}

# etcd_down — (down) stop the members by pid: the followers first, then the leader. (TERM to
# all at once costs 7 s: the leader hands its leadership to a member that is ending too and
# waits for that; alone, it has no one to hand it to and ends at once.) Each wait is bounded.
etcd_down() {
    local h pid leader='' followers=() lpid=''
    local -A pid_of=()
    for h in "${ETCD_HOSTS[@]}"; do find_daemon etcd "$h" pid && pid_of["$h"]=$pid; done
    [ ${#pid_of[@]} -gt 0 ] || return 0
    [ ${#pid_of[@]} = 1 ] || etcd_leader leader
    for h in "${ETCD_HOSTS[@]}"; do
        [ -n "${pid_of[$h]-}" ] || continue
        if [ "$h" = "$leader" ]; then lpid=${pid_of[$h]}; else followers+=("${pid_of[$h]}"); fi
    done
    local t0=$EPOCHREALTIME what=''
    for h in "${ETCD_HOSTS[@]}"; do
        [ -z "${pid_of[$h]-}" ] || what+=" $h:${pid_of[$h]}$([ "$h" != "$leader" ] || echo ' (the leader, last)')"
    done
    etcd_stop 10 "${followers[@]}"
    [ -z "$lpid" ] || etcd_stop 10 "$lpid"
    say "stopped etcd$what in $(elapsed "$t0")"
}

# etcd_health_note HOST VAR — (status) appends to VAR whether the member answers `endpoint
# health` from the controller's namespace and whether it leads (asked once for all members:
# ETCD_HEALTH); fails unless it is healthy
etcd_health_note() {
    local -n _note=$2
    local _line _m _f=()
    if [ -z "${ETCD_HEALTH[.]-}" ]; then
        ETCD_HEALTH[.]=1
        if ns_exists "baton-$CTL_HOST"; then
            while IFS= read -r _line; do
                for _m in "${ETCD_HOSTS[@]}"; do
                    [[ $_line == "http://${H_ADDR[$_m]}:$ETCD_CLIENT_PORT is healthy: "* ]] && ETCD_HEALTH["$_m"]=healthy
                done
            done < <(etcd_ctl "$CTL_HOST" --command-timeout=1s endpoint health 2>&1)
            while IFS= read -r _line; do
                IFS=, read -r -a _f <<<"$_line"
                [ "${_f[4]- }" = " true" ] || continue
                for _m in "${ETCD_HOSTS[@]}"; do
                    [ "${_f[0]}" = "http://${H_ADDR[$_m]}:$ETCD_CLIENT_PORT" ] && ETCD_HEALTH["$_m"]+=", leader"
                done
            done < <(etcd_ctl "$CTL_HOST" --command-timeout=1s endpoint status -w simple 2>/dev/null)
        fi
    fi
    case ${ETCD_HEALTH[$1]-} in
        healthy*) _note+=", ${ETCD_HEALTH[$1]}" ;;
        *) _note+=", NOT HEALTHY (endpoint health from baton-$CTL_HOST)"; return 1 ;;
    esac
}

# etcd_write_config — config-etcd/: baton.toml (config/baton.toml's settings with the state in
# state-etcd/ and a [store] section) and copies of config/pairs/ (write_baton_config wrote
# them just before); state-etcd/
etcd_write_config() {
    local c=$LAB/config e=$LAB/config-etcd p name txt eps='' m
    [ -d "$e/pairs/files" ] || install -d -m 0755 "$e" "$e/pairs" "$e/pairs/files"
    [ -d "$LAB/state-etcd" ] || install -d -m 0700 "$LAB/state-etcd"
    IFS= read -r -d '' txt <"$c/baton.toml" || true
    [[ $txt == *$'\nstate_dir = "../state"\n'* ]] || die "$c/baton.toml has no line state_dir = \"../state\" (etcd.sh derives config-etcd/ from it)"
    txt=${txt/$'\nstate_dir = "../state"\n'/$'\nstate_dir = "../state-etcd"\n'}
    txt=${txt#*$'\n'}                                        # (its first line: its own header)
    for m in "${ETCD_HOSTS[@]}"; do eps+="${eps:+, }\"http://${H_ADDR[$m]}:$ETCD_CLIENT_PORT\""; done
    put_text "$e/baton.toml" 0644 root:root "# Written by scripts/lab up: the settings of config/baton.toml, the same pairs (copies of
# config/pairs/), and baton's state in the lab's etcd cluster (etcd1..3), under $ETCD_PREFIX.
# Watchers run in baton-ctl, baton-ctl2 and baton-ctl3 (baton built with the cargo feature
# etcd).
$txt
[store]
kind = \"etcd\"
endpoints = [$eps]
prefix = \"$ETCD_PREFIX\"
"
    for p in "${PAIRS[@]}"; do
        [ -f "$c/pairs/$p.toml" ] || continue
        IFS= read -r -d '' txt <"$c/pairs/$p.toml" || true
        put_text "$e/pairs/$p.toml" 0644 root:root "$txt"
    done
    for p in "$e"/pairs/*.toml; do                       # nothing else: baton reads them all
        name=${p##*/}; name=${name%.toml}
        if [[ " ${PAIRS[*]} " != *" $name "* ]] || [ ! -f "$c/pairs/$name.toml" ]; then rm -f "$p"; say "removed $p"; fi
    done
    IFS= read -r -d '' txt <"$c/pairs/files/release-notes.txt" || true
    put_text "$e/pairs/files/release-notes.txt" 0644 root:root "$txt"
}

# etcd_reset — (reset) state-etcd/ empty, and no key under the prefix in etcd
etcd_reset() {
    local out
    find "$LAB/state-etcd" -mindepth 1 -delete
    out=$(etcd_ctl "$CTL_HOST" del --prefix "$ETCD_PREFIX" 2>&1) ||
        die "etcd: could not delete the keys under $ETCD_PREFIX: $out"
}

# etcd_selftest CTLNS... -- MEMBERNS... — (lab.d/selftest; uses only its arguments, LAB and the
# selftest's ok and bad) the cluster as config-etcd/ names it: its [store] section and pairs;
# each member listens only on its own address and 127.0.0.1; from each controller namespace,
# every member healthy, one leader, a put/get/del round trip under the prefix, and a key on a
# lease of 2 s gone once the lease runs out. Leaves no key behind.
etcd_selftest() {
    local cfg=$LAB/config-etcd/baton.toml ctls=() members=() eps prefix ns out n want a key keys=() t0 left
    while [ $# -gt 0 ] && [ "$1" != -- ]; do ctls+=("$1"); shift; done
    [ $# = 0 ] || shift
    members=("$@")
    eps=$(sed -n 's/^endpoints = \[\(.*\)\]$/\1/p' "$cfg" 2>/dev/null | tr -d '" ')
    prefix=$(sed -n 's/^prefix = "\(.*\)"$/\1/p' "$cfg" 2>/dev/null)
    if grep -qx '\[store\]' "$cfg" && grep -qx 'kind = "etcd"' "$cfg" && grep -qx 'state_dir = "../state-etcd"' "$cfg" &&
        [ -n "$eps" ] && [[ $prefix == /*/ ]]; then
        ok "config-etcd/baton.toml: state_dir ../state-etcd, [store] kind etcd, endpoints $eps, prefix $prefix"
    else
        bad "config-etcd/baton.toml: state_dir ../state-etcd and a [store] of kind etcd with endpoints and a prefix"; return
    fi
    out=$(diff -r "$LAB/config/pairs" "$LAB/config-etcd/pairs" 2>&1)
    if [ -z "$out" ] && [ "$(stat -c %a "$LAB/state-etcd" 2>&1)" = 700 ]; then
        ok "config-etcd/pairs/ is config/pairs/ ($(cd "$LAB/config-etcd/pairs" && echo *.toml)); state-etcd/ is 0700"
    else
        bad "config-etcd/pairs/ is config/pairs/, state-etcd/ is 0700" "$(head -c 300 <<<"$out")"
    fi
    for ns in "${members[@]}"; do
        a=$(ip -n "$ns" -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}'); a=${a%%/*}
        want="127.0.0.1:2379 $a:2379 $a:2380"
        out=$(ip netns exec "$ns" ss -Hltn 2>&1 | awk '{print $4}' | sort | tr '\n' ' ')
        if [ "${out% }" = "$want" ] && [[ ",$eps," == *",http://$a:2379,"* ]]; then
            ok "$ns: etcd listens on $want only (and is in the endpoints)"
        else
            bad "$ns: etcd listens on $want only" "listening: ${out:-nothing}"
        fi
    done
    etcdctl_in() { # etcdctl_in NS ARG... — etcdctl in NS on every endpoint
        local _ns=$1; shift
        ip netns exec "$_ns" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin ETCDCTL_API=3 \
            etcdctl --endpoints="$eps" --dial-timeout=1s --command-timeout=3s "$@" </dev/null
    }
    for ns in "${ctls[@]}"; do
        out=$(etcdctl_in "$ns" endpoint health 2>&1)
        n=$(grep -c ' is healthy: ' <<<"$out")
        if [ "$n" = "${#members[@]}" ]; then
            ok "$ns: endpoint health: $n of ${#members[@]} healthy"
        else
            bad "$ns: endpoint health: all ${#members[@]} healthy" "$(tr '\n' ' ' <<<"$out" | cut -c1-300)"
        fi
        out=$(etcdctl_in "$ns" endpoint status -w simple 2>&1)
        n=$(grep -c ', true, false, ' <<<"$out")
        if [ "$n" = 1 ]; then ok "$ns: endpoint status: one leader ($(grep ', true, false, ' <<<"$out" | cut -d, -f1))"; else bad "$ns: endpoint status: one leader" "$(tr '\n' ' ' <<<"$out" | cut -c1-300)"; fi
        key=${prefix}selftest/${ns#baton-}/$$
        out="$(etcdctl_in "$ns" put "$key" "v-$$" 2>&1) $(etcdctl_in "$ns" get --print-value-only "$key" 2>&1) $(etcdctl_in "$ns" del "$key" 2>&1) [$(etcdctl_in "$ns" get --print-value-only "$key" 2>&1)]"
        if [ "$out" = "OK v-$$ 1 []" ]; then ok "$ns: put, get, del, get of $key"; else bad "$ns: put, get, del, get of $key" "$out"; fi
    done
    # the leases: one per controller namespace, granted one after the other, then watched expire
    t0=$EPOCHREALTIME
    for ns in "${ctls[@]}"; do
        key=${prefix}selftest/lease-${ns#baton-}/$$
        out=$(etcdctl_in "$ns" lease grant 2 2>&1)            # "lease 694d7f... granted with TTL(2s)"
        n=$(awk '/granted with TTL\(2s\)/ {print $2}' <<<"$out")
        if [ -n "$n" ] && [ "$(etcdctl_in "$ns" put --lease="$n" "$key" held 2>&1)" = OK ] &&
            [ "$(etcdctl_in "$ns" get --print-value-only "$key" 2>&1)" = held ]; then
            keys+=("$key")
        else
            bad "$ns: lease grant 2 and a key on it" "$(tr '\n' ' ' <<<"$out" | cut -c1-200)"
        fi
    done
    [ ${#keys[@]} -gt 0 ] || return 0
    for _ in $(seq 1 80); do
        left=$(etcdctl_in "${ctls[0]}" get --prefix --keys-only "${prefix}selftest/" 2>&1 | grep -c .)
        [ "$left" != 0 ] || break
        sleep 0.1
    done
    # (in whole tenths of a second: gone before 1.5 s would be too early for a TTL of 2 s)
    n=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%d", (b-a)*10}')
    t0="$((n / 10)).$((n % 10)) s"
    if [ "$left" = 0 ] && [ "$n" -ge 15 ]; then
        ok "leases of 2 s granted from ${ctls[*]}: their ${#keys[@]} keys there at once, gone $t0 after the first grant"
    else
        bad "leases of 2 s: keys gone after about 2 s" "$left keys left after $t0"
        etcdctl_in "${ctls[0]}" del --prefix "${prefix}selftest/" >/dev/null 2>&1
    fi
}
