# shellcheck shell=bash
# scripts/lab.d/pg.sh — sourced by scripts/lab. The PostgreSQL pairs (hosts with role pg in the
# tables): PostgreSQL 15 streaming replication, one postmaster per host namespace, the pair's
# initial primary writable and its standby streaming from it (hot standby, read-only). Each
# PostgreSQL host also runs sshd (like a service host) so that baton can run the pair's role
# hooks there: /usr/local/sbin/baton-pg (examples/postgres/baton-pg, installed by up) as user
# postgres through sudo.
#
# Per host HOST, in $LAB/hosts/HOST (root, 0755):
#   pgdata/       the data directory (postgres, 0700). Its postgresql.conf holds only the
#                 settings both hosts share (pg_basebackup copies it, and pg_rewind would)
#   sock/         its own unix socket directory (postgres): the compiled-in /var/run/postgresql
#                 is the same directory in every namespace, and a second postmaster on port
#                 5432 there refuses to start
#   postgres.log  the server's log (pg_ctl -l)
#   baton-pg/     the hook's state dir (postgres, 0700): its lock, its rewind marker and log
#   .pg-ready     written once the data directory is complete (initdb or pg_basebackup done)
#   sshd_config, ssh_host_ed25519_key*, sshd.pid, sshd.log   its sshd (ssh.sh)
# The host-specific settings (listen address, port, socket directory) are on the postmaster's
# command line, which wins over the files (pg_ctl_options; the hook starts it with the same
# options). It listens on 0.0.0.0: a namespace holds only its own addresses, and so it also
# answers on the VIP whenever the VIP is there.
# Clients: any lab address may connect as `app` to database `app` (trust), and as `postgres`
# (also for replication); unix sockets: trust.
#
# How a host sees its own hook configuration: /etc/netns/baton-HOST/baton-pg/env. `ip netns
# exec baton-HOST` bind-mounts every entry of /etc/netns/baton-HOST/ over /etc/NAME for the
# command it runs, so the host's sshd, its login shells, sudo and the hook all see that file as
# /etc/baton-pg/env (the mount point /etc/baton-pg exists on the machine, empty; up creates it
# and down removes it when up did). Its sshd also runs in a private mount namespace in which
# the host's sock/ is /run/postgresql, Debian's default socket directory: a plain
# `sudo -u postgres psql` in a login shell there reaches the host's own server, as on a real
# host (the pair's checks and version_command do that).

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

# pg_ctl_options HOST VAR — sets VAR to the postmaster options (pg_ctl -o) of HOST: its
# host-specific settings (the lab's pg_start and the hook, through the host's env file, use
# the same)
pg_ctl_options() {
    printf -v "$2" "%s" "-c listen_addresses=0.0.0.0 -c port=$PG_PORT -c unix_socket_directories='$LAB/hosts/$1/sock'"
}

# pg_start HOST [--try] — start its postmaster in its namespace (pg_ctl -w: returns once it
# accepts connections); dies with the log's tail when it does not start (with --try: fails)
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
    local opts
    pg_ctl_options "$h" opts
    pg_run "$h" "$PG_BIN/pg_ctl" -D "$d/pgdata" -l "$d/postgres.log" -w -t 60 -s -o "$opts" start \
        </dev/null >/dev/null 2>>"$d/start.log" && return 0
    [ "${2-}" = --try ] && return 1
    tail -n 5 "$d/postgres.log" >&2 2>/dev/null
    die "postgres on $h did not start; see $d/postgres.log"
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

# pg_host_dirs HOST — its directory, socket directory, hook state dir and log file exist
pg_host_dirs() {
    local d=$LAB/hosts/$1
    [ -d "$d/sock" ] || { install -d -m 0755 "$d"; install -d -m 0755 -o postgres -g postgres "$d/sock"; }
    [ -d "$d/baton-pg" ] || install -d -m 0700 -o postgres -g postgres "$d/baton-pg"
    [ -e "$d/postgres.log" ] || install -m 0640 -o postgres -g postgres /dev/null "$d/postgres.log"
}

# pg_host_files HOST — its dirs and sshd_config (CFG_CHANGED[sshd/HOST] says whether it changed)
pg_host_files() {
    local txt
    pg_host_dirs "$1"
    sshd_config_text "$1" txt
    put_text "$LAB/hosts/$1/sshd_config" 0644 root:root "$txt" "CFG_CHANGED[sshd/$1]"
}

