# shellcheck shell=bash
# scripts/lab.d/dns.sh — sourced by scripts/lab. DNS: the TSIG keys, the two Knot servers
# (primary ns, secondary ns2), their configuration and zone, queries, the DNS pairs' records.

# ensure_tsig_keys — keys/update.key (what baton signs updates with) and keys/wrong.key (same
# name, another secret: for tests of a refused update)
ensure_tsig_keys() {
    local kdir=$LAB/keys
    if [ ! -s "$kdir/update.key" ]; then
        (umask 077; tsig-keygen -a hmac-sha256 "$TSIG_NAME" >"$kdir/update.key.tmp")
        mv -f "$kdir/update.key.tmp" "$kdir/update.key"
    fi
    if [ ! -s "$kdir/wrong.key" ] || [ "$(tsig_secret "$kdir/wrong.key")" = "$(tsig_secret "$kdir/update.key")" ]; then
        (umask 077; tsig-keygen -a hmac-sha256 "$TSIG_NAME" >"$kdir/wrong.key.tmp")
        mv -f "$kdir/wrong.key.tmp" "$kdir/wrong.key"
    fi
    chmod 0600 "$kdir/update.key" "$kdir/wrong.key"
}

# tsig_secret KEYFILE — print the secret of a BIND key file
tsig_secret() { sed -n 's/.*secret "\([^"]*\)".*/\1/p' "$1"; }

# write_dns_files — both Knot configurations (CFG_CHANGED[knotd/HOST]=1 when one changed) and,
# before Knot first runs, the zone file
write_dns_files() {
    local d=$LAB/dns d2=$LAB/dns2 secret
    secret=$(tsig_secret "$LAB/keys/update.key")
    [ -n "$secret" ] || die "no secret in $LAB/keys/update.key"
    put_file "$d/knot.conf" 0600 root:root "CFG_CHANGED[knotd/$DNS_HOST]" <<EOF
# Written by scripts/lab up: authoritative-only Knot DNS, the primary for zone $ZONE.
# No DNSSEC, no recursion; the only thing it sends on its own is a NOTIFY to the lab's
# secondary ($DNS2_ADDR), which then transfers the zone from it.
server:
    rundir: "$d"
    pidfile: "$d/knot.pid"
    listen: $DNS_ADDR@53
    udp-workers: 2
    tcp-workers: 2
    background-workers: 1

log:
  - target: "$d/knot.log"
    any: info

database:
    storage: "$d/db"

control:
    listen: "$d/knot.sock"

key:
  - id: $TSIG_NAME
    algorithm: hmac-sha256
    secret: "$secret"

remote:
  - id: secondary
    address: $DNS2_ADDR@53

acl:
  - id: $TSIG_NAME
    key: $TSIG_NAME
    action: update
    update-type: [A, AAAA]
  - id: transfer-to-secondary
    address: $DNS2_ADDR
    action: transfer

template:
  - id: default
    storage: "$d"
    file: "%s.zone"

zone:
  - domain: $ZONE
    notify: secondary
    acl: [$TSIG_NAME, transfer-to-secondary]
EOF
    put_file "$d2/knot.conf" 0600 root:root "CFG_CHANGED[knotd/$DNS2_HOST]" <<EOF
# Written by scripts/lab up: authoritative-only Knot DNS, a secondary for zone $ZONE.
# It takes the zone by transfer from the primary ($DNS_ADDR) when notified; it accepts no
# updates itself. No DNSSEC, no recursion.
server:
    rundir: "$d2"
    pidfile: "$d2/knot.pid"
    listen: $DNS2_ADDR@53
    udp-workers: 2
    tcp-workers: 2
    background-workers: 1

log:
  - target: "$d2/knot.log"
    any: info

database:
    storage: "$d2/db"

control:
    listen: "$d2/knot.sock"

remote:
  - id: primary
    address: $DNS_ADDR@53

acl:
  - id: notify-from-primary
    address: $DNS_ADDR
    action: notify

template:
  - id: default
    storage: "$d2"
    file: "%s.zone"

zone:
  - domain: $ZONE
    master: primary
    acl: notify-from-primary
EOF
    local zf=$d/${ZONE%.}.zone
    if [ ! -s "$zf" ] && ! find_daemon knotd "$DNS_HOST"; then
        {
            printf '; Written by scripts/lab up: the lab zone (Knot keeps it in sync after updates).\n'
            # shellcheck disable=SC2016  # $ORIGIN and $TTL are zone file directives
            printf '$ORIGIN %s\n$TTL 300\n' "$ZONE"
            printf '@\tSOA\tns.%s hostmaster.%s 1 60 30 3600 5\n' "$ZONE" "$ZONE"
            printf '@\tNS\tns.%s\n@\tNS\tns2.%s\n' "$ZONE" "$ZONE"
            local h p
            for h in "${HOSTS[@]}"; do
                printf '%s\tA\t%s\n' "$h" "${H_ADDR[$h]}"
                [ -z "${H_IP6[$h]-}" ] || printf '%s\tAAAA\t%s\n' "$h" "${H_IP6[$h]}"
            done
            local rtype a
            for p in "${PAIRS[@]}"; do
                [ "${P_METHOD[$p]}" = dns ] || continue
                dns_record "$p" rtype a
                printf '%s\t%s\t%s\t%s\n' "${P_TARGET[$p]}" "${P_TTL[$p]}" "$rtype" "$a"
            done
        } >"$zf"
    fi
}

