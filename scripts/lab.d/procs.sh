# shellcheck shell=bash
# scripts/lab.d/procs.sh — sourced by scripts/lab. Processes: the daemons the lab started,
# found by their pid files; waiting for them; ending them (and only them, by pid).

# pid_alive PID PATTERN — PID is a live (non-zombie) process whose command line contains PATTERN
pid_alive() {
    local pid=$1 pat=$2 args=() cmd
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    mapfile -d '' -t args 2>/dev/null <"/proc/$pid/cmdline" || return 1   # empty for a zombie
    cmd="${args[*]}"
    [ -n "$cmd" ] && [[ $cmd == *"$pat"* ]]
}

# daemon_info KIND HOST PIDFILEVAR PATTERNVAR — sets PIDFILEVAR to the daemon's pid file and
# PATTERNVAR to what its command line contains (its config file)
daemon_info() {
    local _h=$LAB/hosts/$2 _k
    case $1 in
        sshd) printf -v "$3" '%s' "$_h/sshd.pid"; printf -v "$4" '%s' "$_h/sshd_config" ;;
        nginx) printf -v "$3" '%s' "$_h/nginx.pid"; printf -v "$4" '%s' "$_h/nginx.conf" ;;
        knotd) knot_dir "$2" _k; printf -v "$3" '%s' "$_k/knot.pid"; printf -v "$4" '%s' "$_k/knot.conf" ;;
        postgres) printf -v "$3" '%s' "$_h/pgdata/postmaster.pid"; printf -v "$4" '%s' "$_h/pgdata" ;;
        haproxy) printf -v "$3" '%s' "$_h/haproxy.pid"; printf -v "$4" '%s' "$_h/haproxy.cfg" ;;
        etcd) printf -v "$3" '%s' "$_h/etcd.pid"; printf -v "$4" '%s' "$_h/data" ;;
    esac
}

# find_daemon KIND HOST [PIDVAR] — the pid recorded for this daemon is alive (and ours); sets
# PIDVAR to it (to "" when it fails)
find_daemon() {
    local _pid='' _pidfile _pattern
    [ -z "${3-}" ] || printf -v "$3" ''
    daemon_info "$1" "$2" _pidfile _pattern
    [ -s "$_pidfile" ] || return 1
    IFS= read -r _pid 2>/dev/null <"$_pidfile" || true      # Knot writes it without a newline
    _pid=${_pid%%[!0-9]*}
    pid_alive "$_pid" "$_pattern" || return 1
    [ -z "${3-}" ] || printf -v "$3" '%s' "$_pid"
}

# in_ns PID NS — the process lives in the current incarnation of network namespace NS
in_ns() { [ "/proc/$1/ns/net" -ef "/run/netns/$2" ]; }

proc_gone() { # proc_gone PID — the process has ended or is a zombie (builtins only)
    local st=
    IFS= read -r st 2>/dev/null <"/proc/$1/stat" || return 0
    st=${st##*) }
    [ "${st%% *}" = Z ]
}

# stop_pids PID... — TERM, wait up to 5 s, then KILL what is left
stop_pids() {
    local pid left i
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null || true
    for i in $(seq 1 100); do
        left=()
        for pid in "$@"; do proc_gone "$pid" || left+=("$pid"); done
        [ ${#left[@]} -eq 0 ] && return 0
        sleep 0.05
    done
    warn "killing ${left[*]} (did not end on TERM)"
    kill -KILL "${left[@]}" 2>/dev/null || true
}

wait_pidfile() { # wait_pidfile KIND HOST — up to 5 s for the daemon's pid file and process
    local i
    for i in $(seq 1 100); do
        find_daemon "$1" "$2" && return 0
        sleep 0.05
    done
    return 1
}

# load_process_table — all pids (and their ancestry) of this machine: PPID_OF[pid]=ppid
load_process_table() {
    PPID_OF=()
    local f line rest pid ppid
    for f in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$f" || continue
        pid=${line%% *}; rest=${line##*) }
        read -r _ ppid _ <<<"$rest"
        PPID_OF["$pid"]=$ppid
    done
}

descendants_of() { # descendants_of PID... — print every descendant pid
    local -A kids=()
    local p q queue=("$@") i=0
    for p in "${!PPID_OF[@]}"; do kids[${PPID_OF[$p]}]+="$p "; done
    while [ $i -lt ${#queue[@]} ]; do
        p=${queue[$i]}; i=$((i + 1))
        for q in ${kids[$p]-}; do queue+=("$q"); echo "$q"; done
    done
}

# end_processes_of HOST... — 1. the daemons these hosts recorded, by pid, with their children
# (sshd's per-connection processes outlive the listener otherwise); 2. anything else still
# inside their namespaces was started inside the lab (a test's controller, a stray session):
# end it by pid, never ourselves or our callers. HOST "sw" is the bridge's namespace.
end_processes_of() {
    local h kind pid pids=() labels=()
    for h in "$@"; do
        [ "$h" = sw ] && continue
        for kind in $(host_daemons "$h"); do
            if find_daemon "$kind" "$h" pid; then pids+=("$pid"); labels+=("$kind/$h:$pid"); fi
        done
    done
    if [ ${#pids[@]} -gt 0 ]; then
        load_process_table
        local kids; kids=$(descendants_of "${pids[@]}")
        if [ ${#pids[@]} -le 12 ]; then say "stopping ${labels[*]}"; else say "stopping ${#pids[@]} daemons"; fi
        # shellcheck disable=SC2086  # split on purpose: one argument per pid
        stop_pids "${pids[@]}" $kids
    fi
    load_process_table
    local self_chain=" " p=$$
    while [ -n "$p" ] && [ "$p" != 0 ]; do self_chain+="$p "; p=${PPID_OF[$p]:-}; done
    local ns stray=()
    for h in "$@"; do
        ns=baton-$h
        ns_exists "$ns" || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            [[ $self_chain == *" $pid "* ]] && continue
            stray+=("$pid")
            say "ending leftover process $pid in $ns: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-100)"
        done
    done
    [ ${#stray[@]} -eq 0 ] || stop_pids "${stray[@]}"
}