# pg_env_text HOST VAR — sets VAR to the host's hook configuration (/etc/baton-pg/env as the
# host sees it; see examples/postgres/baton-pg)
pg_env_text() {
    local _d=$LAB/hosts/$1 _opts
    pg_ctl_options "$1" _opts
    printf -v "$2" '%s' "# Written by scripts/lab up: baton-pg's settings on lab host $1 (seen there as $PG_ETC/env).
PG_DATA=$_d/pgdata
PG_BIN=$PG_BIN
PG_SOCKET_DIR=$_d/sock
PG_PORT=$PG_PORT
PG_LOG=$_d/postgres.log
PG_CTL_OPTIONS=\"$_opts\"
NODE_NAME=$1
STATE_DIR=$_d/baton-pg
"
}

# pg_etc_files HOST — /etc/netns/baton-HOST/baton-pg/env (write_netns_etc made the directory
# above it)
pg_etc_files() {
    local e=/etc/netns/baton-$1/baton-pg txt
    [ -d "$e" ] || install -d -m 0755 "$e"
    pg_env_text "$1" txt
    put_text "$e/env" 0644 root:root "$txt"
}

# pg_rewind_broken HOST — the hook's follow left an unfinished pg_rewind in its data directory
# (the marker says "started"): the data directory is not usable
pg_rewind_broken() {
    local f=$LAB/hosts/$1/baton-pg/baton-pg.rewind line=
    [ -e "$f" ] || return 1
    IFS= read -r line <"$f" || true
    [[ $line == started* ]]
}

# pg_sshd_ok HOST PID — its sshd PID lives in its namespace and sees its hook configuration
# and its socket directory as /run/postgresql
pg_sshd_ok() {
    in_ns "$2" "baton-$1" && [ "/proc/$2/root$PG_ETC" -ef "/etc/netns/baton-$1/baton-pg" ] &&
        [ "/proc/$2/root/run/postgresql" -ef "$LAB/hosts/$1/sock" ]
}

# pg_sshd HOST — its sshd runs (in its namespace, in a private mount namespace in which its
# socket directory is /run/postgresql), with its current configuration and host key
pg_sshd() {
    local h=$1 d=$LAB/hosts/$1 pid
    if find_daemon sshd "$h" pid; then
        if ! pg_sshd_ok "$h" "$pid"; then
            warn "sshd of $h is inconsistent; restarting it"; stop_pids "$pid"; pid=
        elif [ "${NEW_HOSTKEY[$h]-0}" = 1 ] || [ "${CFG_CHANGED[sshd/$h]-0}" = 1 ]; then
            say "restarting sshd on $h (new key or config)"; stop_pids "$pid"; pid=
        fi
    fi
    [ -z "$pid" ] || return 0
    say "starting sshd on $h"
    rm -f "$d/sshd.pid"
    # shellcheck disable=SC2016  # the script is for the inner sh, its arguments follow
    ip netns exec "baton-$h" env -i PATH="$SAFE_PATH" LANG=C \
        unshare --mount --propagation private -- /bin/sh -c \
        'mount --make-rprivate / && mount --bind "$0" /run/postgresql && exec /usr/sbin/sshd -f "$1" -E "$2"' \
        "$d/sock" "$d/sshd_config" "$d/sshd.log" </dev/null >>"$d/start.log" 2>&1 9<&- ||
        { tail -n 5 "$d/start.log" >&2; die "could not start sshd on $h"; }
    wait_pidfile sshd "$h" || { tail -n 5 "$d/sshd.log" >&2 2>/dev/null; die "sshd on $h did not start"; }
}

# pg_hook_install — /usr/local/sbin/baton-pg is the repo's examples/postgres/baton-pg (root,
# 0755). One that is not baton's (no "baton-pg — the PostgreSQL role hook shipped with baton"
# line) is never overwritten. $LAB/installed-baton-pg records the checksum of what up
# installed, so that down removes only that.
pg_hook_install() {
    local sum
    [ -f "$PG_HOOK_SRC" ] || die "missing $PG_HOOK_SRC (the repo's PostgreSQL hook)"
    if [ -e "$PG_HOOK" ] && ! cmp -s "$PG_HOOK_SRC" "$PG_HOOK"; then
        grep -q '^# baton-pg — the PostgreSQL role hook shipped with baton' "$PG_HOOK" ||
            die "$PG_HOOK exists and is not baton's hook; move it away first"
        say "updating $PG_HOOK"
    fi
    cmp -s "$PG_HOOK_SRC" "$PG_HOOK" || install -m 0755 -o root -g root "$PG_HOOK_SRC" "$PG_HOOK"
    [ "$(stat -c '%a %U:%G' "$PG_HOOK")" = "755 root:root" ] || { chown root:root "$PG_HOOK"; chmod 0755 "$PG_HOOK"; }
    sum=$(sha256sum <"$PG_HOOK")
    put_text "$LAB/installed-baton-pg" 0644 root:root "${sum%% *}"$'\n'
}

