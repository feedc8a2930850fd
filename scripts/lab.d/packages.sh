# shellcheck shell=bash
# scripts/lab.d/packages.sh — sourced by scripts/lab. The Debian packages the lab needs,
# installed when a command is missing.

# missing_packages — print the packages of the commands that are missing
missing_packages() {
    # command (or an absolute path that must exist) -> Debian package that provides it
    local required=(
        "sshd openssh-server"
        "ssh openssh-client"
        "ssh-keygen openssh-client"
        "arping iputils-arping"
        "nft nftables"               # baton's quiesce (VIP pairs with `quiesce`)
        "ping iputils-ping"
        "knotd knot"
        "knotc knot"
        "kdig knot-dnsutils"
        "dig bind9-dnsutils"
        "nsupdate bind9-dnsutils"
        "tsig-keygen bind9"          # Debian 12 ships tsig-keygen in bind9, not bind9-utils
        "nginx nginx-light"
        "sudo sudo"
        "visudo sudo"
        "ip iproute2"
        "curl curl"
        "unshare util-linux"
        "nsenter util-linux"
        "flock util-linux"
        "openssl openssl"            # the lab CA and certificate for the https checks
        "setpriv util-linux"         # pg.sh: postgres's commands as the postgres user
        "$PG_BIN/postgres postgresql-15"          # the PostgreSQL pairs (pg.sh)
        "$PG_BIN/pg_basebackup postgresql-client-15"
        "$PG_BIN/psql postgresql-client-15"
        "$PG_BIN/pg_rewind postgresql-15"            # the hook's follow (baton-pg)
        "$PG_BIN/pg_waldump postgresql-15"           # the hook's position of a crashed server
        "psql postgresql-client-common"              # /usr/bin/psql: the pg pair's checks
        "/usr/lib/python3/dist-packages/psycopg2/__init__.py python3-psycopg2"   # scripts/pgwriter
        "haproxy haproxy"                            # the HAProxy pairs' balancers (lb.sh)
        "socat socat"                                # their runtime API over the admin socket
        "$ETCD_BIN etcd-server"                      # the etcd cluster (etcd.sh)
        "etcdctl etcd-client"
        "keepalived keepalived"                      # keepalived's move beside baton's (keepalived.sh)
        "tcpdump tcpdump"                            # selftest: keepalived's VRRP stays unicast on the bridge
    )
    local line cmd pkg out=()
    for line in "${required[@]}"; do
        read -r cmd pkg <<<"$line"
        if [[ $cmd == /* ]]; then [ -e "$cmd" ] && continue
        else command -v "$cmd" >/dev/null 2>&1 && continue; fi
        [[ " ${out[*]-} " == *" $pkg "* ]] || out+=("$pkg")
    done
    echo "${out[@]-}"
}

# ensure_packages — install the missing packages (without letting them start their services)
ensure_packages() {
    local missing; missing=$(missing_packages)
    [ -n "$missing" ] || return 0
    say "installing Debian packages: $missing"
    # Never let a package's maintainer script start its stock service (BIND would prime
    # the root servers): a policy-rc.d that denies every start, unless one is already there.
    local guard=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# temporary, from baton scripts/lab\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d; guard=1
    fi
    local rc=0
    export DEBIAN_FRONTEND=noninteractive
    # another apt/dpkg may hold the locks: wait for it (DPkg::Lock::Timeout) and retry update
    for _ in $(seq 1 60); do
        apt-get -o DPkg::Lock::Timeout=600 -q update && { rc=0; break; } || rc=$?
        sleep 5
    done
    # shellcheck disable=SC2086  # split on purpose: one argument per package
    [ "$rc" = 0 ] && apt-get -o DPkg::Lock::Timeout=600 -q install -y --no-install-recommends $missing || rc=$?
    [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d
    # bind9 is here only for tsig-keygen, and the lab runs its own HAProxy and etcd: on a
    # machine that runs systemd, keep the stock named, haproxy and etcd off at boot
    if [[ " $missing " == *" bind9 "* ]] && [ -d /run/systemd/system ]; then
        systemctl disable named.service >/dev/null 2>&1 || true
    fi
    if [[ " $missing " == *" haproxy "* ]] && [ -d /run/systemd/system ]; then
        systemctl disable haproxy.service >/dev/null 2>&1 || true
    fi
    if [[ " $missing " == *" etcd-server "* ]] && [ -d /run/systemd/system ]; then
        systemctl disable etcd.service >/dev/null 2>&1 || true
    fi
    if [[ " $missing " == *" keepalived "* ]] && [ -d /run/systemd/system ]; then
        systemctl disable keepalived.service >/dev/null 2>&1 || true
    fi
    [ "$rc" = 0 ] || die "apt-get failed ($rc)"
    missing=$(missing_packages)
    [ -z "$missing" ] || die "still missing after install: $missing"
}
