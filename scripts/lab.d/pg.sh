# shellcheck shell=bash
# scripts/lab.d/pg.sh — sourced by scripts/lab. The PostgreSQL pairs (hosts with role pg in the
# tables): PostgreSQL 15 streaming replication, one postmaster per host namespace, the pair's
# initial primary writable and its standby streaming from it (hot standby, read-only).
#
# Per host HOST, in $LAB/hosts/HOST (root, 0755):
#   pgdata/       the data directory (postgres, 0700). Its postgresql.conf holds only the
#                 settings both hosts share (pg_basebackup copies it, and pg_rewind would)
#   sock/         its own unix socket directory (postgres): the compiled-in /var/run/postgresql
#                 is the same directory in every namespace, and a second postmaster on port
#                 5432 there refuses to start
#   postgres.log  the server's log (pg_ctl -l)
#   .pg-ready     written once the data directory is complete (initdb or pg_basebackup done)
# The host-specific settings (listen address, port, socket directory) are on the postmaster's
# command line, which wins over the files. It listens on 0.0.0.0: a namespace holds only its
# own addresses, and so it also answers on the VIP whenever the VIP is there.
# Clients: any lab address may connect as `app` to database `app` (trust), and as `postgres`
# (also for replication); unix sockets: trust.

# pg_run HOST CMD... — run CMD as the postgres user inside HOST's namespace, from /, with a
# clean environment and without the lab's lock (fd 9; a postmaster started here keeps its fds)
pg_run() {
    local h=$1
    shift
    (cd / && exec ip netns exec "baton-$h" setpriv --reuid=postgres --regid=postgres --init-groups -- \
        env -i PATH="$SAFE_PATH" LANG=C LC_ALL=C HOME=/var/lib/postgresql "$@") 9<&-
}

# pg_sql HOST SQL — run SQL as postgres on HOST's server through its unix socket; prints the
# rows unaligned (fields split by |)
pg_sql() {
    PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$LAB/hosts/$1/sock" \
        -p "$PG_PORT" -U postgres -d postgres -c "$2" 9<&-
}

# pg_recovery HOST VAR — sets VAR to t (in recovery: a standby), f (writable) or "" (no answer)
pg_recovery() {
    local _r
    _r=$(pg_sql "$1" 'select pg_is_in_recovery()' 2>/dev/null) || _r=
    printf -v "$2" '%s' "$_r"
}

# pg_streaming PRIMARY STANDBY — PRIMARY's pg_stat_replication shows STANDBY streaming
pg_streaming() {
    [ "$(pg_sql "$1" "select state from pg_stat_replication where application_name = '$2'" 2>/dev/null)" = streaming ]
}

# pg_wait_streaming PRIMARY STANDBY SECONDS — until pg_streaming holds, SECONDS at most
pg_wait_streaming() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        pg_streaming "$1" "$2" && return 0
        sleep 0.1
    done
    return 1
}

# pg_conninfo_text PRIMARY STANDBY VAR — sets VAR to the primary_conninfo line with which
# STANDBY follows PRIMARY (pg_basebackup -R writes one without application_name; this one,
# appended, wins)
pg_conninfo_text() {
    printf -v "$3" "primary_conninfo = 'host=%s port=%s user=postgres application_name=%s'\n" \
        "${H_ADDR[$1]}" "$PG_PORT" "$2"
}

# pg_follow PRIMARY STANDBY — STANDBY's (stopped) data directory is set to start as a standby of
# PRIMARY: standby.signal, and its primary_conninfo replaced
pg_follow() {
    local data=$LAB/hosts/$2/pgdata line text='' conninfo
    while IFS= read -r line; do
        [[ $line == primary_conninfo* ]] || text+=$line$'\n'
    done <"$data/postgresql.auto.conf"
    pg_conninfo_text "$1" "$2" conninfo
    put_text "$data/postgresql.auto.conf" 0600 postgres:postgres "$text$conninfo"
    put_text "$data/standby.signal" 0600 postgres:postgres ''
}

# pg_attached DIR VAR — sets VAR to the pids of the live processes whose working directory is
# DIR (every process of a postmaster works in its data directory)
pg_attached() {
    local _f _pids=''
    for _f in /proc/[0-9]*/cwd; do
        [ "$_f" -ef "$1" ] && _pids+="${_f//[!0-9]/} "
    done
    printf -v "$2" '%s' "$_pids"
}