# pg_hook_remove — (down) /usr/local/sbin/baton-pg, when it is exactly what up installed
pg_hook_remove() {
    local rec='' sum
    [ -e "$PG_HOOK" ] && [ -s "$LAB/installed-baton-pg" ] || return 0
    IFS= read -r rec <"$LAB/installed-baton-pg" || true
    sum=$(sha256sum <"$PG_HOOK")
    if [ "${sum%% *}" = "$rec" ]; then
        rm -f "$PG_HOOK"; say "removed $PG_HOOK"
    else
        warn "$PG_HOOK changed since up installed it; left in place"
    fi
}

# pg_new_datadir HOST — its data directory, empty
pg_new_datadir() {
    local d=$LAB/hosts/$1
    rm -f "$d/.pg-ready" "$d/baton-pg/baton-pg.rewind" "$d/baton-pg/baton-pg.rewind.log"
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

# pg_init_standby HOST PRIMARY [--try] — its data directory anew from PRIMARY (pg_basebackup
# -R), set to follow PRIMARY; started (dies when it does not start; with --try: fails)
pg_init_standby() {
    local h=$1 d=$LAB/hosts/$1 t0=$EPOCHREALTIME
    pg_stop "$h"
    pg_new_datadir "$h"
    pg_run "$h" "$PG_BIN/pg_basebackup" -h "${H_ADDR[$2]}" -p "$PG_PORT" -U postgres -D "$d/pgdata" \
        -R -X stream -c fast --no-sync >"$d/basebackup.log" 2>&1 ||
        { tail -n 5 "$d/basebackup.log" >&2; die "pg_basebackup from $2 to $h failed; see $d/basebackup.log"; }
    pg_follow "$2" "$h"
    if ! pg_start "$h" "${3-}"; then
        warn "postgres on $h does not start as a standby of $2 (e.g. a setting below its primary's); see $d/postgres.log"
        return 1
    fi
    touch "$d/.pg-ready"
    say "postgres on $h: new standby of $2 ($(elapsed "$t0"))"
}

# pg_ensure_running HOST OTHER [--try] — its postmaster runs in its namespace. A dead one is
# started; as a standby of OTHER when OTHER is a writable primary by now (never two of them:
# reset puts the initial roles back). Dies when it does not start (with --try: fails)
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
    pg_start "$h" "${3-}"
}

