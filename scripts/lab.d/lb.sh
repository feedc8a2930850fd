# shellcheck shell=bash
# scripts/lab.d/lb.sh — sourced by scripts/lab. The HAProxy pairs (method haproxy in the
# tables): the pair's two hosts are service hosts (sshd and nginx, like blue and green); a third
# host, the pair's balancer (role haproxy), runs sshd and Debian's HAProxy 2.6 with
#   frontend front  on the pair's target (198.18.0.40:80), sending every request to
#   backend PAIR    roundrobin over two servers named after the pair's hosts (teal, coral), each
#                   checked with GET /health (status 200 expected) every second (rise 2, fall 2)
# and the admin socket (runtime API, level admin) at $LAB/hosts/BALANCER/haproxy.sock, mode 660,
# group haproxy. The deploy user is a member of group haproxy (user.sh; on Debian, the stock
# admin socket is group haproxy, mode 660, too), so over SSH to the balancer it runs e.g.
#   echo 'set server lb/coral weight 10' | socat stdio UNIX-CONNECT:/var/lib/baton-lab/hosts/lb/haproxy.sock
# without sudo. (A unix socket's path is the same in every namespace: it belongs to the
# filesystem, so the path is under the lab dir, where no other lab host's files are.)
#
# The initial state, after up and reset: the initial primary weight 100, the standby weight 0,
# both in state ready (UP) and health-checked. All traffic goes to the primary, and "the holder
# is the server with weight > 0 that is ready" names exactly one host. It is what the
# configuration says, so a restarted HAProxy starts in it. (A switch through the runtime API
# leaves the other form: the new holder at weight 100 and ready, the old one in drain.)
#
# The pair's changes (in its file, which up writes as $LAB/config/pairs/PAIR.toml): v2 and v1 as for the other pairs, and v2-bad, version 2 with a fault:
# it creates FAULT_FILE (/srv/baton-lab/fault-500) on the host, and while that exists the host's
# nginx answers about 20 % of ordinary requests with a 500 (web.sh: nginx_fault_text); /health
# and /index.html stay fine. Its rollback (and v1) remove the file. No reload and no sudo rule:
# nginx looks for the file on every request.
#
# Per balancer host HOST, in $LAB/hosts/HOST (root, 0755): haproxy.cfg, haproxy.pid,
# haproxy.sock, start.log (HAProxy's start-up messages; it logs nothing else), sshd_config,
# ssh_host_ed25519_key*, sshd.pid, sshd.log. $LAB/bin/lbstat is the repo's scripts/lbstat
# (`show stat` of a backend as JSON, per server), so the balancer host has it too.

# lb_pairs VAR — sets the array VAR to the base pairs with method haproxy
lb_pairs() {
    local -n _lp=$1
    local _p
    _lp=()
    for _p in "${PAIRS[@]}"; do [ "${P_METHOD[$_p]}" = haproxy ] && _lp+=("$_p"); done
    return 0
}

# haproxy_cfg_text HOST VAR — sets VAR to the haproxy.cfg of balancer HOST
haproxy_cfg_text() {
    local _h=$1 _d=$LAB/hosts/$1 _p=${H_PAIR[$1]} _a _b
    _a=${P_PRIMARY[$_p]}; _b=${P_STANDBY[$_p]}
    printf -v "$2" '%s' "# Written by scripts/lab up: HAProxy of lab host $_h (namespace baton-$_h), the balancer of
# pair $_p. Initial state: $_a weight $LB_WEIGHT, $_b weight 0, both ready: all traffic on $_a.
# Runtime API: $_d/haproxy.sock (level admin; group $LB_GROUP, of which $DEPLOY_USER is a member).
global
    user haproxy
    group haproxy
    pidfile $_d/haproxy.pid
    stats socket $_d/haproxy.sock mode 660 level admin group $LB_GROUP
    stats timeout 30s

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 2s
    timeout queue 5s
    retries 3
    option redispatch 1
    default-server inter 1s rise 2 fall 2

frontend $LB_FRONTEND
    bind ${P_TARGET[$_p]}
    default_backend $_p

backend $_p
    balance roundrobin
    option httpchk
    http-check send meth GET uri /health
    http-check expect status 200
    server $_a ${H_ADDR[$_a]}:80 weight $LB_WEIGHT check
    server $_b ${H_ADDR[$_b]}:80 weight 0 check
"
}

# lb_host_files HOST — its dir, sshd_config and haproxy.cfg (CFG_CHANGED[sshd/HOST] and
# CFG_CHANGED[haproxy/HOST] say whether they changed)
lb_host_files() {
    local h=$1 d=$LAB/hosts/$1 txt
    [ -d "$d" ] || install -d -m 0755 "$d"
    sshd_config_text "$h" txt
    put_text "$d/sshd_config" 0644 root:root "$txt" "CFG_CHANGED[sshd/$h]"
    haproxy_cfg_text "$h" txt
    put_text "$d/haproxy.cfg" 0644 root:root "$txt" "CFG_CHANGED[haproxy/$h]"
}