# pg_start HOST — start its postmaster in its namespace (pg_ctl -w: returns once it accepts
# connections); dies with the log's tail when it does not start
pg_start() {
    local h=$1 d=$LAB/hosts/$1 pids i
    # The processes of a postmaster that died (kill -9) end on their own when they notice; the
    # new one must not start before (postgres checks that from postmaster.pid's shared memory
    # key, but only when the pid in it is gone, not while it is a zombie).
    for ((i = 0; i < 100; i++)); do
        pg_attached "$d/pgdata" pids
        [ -n "$pids" ] || break
        sleep 0.1
    done
    [ -z "$pids" ] || die "processes $pids still work in $d/pgdata, but its postmaster is gone; end them first"
    # No process works there: a postmaster.pid left there is stale. It names a pid that may be a
    # zombie or belong to another process by now, which would make postgres refuse to start.
    rm -f "$d/pgdata/postmaster.pid" "$d/sock/.s.PGSQL.$PG_PORT.lock"
    pg_run "$h" "$PG_BIN/pg_ctl" -D "$d/pgdata" -l "$d/postgres.log" -w -t 60 -s \
        -o "-c listen_addresses=0.0.0.0 -c port=$PG_PORT -c unix_socket_directories='$d/sock'" start \
        </dev/null >/dev/null 2>>"$d/start.log" ||
        { tail -n 5 "$d/postgres.log" >&2 2>/dev/null; die "postgres on $h did not start; see $d/postgres.log"; }
}

# pg_stop HOST — stop its postmaster, if it runs: by the pid in its postmaster.pid (and only
# when that process is ours, see find_daemon), fast shutdown (SIGINT), then immediate
# (SIGQUIT) after 30 s, then SIGKILL after 5 s more
pg_stop() {
    local h=$1 pid i
    find_daemon postgres "$h" pid || return 0
    say "stopping postgres on $h (pid $pid)"
    kill -INT "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do proc_gone "$pid" && return 0; sleep 0.1; done
    warn "postgres on $h (pid $pid) did not stop in 30 s; immediate shutdown"
    kill -QUIT "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do proc_gone "$pid" && return 0; sleep 0.1; done
    warn "killing postgres on $h (pid $pid)"
    kill -KILL "$pid" 2>/dev/null || true
}

# pg_host_dirs HOST — its directory, socket directory and log file exist
pg_host_dirs() {
    local d=$LAB/hosts/$1
    [ -d "$d/sock" ] || { install -d -m 0755 "$d"; install -d -m 0755 -o postgres -g postgres "$d/sock"; }
    [ -e "$d/postgres.log" ] || install -m 0640 -o postgres -g postgres /dev/null "$d/postgres.log"
}

# pg_new_datadir HOST — its data directory, empty
pg_new_datadir() {
    local d=$LAB/hosts/$1
    rm -f "$d/.pg-ready"
    rm -rf "$d/pgdata"
    install -d -m 0700 -o postgres -g postgres "$d/pgdata"
}

# pg_init_primary HOST — a new cluster (initdb), with the shared settings, its pg_hba.conf, the
# role and database app; started
pg_init_primary() {
    local h=$1 d=$LAB/hosts/$1 t0=$EPOCHREALTIME conf
    pg_stop "$h"
    pg_new_datadir "$h"
    pg_run "$h" "$PG_BIN/initdb" -D "$d/pgdata" -U postgres --auth-local=trust --auth-host=trust \
        -E UTF8 --locale=C.UTF-8 --no-instructions --no-sync >"$d/initdb.log" 2>&1 ||
        { tail -n 5 "$d/initdb.log" >&2; die "initdb for $h failed; see $d/initdb.log"; }
    IFS= read -r -d '' conf <"$d/pgdata/postgresql.conf" || true
    put_text "$d/pgdata/postgresql.conf" 0600 postgres:postgres "$conf
# --- scripts/lab (lab.d/pg.sh): the settings both hosts share (pg_basebackup copies this file).
# listen_addresses, port and unix_socket_directories are on each postmaster's command line.
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '256MB'
hot_standby = on
wal_retrieve_retry_interval = '1s'  # a standby reconnects to a restarted primary within 1 s (default 5 s)
wal_log_hints = on                  # pg_rewind needs it (or data checksums)
shared_buffers = '32MB'
"
    put_text "$d/pgdata/pg_hba.conf" 0600 postgres:postgres "# Written by scripts/lab (lab.d/pg.sh): no passwords anywhere in the lab.
# TYPE  DATABASE     USER      ADDRESS              METHOD
local   all          all                            trust
local   replication  all                            trust
host    replication  postgres  $NET_PREFIX.0/$NET_BITS     trust
host    all          postgres  $NET_PREFIX.0/$NET_BITS     trust
host    app          app       $NET_PREFIX.0/$NET_BITS     trust
"
    pg_start "$h"
    pg_sql "$h" 'create role app login' >/dev/null
    pg_sql "$h" 'create database app owner app' >/dev/null
    touch "$d/.pg-ready"
    say "postgres on $h: new cluster, primary ($(elapsed "$t0"))"
}