# pg_pair_up PAIR — both hosts' servers run; a pair without data is created: initdb on the
# initial primary, pg_basebackup from it to the standby. A host whose server does not start
# (a data directory a test broke) is taken anew from the other when that is a writable
# primary, else the pair is created anew. When it started a server, it waits (5 s at most) for
# the standby to stream again, and warns if it does not.
pg_pair_up() {
    local p=$1 a=${P_PRIMARY[$1]} b=${P_STANDBY[$1]} h o r ra rb started=0
    pg_host_dirs "$a"; pg_host_dirs "$b"
    # a data directory in which the hook's pg_rewind was interrupted is taken anew
    for h in "$a" "$b"; do
        if pg_rewind_broken "$h"; then
            warn "postgres on $h: an interrupted pg_rewind left its data directory unusable; taking it anew"
            pg_stop "$h"
            rm -f "$LAB/hosts/$h/.pg-ready"
        fi
    done
    if [ ! -e "$LAB/hosts/$a/.pg-ready" ] && [ ! -e "$LAB/hosts/$b/.pg-ready" ]; then
        pg_init_primary "$a"
        # a standby of another cluster cannot follow the new one
        pg_init_standby "$b" "$a"
        pg_wait_streaming "$a" "$b" 10 || die "postgres on $b does not stream from $a; see $LAB/hosts/$b/postgres.log"
        return 0
    fi
    for h in "$a" "$b"; do
        [ -e "$LAB/hosts/$h/.pg-ready" ] || continue
        if [ "$h" = "$a" ]; then o=$b; else o=$a; fi
        find_daemon postgres "$h" || started=1
        pg_ensure_running "$h" "$o" --try && continue
        warn "postgres on $h does not start (see $LAB/hosts/$h/postgres.log); taking it anew"
        pg_stop "$h"
        rm -f "$LAB/hosts/$h/.pg-ready"
    done
    # one host lacks a usable data directory: taken anew from the other, if that one is writable
    for h in "$a" "$b"; do
        [ ! -e "$LAB/hosts/$h/.pg-ready" ] || continue
        if [ "$h" = "$a" ]; then o=$b; else o=$a; fi
        r=
        [ ! -e "$LAB/hosts/$o/.pg-ready" ] || pg_recovery "$o" r
        if [ "$r" = f ] && pg_init_standby "$h" "$o" --try && pg_wait_streaming "$o" "$h" 10; then
            return 0
        fi
        warn "no standby of a writable primary can be made in pair $p; creating it anew"
        pg_pair_anew "$p"
        return 0
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

# pg_pair_reset PAIR — the initial roles (pg_pair_roles), then the initial settings: a setting
# made with ALTER SYSTEM (the hook's `set`, the pair's changes) is removed from the primary's
# postgresql.auto.conf (and the primary restarted), and the standby is taken anew
# (the standby is taken anew from the cleaned primary: its control file remembers the
# primary's old values, e.g. a higher max_connections, which its own would then be below)
pg_pair_reset() {
    local p=$1 a=${P_PRIMARY[$1]} b=${P_STANDBY[$1]}
    pg_pair_roles "$p"
    pg_settings_dirty "$a" || pg_settings_dirty "$b" || return 0
    if pg_settings_dirty "$a"; then
        say "postgres on $a: removing the settings made with ALTER SYSTEM, restarting it"
        pg_stop "$a"
        pg_settings_clean "$a"
        pg_start "$a" --try || { warn "postgres on $a does not start; creating pair $p anew"; pg_pair_anew "$p"; return 0; }
    fi
    say "postgres on $b: taken anew without the settings made with ALTER SYSTEM"
    if ! pg_init_standby "$b" "$a" --try || ! pg_wait_streaming "$a" "$b" 10; then
        warn "postgres on $b does not stream from $a; creating pair $p anew"
        pg_pair_anew "$p"
    fi
}

# pg_settings_dirty HOST — its postgresql.auto.conf holds a setting other than primary_conninfo
pg_settings_dirty() {
    local f=$LAB/hosts/$1/pgdata/postgresql.auto.conf line
    [ -f "$f" ] || return 1
    while IFS= read -r line || [ -n "$line" ]; do
        [[ $line =~ ^[[:space:]]*(#|$|primary_conninfo[[:space:]=]) ]] || return 0
    done <"$f"
    return 1
}

# pg_settings_clean HOST — (stopped) its postgresql.auto.conf keeps only comments and
# primary_conninfo
pg_settings_clean() {
    local f=$LAB/hosts/$1/pgdata/postgresql.auto.conf line text=''
    while IFS= read -r line || [ -n "$line" ]; do
        [[ $line =~ ^[[:space:]]*(#|$|primary_conninfo[[:space:]=]) ]] && text+=$line$'\n'
    done <"$f"
    put_text "$f" 0600 postgres:postgres "$text"
}

# pg_pair_roles PAIR — the initial roles: its initial primary writable, the standby streaming
# from it. Quick when they are so; otherwise the standby is stopped first (at no moment two
# writable primaries), the initial primary made writable (promoted if it is a standby), and the
# standby taken anew from it. If the initial primary cannot be made writable, both are created
# anew. (Test tables in database app are not removed.)
pg_pair_roles() {
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
        pg_pair_anew "$p"
        return 0
    fi
    # (a standby taken from a primary whose settings a test lowered below its control file's
    # may not start: then the pair is created anew)
    if ! pg_init_standby "$b" "$a" --try || ! pg_wait_streaming "$a" "$b" 10; then
        warn "postgres on $b does not stream from $a; creating pair $p anew"
        pg_pair_anew "$p"
    fi
}

# pg_pair_anew PAIR — both hosts' data directories created anew (initdb, pg_basebackup)
pg_pair_anew() {
    pg_stop "${P_STANDBY[$1]}"; pg_stop "${P_PRIMARY[$1]}"
    rm -f "$LAB/hosts/${P_PRIMARY[$1]}/.pg-ready" "$LAB/hosts/${P_STANDBY[$1]}/.pg-ready"
    pg_pair_up "$1"
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
