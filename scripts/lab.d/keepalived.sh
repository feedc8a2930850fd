# shellcheck shell=bash
# scripts/lab.d/keepalived.sh — sourced by scripts/lab (and by lab.d/selftest, for kp_selftest
# alone). Two hosts of their own for measuring keepalived's move beside baton's (issue 19):
#
#   kpa, kpb   198.18.0.81 and .82 (namespaces baton-kpa, baton-kpb, plugged into the lab
#              bridge like every lab host, no route beyond the lab's subnets), each an nginx
#              answering `host=NAME` on *:80 and Debian's keepalived holding the VIP
#              198.18.0.180/24 by VRRP (virtual router 180). VRRP goes by unicast between the
#              two hosts' own addresses only (unicast_src_ip, unicast_peer): nothing multicast,
#              nothing beyond the lab bridge. No sshd: baton never manages these hosts, and
#              baton's pairs never see keepalived.
#   the move   keepalived's priority swap: both configurations rewritten with the priorities
#              the other way round (KP_HIGH for the host that is to hold the VIP, KP_LOW for the
#              other), then SIGHUP to both keepalived (kp_move; scripts/bench.d/handover.py does
#              the same from Python). With preempt (keepalived's default) the new master takes
#              the address when its master-down timer ends (about 3 s: 3 adverts of 1 s), and
#              the old one drops it when it hears the new master's first advert.
#
# In the lab dir, hosts/kpX/: keepalived.conf, keepalived.pid, vrrp.pid, keepalived.log
# (keepalived -l: its log on stderr), nginx.conf, nginx.pid, nginx-error.log.

KP_HOSTS=(kpa kpb)
KP_VRID=180
KP_HIGH=150
KP_LOW=100

# kp_define — (after lab_define) the two hosts' table entries, so that ensure_host_net and
# end_processes_of treat them like the other hosts; they are not in HOSTS (no sshd, no pair)
# shellcheck disable=SC2034  # sets the tables, read by the other parts
kp_define() {
    KP_VIP=$NET_PREFIX.180
    H_ADDR["kpa"]=$NET_PREFIX.81; H_ADDR["kpb"]=$NET_PREFIX.82
    local h
    for h in "${KP_HOSTS[@]}"; do H_ROLE["$h"]=keepalived; H_PAIR["$h"]=-; H_NET["$h"]=$NET_PREFIX; done
}

# kp_peer HOST — print the other host
kp_peer() { if [ "$1" = kpa ]; then echo kpb; else echo kpa; fi; }

# kp_conf_text HOST HOLDER — print HOST's keepalived.conf when HOLDER is to hold the VIP
kp_conf_text() {
    local h=$1 prio=$KP_LOW peer
    peer=$(kp_peer "$h")
    [ "$h" = "$2" ] && prio=$KP_HIGH
    printf '%s\n' "# Written by scripts/lab: keepalived of lab host $h (namespace baton-$h).
global_defs {
    router_id $h
    enable_script_security
    script_user root
}
vrrp_instance lab {
    state BACKUP
    interface eth0
    virtual_router_id $KP_VRID
    priority $prio
    advert_int 1
    unicast_src_ip ${H_ADDR[$h]}
    unicast_peer {
        ${H_ADDR[$peer]}
    }
    virtual_ipaddress {
        $KP_VIP/$NET_BITS dev eth0
    }
}"
}

# kp_nginx_text HOST — print HOST's nginx.conf
kp_nginx_text() {
    local d=$LAB/hosts/$1
    printf '%s\n' "# Written by scripts/lab: nginx of lab host $1 (namespace baton-$1).
user www-data;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/nginx-error.log warn;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path $d/nginx-tmp/body;
    proxy_temp_path $d/nginx-tmp/proxy;
    fastcgi_temp_path $d/nginx-tmp/fastcgi;
    uwsgi_temp_path $d/nginx-tmp/uwsgi;
    scgi_temp_path $d/nginx-tmp/scgi;
    default_type text/plain;
    server_tokens off;
    server {
        listen 80 default_server;
        location / { return 200 \"host=$1\\n\"; }
    }
}"
}

# kp_pid HOST KIND VAR — sets VAR to the pid of HOST's keepalived or nginx when it runs in the
# host's namespace; fails when it does not
kp_pid() {
    local _f=$LAB/hosts/$1/$2.pid _p=''
    printf -v "$3" ''
    [ -s "$_f" ] && read -r _p <"$_f" 2>/dev/null || return 1
    [[ $_p =~ ^[0-9]+$ ]] && [ -e "/proc/$_p" ] && in_ns "$_p" "baton-$1" || return 1
    printf -v "$3" '%s' "$_p"
}

# kp_up — (up) both hosts' network, configuration files (kpa holds the VIP when the files are
# new), nginx and keepalived running
kp_up() {
    local h d pid
    for h in "${KP_HOSTS[@]}"; do ensure_host_net "$h"; done
    for h in "${KP_HOSTS[@]}"; do
        d=$LAB/hosts/$h
        install -d -m 0755 "$d" "$d/nginx-tmp"
        [ -s "$d/keepalived.conf" ] || kp_conf_text "$h" kpa >"$d/keepalived.conf"
        kp_nginx_text "$h" >"$d/nginx.conf"
        if ! kp_pid "$h" nginx pid; then
            rm -f "$d/nginx.pid"
            (cd / && exec ip netns exec "baton-$h" /usr/sbin/nginx -p "$d/" -e "$d/nginx-error.log" -c "$d/nginx.conf") </dev/null >/dev/null 2>&1 9<&- ||
                die "nginx on $h did not start; see $d/nginx-error.log"
        fi
        if ! kp_pid "$h" keepalived pid; then
            say "starting keepalived on $h"
            rm -f "$d/keepalived.pid" "$d/vrrp.pid"
            (cd / && exec ip netns exec "baton-$h" setsid /usr/sbin/keepalived -n -l -P \
                -f "$d/keepalived.conf" -p "$d/keepalived.pid" -r "$d/vrrp.pid") </dev/null >>"$d/keepalived.log" 2>&1 9<&- &
        fi
    done
    for h in "${KP_HOSTS[@]}"; do
        for _ in $(seq 1 100); do kp_pid "$h" keepalived pid && kp_pid "$h" nginx pid && break; sleep 0.05; done
        kp_pid "$h" keepalived pid || die "keepalived on $h did not start; see $LAB/hosts/$h/keepalived.log"
    done
}

