# shellcheck shell=bash
# scripts/lab.d/procs.sh — sourced by scripts/lab. Processes: the daemons the lab started, found by their pid files; waiting for them; ending
# them (and only them, by pid).

# pid_alive PID PATTERN — PID is a live (non-zombie) process whose command line contains PATTERN
pid_alive() {
    local pid=$1 pat=$2 args=() cmd
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    mapfile -d '' -t args 2>/dev/null <"/proc/$pid/cmdline" || return 1   # empty for a zombie
    cmd="${args[*]}"
    [ -n "$cmd" ] && [[ $cmd == *"$pat"* ]]
}

# daemon_info KIND HOST -> sets D_PIDFILE, D_PATTERN
daemon_info() {
    local h=$LAB/hosts/$2
    case $1 in
        sshd) D_PIDFILE=$h/sshd.pid; D_PATTERN=$h/sshd_config ;;
        nginx) D_PIDFILE=$h/nginx.pid; D_PATTERN=$h/nginx.conf ;;
        knotd) knot_dir "$2"; D_PIDFILE=$KDIR/knot.pid; D_PATTERN=$KDIR/knot.conf ;;
    esac
}

# find_daemon KIND HOST — sets DPID to the pid recorded for this daemon if it is alive (and
# ours), else to "" and fails
find_daemon() {
    local pid=
    DPID=
    daemon_info "$1" "$2"
    [ -s "$D_PIDFILE" ] || return 1
    IFS= read -r pid 2>/dev/null <"$D_PIDFILE" || true      # Knot writes it without a newline
    pid=${pid%%[!0-9]*}
    pid_alive "$pid" "$D_PATTERN" || return 1
    DPID=$pid
}

# daemon_pid KIND HOST — print the pid recorded for this daemon if it is alive (and ours)
daemon_pid() { find_daemon "$1" "$2" || return 1; printf '%s' "$DPID"; }

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

# all pids (and their ancestry) of this machine: PPID_OF[pid]=ppid
load_process_table() {
    declare -gA PPID_OF=()
    local f line rest pid
    for f in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$f" || continue
        pid=${line%% *}; rest=${line##*) }
        read -r _ ppid _ <<<"$rest"
        PPID_OF[$pid]=$ppid
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
            if find_daemon "$kind" "$h"; then pids+=("$DPID"); labels+=("$kind/$h:$DPID"); fi
        done
    done
    if [ ${#pids[@]} -gt 0 ]; then
        load_process_table
        local kids; kids=$(descendants_of "${pids[@]}")
        if [ ${#pids[@]} -le 12 ]; then say "stopping ${labels[*]}"; else say "stopping ${#pids[@]} daemons"; fi
        # shellcheck disable=SC2086
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
