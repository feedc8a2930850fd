# shellcheck shell=bash
# scripts/lab.d/service.sh — sourced by scripts/lab. A service host: its sshd and nginx,
# started together in a private mount namespace in which the host's own srv is SRV_PATH.

# write_host_files HOST — its sshd_config and nginx.conf; CFG_CHANGED[sshd/HOST] and
# CFG_CHANGED[nginx/HOST] say whether they changed
write_host_files() {
    local h=$1 d=$LAB/hosts/$1 txt
    sshd_config_text "$h" txt
    put_text "$d/sshd_config" 0644 root:root "$txt" "CFG_CHANGED[sshd/$h]"
    nginx_conf_text "$h" txt
    put_text "$d/nginx.conf" 0644 root:root "$txt" "CFG_CHANGED[nginx/$h]"
}

srv_mounted_for() { # srv_mounted_for PID HOST — PID sees HOST's srv at SRV_PATH
    [ "/proc/$1/root$SRV_PATH" -ef "$LAB/hosts/$2/srv" ]
}

# service_daemons HOST SPIDVAR NPIDVAR BROKENVAR — sets SPIDVAR and NPIDVAR to its live sshd
# and nginx (or ""), BROKENVAR to 1 when one lives in a stale namespace, does not see this
# host's srv, or does not share its partner's mount namespace (ours by pid file, but broken),
# else to 0
service_daemons() {
    local _h=$1 _p _s _n _broken=0
    find_daemon sshd "$_h" _s || true
    find_daemon nginx "$_h" _n || true
    for _p in $_s $_n; do
        in_ns "$_p" "baton-$_h" && srv_mounted_for "$_p" "$_h" || _broken=1
    done
    if [ -n "$_s" ] && [ -n "$_n" ] && ! [ "/proc/$_s/ns/mnt" -ef "/proc/$_n/ns/mnt" ]; then
        _broken=1
    fi
    printf -v "$2" '%s' "$_s"; printf -v "$3" '%s' "$_n"; printf -v "$4" '%s' "$_broken"
}

# start_service_host HOST — its sshd and nginx run, in its namespace, seeing its srv, with
# their current configuration and host key (restarted when up changed them)
start_service_host() {
    local h=$1 d=$LAB/hosts/$1 ns=baton-$1 spid npid broken p
    service_daemons "$h" spid npid broken
    if [ "$broken" = 1 ]; then
        warn "daemons of $h are inconsistent; restarting them"
        stop_pids ${spid:+"$spid"} ${npid:+"$npid"}
        spid=; npid=
    fi
    # a changed host key or config needs a restart of that daemon
    if [ -n "$spid" ] && { [ "${NEW_HOSTKEY[$h]-0}" = 1 ] || [ "${CFG_CHANGED[sshd/$h]-0}" = 1 ]; }; then
        say "restarting sshd on $h (new key or config)"; stop_pids "$spid"; spid=
    fi
    if [ -n "$npid" ] && [ "${CFG_CHANGED[nginx/$h]-0}" = 1 ]; then
        say "restarting nginx on $h (new config)"; stop_pids "$npid"; npid=
    fi
    [ -n "$spid" ] && [ -n "$npid" ] && return 0

    local nginx_cmd sshd_cmd
    nginx_cmd="/usr/sbin/nginx -p $d/ -e $d/nginx-error.log -c $d/nginx.conf"
    sshd_cmd="/usr/sbin/sshd -f $d/sshd_config -E $d/sshd.log"
    local todo=()
    [ -n "$npid" ] || { todo+=("$nginx_cmd"); rm -f "$d/nginx.pid"; }
    [ -n "$spid" ] || { todo+=("$sshd_cmd"); rm -f "$d/sshd.pid"; }
    local script='set -e'
    for p in "${todo[@]}"; do script+=$'\n'"$p"; done

    if [ -z "$spid" ] && [ -z "$npid" ]; then
        # a private mount namespace in which this host's srv is /srv/baton-lab, shared by
        # its sshd (so login shells see it) and its nginx
        say "starting sshd and nginx on $h"
        # shellcheck disable=SC2016  # the script is for the inner sh, its arguments follow
        ip netns exec "$ns" env -i PATH="$SAFE_PATH" LANG=C \
            unshare --mount --propagation private -- /bin/sh -c \
            'mount --make-rprivate / && mount --bind "$0" "$1" && eval "$2"' \
            "$d/srv" "$SRV_PATH" "$script" </dev/null >>"$d/start.log" 2>&1 9<&- ||
            { tail -n 5 "$d/start.log" >&2; die "could not start the daemons of $h"; }
    else
        local alive=${spid:-$npid}
        say "starting ${todo[*]%% *} on $h (in the mount namespace of pid $alive)"
        nsenter --target "$alive" --mount --net -- env -i PATH="$SAFE_PATH" LANG=C \
            /bin/sh -c "$script" </dev/null >>"$d/start.log" 2>&1 9<&- ||
            { tail -n 5 "$d/start.log" >&2; die "could not start a daemon of $h"; }
    fi
    wait_pidfile nginx "$h" || { tail -n 5 "$d/nginx-error.log" >&2 2>/dev/null; die "nginx on $h did not start"; }
    wait_pidfile sshd "$h" || { tail -n 5 "$d/sshd.log" >&2 2>/dev/null; die "sshd on $h did not start"; }
}