# kp_holders VAR — sets VAR to the hosts that hold the VIP ("kpa", "kpb", "kpa kpb" or "")
kp_holders() {
    local _h _o=''
    for _h in "${KP_HOSTS[@]}"; do
        ip -n "baton-$_h" -o -4 addr show dev eth0 2>/dev/null | grep -q " inet $KP_VIP/" && _o+="${_o:+ }$_h"
    done
    printf -v "$1" '%s' "$_o"
}

# kp_move HOLDER — keepalived's priority swap: HOLDER gets KP_HIGH, the other KP_LOW, both
# reload (SIGHUP); returns at once (the move follows within about 3 s)
kp_move() {
    local h pid
    for h in "${KP_HOSTS[@]}"; do
        kp_conf_text "$h" "$1" >"$LAB/hosts/$h/keepalived.conf"
        kp_pid "$h" keepalived pid || die "keepalived on $h is not running"
        kill -HUP "$pid"
    done
}

# kp_reset — (reset) the VIP back on kpa, waited for (at most 10 s)
kp_reset() {
    local on
    kp_holders on
    [ "$on" = kpa ] && return 0
    kp_move kpa
    for _ in $(seq 1 100); do kp_holders on; [ "$on" = kpa ] && return 0; sleep 0.1; done
    warn "keepalived: the VIP $KP_VIP is on '${on:-nobody}', not kpa, 10 s after the reset"
}

# kp_status VAR — (status) prints a line per host and one for the VIP; sets VAR to 1 when
# something is wrong
kp_status() {
    local -n _bad=$1
    local h pid on note
    for h in "${KP_HOSTS[@]}"; do
        note=''
        if kp_pid "$h" keepalived pid; then note+="keepalived $pid"; else note+="keepalived DEAD"; _bad=1; fi
        if kp_pid "$h" nginx pid; then note+=", nginx $pid"; else note+=", nginx DEAD"; _bad=1; fi
        printf '%-14s %s\n' "baton-$h" "$note"
    done
    kp_holders on
    case $on in
        kpa|kpb) printf 'keepalived     vip %s/%s on: %s\n' "$KP_VIP" "$NET_BITS" "$on" ;;
        *) printf 'keepalived     vip %s/%s on: %s (NOT exactly one)\n' "$KP_VIP" "$NET_BITS" "${on:-nobody}"; _bad=1 ;;
    esac
}

# kp_selftest LAB CLIENT_NS — (selftest, with its ok and bad) exactly one keepalived host holds
# the VIP, it answers from the client's namespace naming that host, each keepalived runs in its
# host's namespace and speaks VRRP by unicast to its peer only (its configuration names the
# peer and no multicast group), and the VRRP packets seen on the bridge are unicast between kpa
# and kpb (one advert a second: 2.5 s of capture)
kp_selftest() {
    local lab=$1 client=$2 h on='' body conf pid seen
    for h in kpa kpb; do
        ip -n "baton-$h" -o -4 addr show dev eth0 2>/dev/null | grep -q ' inet 198\.18\.0\.180/' && on+="${on:+ }$h"
        conf=$lab/hosts/$h/keepalived.conf
        pid=$(cat "$lab/hosts/$h/keepalived.pid" 2>/dev/null)
        if [ -n "$pid" ] && [ "/proc/$pid/ns/net" -ef "/run/netns/baton-$h" ] &&
            grep -q '^    unicast_peer {' "$conf" 2>/dev/null && ! grep -qi 'mcast' "$conf"; then
            ok "keepalived on $h: runs in baton-$h ($pid), VRRP by unicast to its peer"
        else
            bad "keepalived on $h" "not running in baton-$h, or $conf does not keep VRRP to unicast"
        fi
    done
    case $on in
        kpa|kpb) ok "keepalived: the VIP 198.18.0.180 is on exactly one host ($on)" ;;
        *) bad "keepalived: the VIP 198.18.0.180 on exactly one host" "on '${on:-nobody}'"; return ;;
    esac
    body=$(ip netns exec "$client" curl -s --max-time 3 http://198.18.0.180/ 2>&1) || true
    if [ "$body" = "host=$on" ]; then ok "keepalived: the VIP answers host=$on"; else bad "keepalived: the VIP answers host=$on" "$body"; fi
    if command -v tcpdump >/dev/null; then
        seen=$(timeout 2.5 ip netns exec baton-sw tcpdump -n -l -i br0 'ip proto 112' 2>/dev/null | awk 'NF >= 5 {print $3, $5}' | sort -u | tr '\n' ';')
        if [ -n "$seen" ] && ! grep -qv '^198\.18\.0\.8[12] 198\.18\.0\.8[12]:$' <<<"$(tr ';' '\n' <<<"${seen%;}")"; then
            ok "keepalived: VRRP on the bridge only between kpa and kpb ($seen)"
        else
            bad "keepalived: VRRP on the bridge only between kpa and kpb" "seen: ${seen:-nothing}"
        fi
    fi
}
