# shellcheck shell=bash
# scripts/lab.d/common.sh — sourced first by scripts/lab: the lab's settings, every global
# variable the parts share (declared here and only here, each with what it holds and who sets
# it), and the helpers every part uses (messages, root, the lab's lock, spans of names, time).
#
# Everything else takes arguments. Where a function hands a value back without a fork, its
# caller names the variable to set (printf -v / local -n): `sshd_config_text HOST VAR`.
# Those out-variable names must not be the callee's own locals; the callees' locals that could
# clash start with an underscore.
#
# The variables below that are not constants are of three kinds:
#   the tables     what lab_define (tables.sh) derives from the lab's definition; read-only after
#   caches         what one look at the system found, kept so that hot paths (hundreds of fleet
#                  hosts) do not look again
#   run state      what `up` did to which host in this run, read by later steps of the same run
# (Subshells of run_pool change only their own copies.)

# --- settings -------------------------------------------------------------------------------
# shellcheck disable=SC2034  # (this file only declares; the other parts use them)
{
SELF=$(readlink -f "${BASH_SOURCE[-1]}")   # scripts/lab itself: the lab's lock, usage, selftest
LAB=${BATON_LAB_DIR:-/var/lib/baton-lab}

NET_PREFIX=198.18.0        # the base lab lives in 198.18.0.0/24 (benchmarking range)
NET_BITS=24
FAR_NET=198.18.200        # pair far's hosts: reachable from baton-ctl only through the bastion (far.sh)
NET6_PREFIX=fd00:198:18    # the dual-stack hosts (and the client and controller) also have
NET6_BITS=64               # an address in fd00:198:18::/64 (a unique local range of the lab's own)
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
PG_BIN=/usr/lib/postgresql/15/bin   # Debian's postgresql-15 (pg.sh: the PostgreSQL pairs)
PG_PORT=5432
PG_HOOK=/usr/local/sbin/baton-pg    # the PostgreSQL role hook, installed by up (pg.sh)
PG_HOOK_SRC=$(dirname "$(dirname "$SELF")")/examples/postgres/baton-pg   # ... from the repo's example
PG_ETC=/etc/baton-pg                # where each PostgreSQL host sees its own hook config (pg.sh)
# The SQL of the pg pair's checks (pairs.sh), each run on a host as
# `sudo -n -u postgres psql -X -A -t -c SQL`; the sudoers rule allows exactly these (user.sh)
PG_SQL_WRITABLE='select not pg_is_in_recovery()'
PG_SQL_STREAMING='select status from pg_stat_wal_receiver where not pg_is_wal_replay_paused()'
# The HAProxy pairs (lb.sh): the group of every balancer's admin socket (the deploy user is a
# member, as on Debian, whose stock socket is group haproxy, mode 660), the frontend's name,
# the primary's weight, and the file whose presence makes a service host of such a pair answer
# about 20 % of ordinary requests with a 500 (the change v2-bad)
LB_GROUP=haproxy
LB_FRONTEND=front
LB_WEIGHT=100
FAULT_FILE=$SRV_PATH/fault-500
# The etcd cluster (etcd.sh): Debian's etcd run as its user etcd, the members' ports, the
# cluster's token, and the key prefix of config-etcd/baton.toml (reset deletes every key under it)
ETCD_BIN=/usr/bin/etcd
ETCD_USER=etcd
ETCD_CLIENT_PORT=2379
ETCD_PEER_PORT=2380
ETCD_TOKEN=baton-lab
ETCD_PREFIX=/baton/lab/

# --- the tables (set by lab_define and fleet_define, tables.sh) ------------------------------
HOSTS=()              # every base host, in table order
SERVICE_HOSTS=()      # the base hosts with role service (sshd + nginx)
PG_HOSTS=()           # the base hosts with role pg (sshd + postgres)
LB_HOSTS=()           # the base hosts with role haproxy (sshd + HAProxy: the frontend of a pair)
BASTION_HOSTS=()      # the base hosts with role bastion (sshd alone: the jump host of pair far)
ETCD_HOSTS=()         # the base hosts with role etcd (the members of the etcd cluster, etcd.sh)
PAIRS=()              # the base pairs
DNS_HOST='' DNS2_HOST='' CTL_HOST='' CLIENT_HOST=''   # the hosts with those roles
DNS_ADDR='' DNS2_ADDR=''                              # the two Knot servers' addresses
FLEET_N=0             # the number of fleet pairs
FLEET_PAIRS=()        # fleet-001 ..
FLEET_HOSTS=()        # f001a f001b ..
FLEET_NETS=()         # the fleet subnets in use (198.18.S)
LAB_NETS=()           # every subnet in use: the only connected routes a namespace may have
declare -A H_ADDR=() H_ROLE=() H_PAIR=() H_NET=()     # by host: address, role, pair, subnet
declare -A H_IP6=()                                 # by dual-stack host: its IPv6 address
declare -A P_HOST6=()                                 # by pair: 1 when baton reaches its hosts over IPv6
declare -A P_METHOD=() P_PRIMARY=() P_STANDBY=() P_TARGET=() P_TTL=() P_DESC=() P_ENV=() P_CANARY=()
                                                      # by pair: its columns in the tables
declare -A P_BALANCER=()                              # by haproxy pair: its HAProxy host (role haproxy)

# --- caches --------------------------------------------------------------------------------
# Modes and owners of the generated files, read by one `find` (load_stat_cache) instead of
# one `stat` per file: "MODE USER:GROUP" by path. put_text keeps it current.
declare -A STAT_OF=()
# load_sw_ports (net.sh): SW_PORT[PORT]=ok for each bridge port that is up; SW_BRIDGE is
# up, down or missing
declare -A SW_PORT=()
SW_BRIDGE=missing
# host_net_ok (net.sh): H_ETH0[HOST] = eth0's addresses (" A/P A/P ... ");
# fleet_net_ok: H_LOCAL[HOST] = its local addresses (" A A ... ")
declare -A H_ETH0=() H_LOCAL=()
# load_process_table (procs.sh): PPID_OF[PID] = its parent
declare -A PPID_OF=()
# etcd_health_note (etcd.sh): ETCD_HEALTH[MEMBER] = "healthy" or "healthy, leader", as
# `endpoint health` and `endpoint status` said (ETCD_HEALTH[.] set once asked)
declare -A ETCD_HEALTH=()

# --- run state -----------------------------------------------------------------------------
LOCKED=0              # take_lock: this process holds the lab's lock
LAB_HOSTNAME=''       # cmd_up: this machine's name (each namespace's /etc/hosts has it)
declare -A NEW_HOST=()       # ensure_host_net: HOST -> 1 when its namespace was created now
declare -A NEW_HOSTKEY=()    # host_key: HOST -> 1 when its sshd host key was generated now
declare -A CFG_CHANGED=()    # KIND/HOST -> 1 when up rewrote that daemon's config (sshd, nginx, knotd)
declare -A FLEET_TOUCHED=()  # fleet_up: HOST -> 1 when this run set its pair up
}

# --- helpers ---------------------------------------------------------------------------------
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