# pg_init_standby HOST PRIMARY — its data directory anew from PRIMARY (pg_basebackup -R), set
# to follow PRIMARY; started
pg_init_standby() {
    local h=$1 d=$LAB/hosts/$1 t0=$EPOCHREALTIME
    pg_stop "$h"
    pg_new_datadir "$h"
    pg_run "$h" "$PG_BIN/pg_basebackup" -h "${H_ADDR[$2]}" -p "$PG_PORT" -U postgres -D "$d/pgdata" \
        -R -X stream -c fast --no-sync >"$d/basebackup.log" 2>&1 ||
        { tail -n 5 "$d/basebackup.log" >&2; die "pg_basebackup from $2 to $h failed; see $d/basebackup.log"; }
    pg_follow "$2" "$h"
    pg_start "$h"
    touch "$d/.pg-ready"
    say "postgres on $h: new standby of $2 ($(elapsed "$t0"))"
}

# pg_ensure_running HOST OTHER — its postmaster runs in its namespace. A dead one is started;
# as a standby of OTHER when OTHER is a writable primary by now (never two of them: reset
# puts the initial roles back)
pg_ensure_running() {
    local h=$1 o=$2 pid r
    if find_daemon postgres "$h" pid; then
        in_ns "$pid" "baton-$h" && return 0
        warn "postgres on $h (pid $pid) runs in a namespace that is gone; restarting it"
        pg_stop "$h"
    fi
    if [ ! -e "$LAB/hosts/$h/pgdata/standby.signal" ] && find_daemon postgres "$o"; then
        pg_recovery "$o" r
        if [ "$r" = f ]; then
            warn "$o is a writable primary: starting $h as its standby ('scripts/lab reset' restores the initial roles)"
            pg_follow "$o" "$h"
        fi
    fi
    say "starting postgres on $h"
    pg_start "$h"
}

# pg_pair_up PAIR — both hosts' servers run; a pair without data is created: initdb on the
# initial primary, pg_basebackup from it to the standby. When it started a server, it waits
# (5 s at most) for the standby to stream again, and warns if it does not.
pg_pair_up() {
    local p=$1 a=${P_PRIMARY[$1]} b=${P_STANDBY[$1]} h r ra rb started=0
    pg_host_dirs "$a"; pg_host_dirs "$b"
    if [ ! -e "$LAB/hosts/$a/.pg-ready" ]; then
        pg_init_primary "$a"
        # a standby of another cluster cannot follow the new one
        pg_init_standby "$b" "$a"
        pg_wait_streaming "$a" "$b" 10 || die "postgres on $b does not stream from $a; see $LAB/hosts/$b/postgres.log"
        return 0
    fi
    if [ ! -e "$LAB/hosts/$b/.pg-ready" ]; then
        pg_ensure_running "$a" "$b"
        pg_init_standby "$b" "$a"
        pg_wait_streaming "$a" "$b" 10 || die "postgres on $b does not stream from $a; see $LAB/hosts/$b/postgres.log"
        return 0
    fi
    for h in "$a" "$b"; do
        find_daemon postgres "$h" || started=1
        if [ "$h" = "$a" ]; then pg_ensure_running "$a" "$b"; else pg_ensure_running "$b" "$a"; fi
    done
    for h in "$a" "$b"; do
        pg_recovery "$h" r
        [ -n "$r" ] || die "postgres on $h does not answer on $LAB/hosts/$h/sock; see $LAB/hosts/$h/postgres.log"
        if [ "$h" = "$a" ]; then ra=$r; else rb=$r; fi
    done
    [ $started = 1 ] || return 0
    if [ "$ra" = f ] && [ "$rb" = t ]; then
        pg_wait_streaming "$a" "$b" 5 || warn "postgres on $b does not stream from $a (yet); 'scripts/lab reset' takes it anew"
    elif [ "$ra" = t ] && [ "$rb" = f ]; then
        pg_wait_streaming "$b" "$a" 5 || warn "postgres on $a does not stream from $b (yet); 'scripts/lab reset' restores the initial roles"
    fi
}

