# shellcheck shell=bash
# scripts/lab.d/common.sh — sourced first by scripts/lab: the lab's settings and every global
# variable the other parts share (declared here, and only here), and the helpers every part
# uses (messages, root, the lab's lock).

SELF=$(readlink -f "${BASH_SOURCE[-1]}")
LAB=${BATON_LAB_DIR:-/var/lib/baton-lab}

NET_PREFIX=198.18.0        # the base lab lives in 198.18.0.0/24 (benchmarking range)
NET_BITS=24
FLEET_NET=198.18           # fleet subnets: 198.18.S.0/24, S = 1, 2, ... (50 pairs each)
FLEET_PER_SUBNET=50
FLEET_MAX=500              # a Linux bridge takes at most 1024 ports (two per fleet pair)
FLEET_JOBS=${BATON_LAB_JOBS:-8}  # fleet pairs set up at once when many need work
SW_NS=baton-sw             # namespace holding the bridge
BRIDGE=br0
SRV_PATH=/srv/baton-lab    # service path as seen inside each service host
DEPLOY_USER=batonlab
SUDOERS_FILE=/etc/sudoers.d/baton-lab
ZONE=baton.test.
TSIG_NAME=baton-update
PASSPHRASE=lab-passphrase
SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# command -> Debian package that provides it
REQUIRED_COMMANDS=(
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
)

# Modes and owners of the generated files, read by one `find` (load_stat_cache) instead of
# one `stat` per file: "MODE USER:GROUP" by path.
declare -A STAT_OF=()
declare -A SW_PORT=() H_ETH0=() H_LOCAL=() FLEET_TOUCHED=()
LOCKED=0
RE_LOCAL=$'[|]-- ([0-9.]+)\n *(/32 host LOCAL)'

say() { printf 'lab: %s\n' "$*"; }

warn() { printf 'lab: warning: %s\n' "$*" >&2; }

die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

require_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

take_lock() { # one scripts/lab at a time changes the lab (fd 9 on this script; never inherited by daemons)
    [ "$LOCKED" = 1 ] && return 0
    exec 9<"$SELF"
    flock -w 600 9 || die "another scripts/lab is still running after 10 minutes"
    LOCKED=1
}

span() { # span NAME... — "a b c", or "a .. z" when long
    if [ $# -le 6 ]; then echo "$*"; else echo "${1} .. ${!#}"; fi
}

elapsed() { # elapsed T0 — seconds since $EPOCHREALTIME was T0, like "1.23s"
    local us=$(( ${EPOCHREALTIME/./} - ${1/./} ))
    printf '%d.%02ds' $((us / 1000000)) $((us % 1000000 / 10000))
}