# dns_record PAIR TYPEVAR ADDRVAR — the initial record of a DNS pair: A, or AAAA for a pair of
# IPv6 hosts (P_HOST6), pointing at its initial primary
dns_record() {
    pair_addr "$1" "${P_PRIMARY[$1]}" "$3"
    if [ "${P_HOST6[$1]-}" = 1 ]; then printf -v "$2" AAAA; else printf -v "$2" A; fi
}

# resolv_conf_text VAR — sets VAR to a lab namespace's resolv.conf
resolv_conf_text() {
    printf -v "$1" '# Written by scripts/lab up: only the lab'"'"'s own authoritative server\nnameserver %s\nsearch %s\noptions timeout:1 attempts:1\n' \
        "$DNS_ADDR" "${ZONE%.}"
}

dns_query() { # dns_query NAME TYPE [SERVER] — ask the lab's primary (or SERVER), from the ctl namespace
    ip netns exec "baton-$CTL_HOST" dig +short +norec +time=1 +tries=1 \
        "@${3:-$DNS_ADDR}" "$1" "$2" 2>/dev/null
}

# knot_dir HOST VAR — sets VAR to the directory of that host's Knot (the primary's, or the
# secondary's)
knot_dir() { if [ "$1" = "$DNS2_HOST" ]; then printf -v "$2" '%s' "$LAB/dns2"; else printf -v "$2" '%s' "$LAB/dns"; fi; }

knotc_() { knotc -s "$LAB/dns/knot.sock" -t 5 "$@"; }      # the primary

knotc2_() { knotc -s "$LAB/dns2/knot.sock" -t 5 "$@"; }    # the secondary

# soa_serial ADDR — the zone's SOA serial as ADDR serves it (empty when it does not answer)
soa_serial() {
    ip netns exec "baton-$CTL_HOST" dig +short +norec +time=1 +tries=1 "@$1" "$ZONE" SOA 2>/dev/null |
        awk '{print $3; exit}'
}

# secondary_in_sync — wait (up to 5 s) until the secondary serves the primary's serial; a
# secondary that lags is thawed (a test may have frozen it) and told to refresh
secondary_in_sync() {
    local i a b
    for i in $(seq 1 50); do
        a=$(soa_serial "$DNS_ADDR"); b=$(soa_serial "$DNS2_ADDR")
        [ -n "$a" ] && [ "$a" = "$b" ] && return 0
        if [ "$i" = 1 ]; then
            knotc2_ zone-thaw "$ZONE" >/dev/null 2>&1 || true
            knotc2_ zone-refresh "$ZONE" >/dev/null 2>&1 || true
        fi
        sleep 0.1
    done
    return 1
}

# start_dns_host HOST — its knotd runs in its namespace with its current configuration
# (reloaded when up changed it)
start_dns_host() {
    local h=$1 ns=baton-$1 pid d changed=${CFG_CHANGED[knotd/$1]:-0}
    knot_dir "$h" d
    find_daemon knotd "$h" pid || pid=
    if [ -n "$pid" ] && ! in_ns "$pid" "$ns"; then
        warn "knotd $pid lives in a stale namespace; restarting it"; stop_pids "$pid"; pid=
    fi
    if [ -n "$pid" ] && [ "$changed" = 1 ]; then
        say "reloading Knot configuration on $h"
        knotc -s "$d/knot.sock" -t 5 reload >/dev/null || { stop_pids "$pid"; pid=; }
    fi
    [ -n "$pid" ] && return 0
    say "starting knotd on $h"
    knotc -c "$d/knot.conf" conf-check >/dev/null || die "Knot rejects $d/knot.conf"
    rm -f "$d/knot.pid" "$d/knot.sock"
    ip netns exec "$ns" env -i PATH="$SAFE_PATH" LANG=C /usr/sbin/knotd -c "$d/knot.conf" -d \
        </dev/null >>"$d/start.log" 2>&1 9<&- || { tail -n 5 "$d/start.log" >&2; die "could not start knotd"; }
    wait_pidfile knotd "$h" || { tail -n 5 "$d/knot.log" >&2 2>/dev/null; die "knotd did not start"; }
}

# reset_dns_record PAIR — the DNS pair's name points at its initial primary again (a direct
# edit of the primary's zone; the secondary follows by NOTIFY)
reset_dns_record() {
    local p=$1 want have rtype a
    dns_record "$p" rtype a
    want="[$ZONE] ${P_TARGET[$p]} ${P_TTL[$p]} $rtype $a"
    have=$(knotc_ zone-read "$ZONE" "${P_TARGET[$p]}" 2>&1 || true)
    [ "$have" != "$want" ] || return 0
    knotc_ zone-begin "$ZONE" >/dev/null
    if ! { knotc_ zone-unset "$ZONE" "${P_TARGET[$p]}" >/dev/null 2>&1 || true
           knotc_ zone-set "$ZONE" "${P_TARGET[$p]}" "${P_TTL[$p]}" "$rtype" "$a" >/dev/null &&
           knotc_ zone-commit "$ZONE" >/dev/null; }; then
        knotc_ zone-abort "$ZONE" >/dev/null 2>&1 || true
        die "could not reset ${P_TARGET[$p]} in Knot"
    fi
}