# pg_pair_reset PAIR — the initial roles: its initial primary writable, the standby streaming
# from it. Quick when they are so; otherwise the standby is stopped first (at no moment two
# writable primaries), the initial primary made writable (promoted if it is a standby), and the
# standby taken anew from it. If the initial primary cannot be made writable, both are created
# anew. (Test tables in database app are not removed.)
pg_pair_reset() {
    local p=$1 a=${P_PRIMARY[$1]} b=${P_STANDBY[$1]} ra rb
    # one query (reset runs before and after every lab test): a is writable and b streams from
    # it (a walreceiver runs only in recovery)
    [ "$(pg_sql "$a" "select pg_is_in_recovery(), (select state from pg_stat_replication
        where application_name = '$b')" 2>/dev/null)" != "f|streaming" ] || return 0
    pg_recovery "$a" ra; pg_recovery "$b" rb
    if [ "$ra" = f ] && [ "$rb" = t ] && pg_wait_streaming "$a" "$b" 3; then return 0; fi
    say "pg pair $p: back to the initial roles (in recovery: $a ${ra:-no answer}, $b ${rb:-no answer})"
    pg_stop "$b"
    if [ "$ra" = t ]; then
        pg_sql "$a" 'select pg_promote(true, 30)' >/dev/null 2>&1 || true
        pg_recovery "$a" ra
    fi
    if [ "$ra" != f ]; then
        warn "postgres on $a cannot be made writable; creating pair $p anew"
        pg_stop "$a"
        rm -f "$LAB/hosts/$a/.pg-ready" "$LAB/hosts/$b/.pg-ready"
        pg_pair_up "$p"
        return 0
    fi
    pg_init_standby "$b" "$a"
    pg_wait_streaming "$a" "$b" 10 || die "postgres on $b does not stream from $a; see $LAB/hosts/$b/postgres.log"
}

# pg_status_line PAIR — print the pair's roles (and what fails); fails unless exactly one host
# is writable and the other streams from it
pg_status_line() {
    local p=$1 h o r line='' writable=() standby=() rows lag
    for h in "${P_PRIMARY[$p]}" "${P_STANDBY[$p]}"; do
        r=
        find_daemon postgres "$h" && pg_recovery "$h" r
        case $r in
            f) writable+=("$h"); line+=", $h primary (writable)" ;;
            t) standby+=("$h"); line+=", $h standby" ;;
            *) line+=", $h NOT ANSWERING" ;;
        esac
    done
    local ok=1
    if [ ${#writable[@]} = 1 ] && [ ${#standby[@]} = 1 ]; then
        h=${writable[0]}; o=${standby[0]}
        rows=$(pg_sql "$h" "select state, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), -1)
            from pg_stat_replication where application_name = '$o'" 2>/dev/null) || rows=
        if [[ $rows == streaming\|* ]]; then
            lag=${rows#*|}; line+=", $o streams from $h (replay lag $lag bytes)"
        else
            line+=", $o NOT STREAMING from $h (${rows:-no walsender})"; ok=0
        fi
    else
        [ ${#writable[@]} -gt 1 ] && line+=" (TWO WRITABLE PRIMARIES)"
        [ ${#writable[@]} = 0 ] && line+=" (NO WRITABLE PRIMARY)"
        ok=0
    fi
    printf 'pair %-9s postgres: %s\n' "$p" "${line#, }"
    [ $ok = 1 ]
}

# pg_pairs VAR — sets the array VAR to the base pairs whose hosts have role pg
pg_pairs() {
    local -n _pp=$1
    local _p
    _pp=()
    for _p in "${PAIRS[@]}"; do [ "${H_ROLE[${P_PRIMARY[$_p]}]}" = pg ] && _pp+=("$_p"); done
    return 0
}

# pg_up, pg_reset, pg_down — every PostgreSQL pair up, back to its initial roles, stopped
pg_up() { local p ps; pg_pairs ps; for p in "${ps[@]}"; do pg_pair_up "$p"; done; }
pg_reset() { local p ps; pg_pairs ps; for p in "${ps[@]}"; do pg_pair_reset "$p"; done; }
pg_down() {
    local p ps
    pg_pairs ps
    for p in "${ps[@]}"; do pg_stop "${P_STANDBY[$p]}"; pg_stop "${P_PRIMARY[$p]}"; done
}
