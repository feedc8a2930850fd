# shellcheck shell=bash
# scripts/lab.d/packages.sh — sourced by scripts/lab. The Debian packages the lab needs, installed when a command is missing.

missing_packages() {
    local line cmd pkg out=()
    for line in "${REQUIRED_COMMANDS[@]}"; do
        read -r cmd pkg <<<"$line"
        command -v "$cmd" >/dev/null 2>&1 && continue
        [[ " ${out[*]-} " == *" $pkg "* ]] || out+=("$pkg")
    done
    echo "${out[@]-}"
}

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
    local rc=0 try
    export DEBIAN_FRONTEND=noninteractive
    # another apt/dpkg may hold the locks: wait for it (DPkg::Lock::Timeout) and retry update
    for try in $(seq 1 60); do
        apt-get -o DPkg::Lock::Timeout=600 -q update && { rc=0; break; } || rc=$?
        sleep 5
    done
    # shellcheck disable=SC2086
    [ "$rc" = 0 ] && apt-get -o DPkg::Lock::Timeout=600 -q install -y --no-install-recommends $missing || rc=$?
    [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d
    # bind9 is here only for tsig-keygen: on a machine that runs systemd, keep named off at boot
    if [[ " $missing " == *" bind9 "* ]] && [ -d /run/systemd/system ]; then
        systemctl disable named.service >/dev/null 2>&1 || true
    fi
    [ "$rc" = 0 ] || die "apt-get failed ($rc)"
    missing=$(missing_packages)
    [ -z "$missing" ] || die "still missing after install: $missing"
}