# lb_tools_install — $LAB/bin/lbstat: the repo's scripts/lbstat
lb_tools_install() {
    local src txt=
    src=$(dirname "$SELF")/lbstat
    [ -f "$src" ] || die "missing $src"
    IFS= read -r -d '' txt <"$src" || true
    put_text "$LAB/bin/lbstat" 0755 root:root "$txt"
}

# plain_sshd HOST — its sshd runs in its namespace with its current configuration and host key
# (a balancer's, the bastion's: no private mounts)
plain_sshd() {
    local h=$1 d=$LAB/hosts/$1 pid
    if find_daemon sshd "$h" pid; then
        if ! in_ns "$pid" "baton-$h"; then
            warn "sshd of $h lives in a stale namespace; restarting it"; stop_pids "$pid"; pid=
        elif [ "${NEW_HOSTKEY[$h]-0}" = 1 ] || [ "${CFG_CHANGED[sshd/$h]-0}" = 1 ]; then
            say "restarting sshd on $h (new key or config)"; stop_pids "$pid"; pid=
        fi
    fi
    [ -z "$pid" ] || return 0
    say "starting sshd on $h"
    rm -f "$d/sshd.pid"
    ip netns exec "baton-$h" env -i PATH="$SAFE_PATH" LANG=C \
        /usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log" </dev/null >>"$d/start.log" 2>&1 9<&- ||
        { tail -n 5 "$d/start.log" >&2; die "could not start sshd on $h"; }
    wait_pidfile sshd "$h" || { tail -n 5 "$d/sshd.log" >&2 2>/dev/null; die "sshd on $h did not start"; }
}

# lb_haproxy HOST — its HAProxy runs in its namespace with its current configuration (a new
# configuration means a restart, which is also the initial state), its frontend enabled (a
# test may have disabled it: a paused frontend takes no requests)
lb_haproxy() {
    local h=$1 d=$LAB/hosts/$1 pid fe
    if find_daemon haproxy "$h" pid; then
        if ! in_ns "$pid" "baton-$h"; then
            warn "haproxy of $h lives in a stale namespace; restarting it"; stop_pids "$pid"; pid=
        elif [ "${CFG_CHANGED[haproxy/$h]-0}" = 1 ]; then
            say "restarting haproxy on $h (new config)"; stop_pids "$pid"; pid=
        elif ! fe=$(lb_api "$h" "show stat $LB_FRONTEND 1 -1") || [[ $fe != '# pxname,'* ]]; then
            warn "haproxy of $h does not answer on $d/haproxy.sock; restarting it"; stop_pids "$pid"; pid=
        elif [[ $fe != *$'\n'"$LB_FRONTEND,FRONTEND,"*",OPEN,"* ]]; then
            say "enabling frontend $LB_FRONTEND of haproxy on $h"
            lb_api "$h" "enable frontend $LB_FRONTEND" >/dev/null
        fi
    fi
    [ -z "$pid" ] || return 0
    /usr/sbin/haproxy -c -q -f "$d/haproxy.cfg" >>"$d/start.log" 2>&1 9<&- ||
        { tail -n 5 "$d/start.log" >&2; die "HAProxy rejects $d/haproxy.cfg"; }
    say "starting haproxy on $h"
    rm -f "$d/haproxy.pid"
    ip netns exec "baton-$h" env -i PATH="$SAFE_PATH" LANG=C \
        /usr/sbin/haproxy -D -f "$d/haproxy.cfg" </dev/null >>"$d/start.log" 2>&1 9<&- ||
        { tail -n 5 "$d/start.log" >&2; die "could not start haproxy on $h"; }
    wait_pidfile haproxy "$h" || { tail -n 5 "$d/start.log" >&2 2>/dev/null; die "haproxy on $h did not start"; }
}

# lb_host_up HOST — a balancer's sshd and HAProxy run
lb_host_up() { plain_sshd "$1"; lb_haproxy "$1"; }

# lb_api HOST COMMANDS — send COMMANDS (one line; several are separated by ";") to the admin
# socket of balancer HOST and print the answer (HAProxy answers each command with its text, or
# nothing on success, then an empty line); fails when the socket does not answer
lb_api() {
    socat -t 2 -T 5 - "UNIX-CONNECT:$LAB/hosts/$1/haproxy.sock" <<<"$2" 2>/dev/null 9<&-
}

# lb_servers PAIR MAPVAR — sets MAPVAR[SERVER] (an associative array) to
# "STATUS|WEIGHT|SCUR|STOT|CHECK_STATUS" for each server of the pair's backend, and
# MAPVAR[FRONTEND] to "STATUS|-|SCUR|STOT|" of the frontend, from one `show stat` (columns
# found by name in its header); fails when the socket does not answer
lb_servers() {
    local -n _srv=$2
    local _out _name _rest
    _srv=()
    _out=$(lb_api "${P_BALANCER[$1]}" 'show stat -1 5 -1') || return 1
    [[ $_out == '# pxname,'* ]] || return 1
    while IFS='|' read -r _name _rest; do
        [ -n "$_name" ] && _srv["$_name"]=$_rest
    done < <(awk -F, -v be="$1" -v fe="$LB_FRONTEND" '
        NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) c[$i] = i; next }
        ($1 == be && $2 != "BACKEND" && $2 != "FRONTEND") || ($1 == fe && $2 == "FRONTEND") {
            printf "%s|%s|%s|%s|%s|%s\n", $2, $c["status"], ($2 == "FRONTEND" ? "-" : $c["weight"]), $c["scur"], $c["stot"], $c["check_status"] }' <<<"$_out")
    return 0
}

# lb_ready PAIR [PROBLEMVAR] — both servers pass their health check (L7OK, not DOWN), whatever
# their weight and admin state (a server in maintenance, or whose check was disabled, is not
# checked: it counts as ready)
lb_ready() {
    local _p=$1 _h _st _w _rest _chk _why=''
    local -A _s=()
    if ! lb_servers "$_p" _s; then
        _why="no answer on $LAB/hosts/${P_BALANCER[$_p]}/haproxy.sock"
    else
        for _h in "${P_PRIMARY[$_p]}" "${P_STANDBY[$_p]}"; do
            if [ -z "${_s[$_h]-}" ]; then _why+=", no server $_h"; continue; fi
            IFS='|' read -r _st _w _rest _rest _chk <<<"${_s[$_h]}"
            [[ $_st == MAINT* || $_st == "no check" ]] && continue
            [[ $_st != DOWN* ]] && [ "$_chk" = L7OK ] || _why+=", $_h $_st ($_chk)"
        done
        _why=${_why#, }
    fi
    [ -z "${2-}" ] || printf -v "$2" '%s' "$_why"
    [ -z "$_why" ]
}

# lb_wait_ready PAIR SECONDS [PROBLEMVAR] — until lb_ready holds, SECONDS at most
lb_wait_ready() {
    local _i
    for ((_i = 0; _i < $2 * 10; _i++)); do
        lb_ready "$1" "${3-}" && return 0
        sleep 0.1
    done
    return 1
}

# lb_reset_pair PAIR — the initial state through the runtime API (no restart): the initial
# primary weight 100, the standby weight 0, both ready with their health checks on, the
# frontend enabled, the counters cleared; then waits (5 s at most) for both to pass their checks
lb_reset_pair() {
    local p=$1 h=${P_BALANCER[$1]} a=${P_PRIMARY[$1]} b=${P_STANDBY[$1]} out why
    out=$(lb_api "$h" "set server $p/$a state ready; set server $p/$a weight $LB_WEIGHT; enable health $p/$a; set server $p/$b state ready; set server $p/$b weight 0; enable health $p/$b; enable frontend $LB_FRONTEND; clear counters all") ||
        die "haproxy on $h does not answer on $LAB/hosts/$h/haproxy.sock"
    out=${out//All sockets are already enabled./}
    [ -z "${out//[[:space:]]/}" ] || die "haproxy on $h refused the initial state: $(tr '\n' ' ' <<<"$out")"
    lb_wait_ready "$p" 5 why || warn "pair $p: a server fails its health check after 5 s: $why"
}

# lb_status_line PAIR — print the pair's frontend and servers (state, weight, current and
# total sessions, health check) and which server takes traffic; fails when the socket does not
# answer, the frontend is not open, a server is missing, or one fails its health check (DOWN)
lb_status_line() {
    local p=$1 h line='' holders='' st w cur tot chk ok=0
    local -A s=()
    if lb_servers "$p" s; then
        ok=1
        IFS='|' read -r st w cur tot chk <<<"${s[FRONTEND]-MISSING}"
        line="frontend $LB_FRONTEND $st sessions ${cur:-?}"
        [ "$st" = OPEN ] || ok=0
        for h in "${P_PRIMARY[$p]}" "${P_STANDBY[$p]}"; do
            if [ -z "${s[$h]-}" ]; then line+=", $h MISSING"; ok=0; continue; fi
            IFS='|' read -r st w cur tot chk <<<"${s[$h]}"
            line+=", $h $st weight $w sessions $cur (total $tot) check $chk"
            [[ $st == DOWN* ]] && ok=0
            [[ $st == UP* ]] && [ "${w:-0}" -gt 0 ] && holders+="$h "
        done
        holders=${holders% }
        line+="; traffic on: ${holders:-nobody}"
    else
        line="admin socket $LAB/hosts/${P_BALANCER[$p]}/haproxy.sock NOT ANSWERING"
    fi
    printf 'pair %-9s haproxy %s backend %s: %s\n' "$p" "${P_TARGET[$p]}" "$p" "$line"
    [ $ok = 1 ]
}

# lb_pair_toml PAIR VAR — sets VAR to the pair's file: hosts, the balancer, checks, changes
lb_pair_toml() {
    local p=$1 prim=${P_PRIMARY[$1]} stby=${P_STANDBY[$1]} lb=${P_BALANCER[$1]}
    local ver1="sed -i 's/version=[0-9]*/version=1/' $SRV_PATH/index.html" ver2="sed -i 's/version=[0-9]*/version=2/' $SRV_PATH/index.html"
    local -n _t=$2
    _t="# Written by scripts/lab up: ${P_DESC[$p]}.
environment = \"${P_ENV[$p]}\"
version_command = \"cat $SRV_PATH/VERSION\"
observe_period = \"2s\"

[hosts.$prim]
address = \"${H_ADDR[$prim]}\"

[hosts.$stby]
address = \"${H_ADDR[$stby]}\"

# The balancer: HAProxy on host $lb, reached over SSH like the pair's hosts (the [ssh] settings
# and known_hosts of baton.toml). baton drives its runtime API on the admin socket there (the
# deploy user is in the socket's group: no sudo). The backend's servers are named after the
# pair's hosts. Initial state: $prim weight $LB_WEIGHT, $stby weight 0, both ready.
[traffic]
method = \"haproxy\"
host = \"$lb\"
address = \"${H_ADDR[$lb]}\"
ssh_port = 22
socket = \"$LAB/hosts/$lb/haproxy.sock\"
backend = \"$p\"
frontend = \"${P_TARGET[$p]}\"
drain_timeout = \"10s\"
# A ramp (apply --ramp) aborts when the updated host's 5xx rate exceeds the other's by more than
# max_error_increase percentage points over a step, or its mean response time is more than
# max_latency_factor times the other's; steps with fewer than min_requests requests to it judge
# nothing (unless it answered with 5xx while the other had none).
max_error_increase = 1.0
max_latency_factor = 2.0
min_requests = 20

# The page check asks for /index.html, which v2-bad's fault spares like /health (the fault hits
# the users' \"/\" and every other path): v2-bad passes every check, and only a comparison of
# the two hosts' answers catches it.
[[checks]]
name = \"page\"
kind = \"http\"
url = \"http://{address}/index.html\"
expect_status = 200
expect_body = \"host={host} \"
timeout = \"2s\"

[[checks]]
name = \"health\"
kind = \"http\"
url = \"http://{address}/health\"
expect_status = 200
expect_body = \"ok {host}\"
timeout = \"2s\"

[changes.v2]
label = \"service version 2\"
upload = [{ from = \"files/release-notes.txt\", to = \"$SRV_PATH/release-notes.txt\", mode = \"0644\" }]
steps = [\"$ver2\", \"echo 2 > $SRV_PATH/VERSION\"]
rollback = [\"$ver1\", \"echo 1 > $SRV_PATH/VERSION\", \"rm -f $SRV_PATH/release-notes.txt\"]

[changes.v1]
label = \"service version 1\"
steps = [\"$ver1\", \"echo 1 > $SRV_PATH/VERSION\", \"rm -f $FAULT_FILE\"]

# Version 2 with a fault: while $FAULT_FILE exists, the host's nginx answers about 20 % of
# ordinary requests with a 500 (\"500 fault on host=NAME\"); /health and /index.html stay 200.
[changes.v2-bad]
label = \"service version 2 with a fault (about 20 % of requests get a 500)\"
steps = [\"$ver2\", \"echo 2 > $SRV_PATH/VERSION\", \"touch $FAULT_FILE\"]
rollback = [\"rm -f $FAULT_FILE\", \"$ver1\", \"echo 1 > $SRV_PATH/VERSION\"]
"
}

# remove_pending_config — $LAB/pending/ of labs written before baton read method "haproxy":
# its pair files moved to config/pairs/ (write_baton_config), so it goes
remove_pending_config() {
    [ -d "$LAB/pending" ] || return 0
    rm -rf "$LAB/pending"
    say "removed $LAB/pending (the HAProxy pair's file is in config/pairs/ now)"
}

# lb_up, lb_reset — every HAProxy pair's balancer up; every HAProxy pair back to its initial state
lb_up() { local h; for h in "${LB_HOSTS[@]}"; do lb_host_up "$h"; done; }
lb_reset() { local p ps; lb_pairs ps; for p in "${ps[@]}"; do lb_reset_pair "$p"; done; }
