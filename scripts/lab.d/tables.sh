# shellcheck shell=bash
# scripts/lab.d/tables.sh — sourced by scripts/lab. The tables: the base hosts and pairs, the
# fleet, and the fleet size `up` recorded. Everything else is derived from these.

# lab_define N — the tables (see common.sh) for the base lab and N fleet pairs
# shellcheck disable=SC2034  # it sets the tables, which the other parts read
lab_define() {
    local fleet=${1:-0}

    # name     address            role     pair  [IPv6 address: the host is dual-stack]
    local lab_hosts=(
        "blue    $NET_PREFIX.11     service  web"
        "green   $NET_PREFIX.12     service  web"
        "amber   $NET_PREFIX.21     service  api"
        "violet  $NET_PREFIX.22     service  api"
        "blue6   $NET_PREFIX.15     service  web6   $NET6_PREFIX::15"
        "green6  $NET_PREFIX.16     service  web6   $NET6_PREFIX::16"
        "amber6  $NET_PREFIX.25     service  api6   $NET6_PREFIX::25"
        "violet6 $NET_PREFIX.26     service  api6   $NET6_PREFIX::26"
        "pga     $NET_PREFIX.31     pg       pg"
        "pgb     $NET_PREFIX.32     pg       pg"
        "teal    $NET_PREFIX.41     service  lb"
        "coral   $NET_PREFIX.42     service  lb"
        "lb      $NET_PREFIX.40     haproxy  lb"
        "fara    $FAR_NET.11        service  far"
        "farb    $FAR_NET.12        service  far"
        "bastion $NET_PREFIX.60     bastion  -"
        "ns      $NET_PREFIX.53     dns      -"
        "ns2     $NET_PREFIX.54     dns2     -"
        "client  $NET_PREFIX.200    client   -      $NET6_PREFIX::200"
        "ctl     $NET_PREFIX.250    ctl      -      $NET6_PREFIX::250"
        # ctlx: controllers beside ctl for more watchers, etcd: the etcd cluster (etcd.sh)
        "ctl2    $NET_PREFIX.251    ctlx     -"
        "ctl3    $NET_PREFIX.252    ctlx     -"
        "etcd1   $NET_PREFIX.71     etcd     -"
        "etcd2   $NET_PREFIX.72     etcd     -"
        "etcd3   $NET_PREFIX.73     etcd     -"
    )
    # pair  method  initial-primary  standby  traffic target                 ttl  description
    local lab_pairs=(
        "web    vip     blue     green    $NET_PREFIX.100/$NET_BITS        -    the VIP pair"
        "api    dns     amber    violet   app.baton.test.                  5    the DNS pair"
        "pg     vip     pga      pgb      $NET_PREFIX.130/$NET_BITS        -    the PostgreSQL streaming-replication pair"
        "lb     haproxy teal     coral    $NET_PREFIX.40:80                -    the HAProxy pair (frontend on host lb)"
        "far    vip     fara     farb     $FAR_NET.100/$NET_BITS         -    the VIP pair behind the jump host bastion"
        "web6   vip     blue6    green6   $NET6_PREFIX::160/$NET6_BITS    -    the dual-stack VIP pair (hosts over IPv4, the VIP IPv6)"
        "api6   dns     amber6   violet6  app6.baton.test.                 5    the DNS pair of IPv6 hosts (an AAAA record)"
    )

    HOSTS=(); SERVICE_HOSTS=(); PG_HOSTS=(); LB_HOSTS=(); BASTION_HOSTS=(); PAIRS=()
    H_ADDR=(); H_IP6=(); H_ROLE=(); H_PAIR=(); H_NET=()
    P_METHOD=(); P_PRIMARY=(); P_STANDBY=(); P_TARGET=(); P_TTL=(); P_DESC=(); P_ENV=(); P_CANARY=(); P_BALANCER=()
    P_HOST6=()
    ETCD_HOSTS=()
    local line name addr role pair addr6 method prim stby target ttl desc
    for line in "${lab_hosts[@]}"; do
        read -r name addr role pair addr6 <<<"$line"
        HOSTS+=("$name"); H_ADDR["$name"]=$addr; H_ROLE["$name"]=$role; H_PAIR["$name"]=$pair
        [ -z "$addr6" ] || H_IP6["$name"]=$addr6
        H_NET["$name"]=${addr%.*}
        [ "$role" = service ] && SERVICE_HOSTS+=("$name")
        [ "$role" = pg ] && PG_HOSTS+=("$name")
        [ "$role" = haproxy ] && { LB_HOSTS+=("$name"); P_BALANCER["$pair"]=$name; }
        [ "$role" = bastion ] && BASTION_HOSTS+=("$name")
        [ "$role" = etcd ] && ETCD_HOSTS+=("$name")
        [ "$role" = dns ] && DNS_HOST=$name
        [ "$role" = dns2 ] && DNS2_HOST=$name
        [ "$role" = ctl ] && CTL_HOST=$name
        [ "$role" = client ] && CLIENT_HOST=$name
    done
    for line in "${lab_pairs[@]}"; do
        read -r pair method prim stby target ttl desc <<<"$line"
        PAIRS+=("$pair"); P_METHOD["$pair"]=$method; P_PRIMARY["$pair"]=$prim; P_STANDBY["$pair"]=$stby
        P_TARGET["$pair"]=$target; P_TTL["$pair"]=$ttl; P_DESC["$pair"]=$desc
        P_ENV["$pair"]=dev; P_CANARY["$pair"]=false
    done
    # the DNS pair of IPv6 hosts: baton reaches its hosts (and its record points) at their
    # IPv6 addresses (pair_addr)
    P_HOST6["api6"]=1
    DNS_ADDR=${H_ADDR[$DNS_HOST]}
    DNS2_ADDR=${H_ADDR[$DNS2_HOST]}

    # The fleet: FLEET_N extra VIP pairs, FLEET_NETS the subnets they use.
    FLEET_N=$fleet; FLEET_PAIRS=(); FLEET_HOSTS=(); FLEET_NETS=()
    local k env prev='' ndev=$fleet ntest=0 net='' fp
    if [ "$fleet" -ge 3 ]; then
        ndev=$(( (2 * fleet + 9) / 10 )); ntest=$(( (3 * fleet + 9) / 10 ))   # ceil(0.2N), ceil(0.3N)
    fi
    for ((k = 1; k <= fleet; k++)); do
        if [ "$k" -le "$ndev" ]; then env="dev"; elif [ "$k" -le $((ndev + ntest)) ]; then env="test"; else env="prod"; fi
        if [ "$env" != "$prev" ]; then fleet_define "$k" "$env" true fp; else fleet_define "$k" "$env" false fp; fi
        prev=$env
        FLEET_PAIRS+=("$fp"); FLEET_HOSTS+=("${P_PRIMARY[$fp]}" "${P_STANDBY[$fp]}")
        [ "$net" = "${H_NET[${P_PRIMARY[$fp]}]}" ] || { net=${H_NET[${P_PRIMARY[$fp]}]}; FLEET_NETS+=("$net"); }
    done
    # every namespace may have the connected routes of these subnets, and nothing else
    LAB_NETS=("$NET_PREFIX" "$FAR_NET" "${FLEET_NETS[@]}")
}

# fleet_define K ENV CANARY PAIRVAR — the table entries of fleet pair K (its hosts are
# P_PRIMARY[pair] and P_STANDBY[pair]); sets PAIRVAR to its name
# shellcheck disable=SC2034,SC2153  # sets the tables, read by the other parts; FLEET_NET is a setting (common.sh)
fleet_define() {
    local _k=$1 _s _i _net _p _a _b
    _s=$(( 1 + (_k - 1) / FLEET_PER_SUBNET )); _i=$(( (_k - 1) % FLEET_PER_SUBNET ))
    _net=$FLEET_NET.$_s
    printf -v _p 'fleet-%03d' "$_k"; printf -v _a 'f%03da' "$_k"; printf -v _b 'f%03db' "$_k"
    H_ADDR["$_a"]=$_net.$((2 * _i + 1)); H_ADDR["$_b"]=$_net.$((2 * _i + 2))
    H_ROLE["$_a"]=service; H_ROLE["$_b"]=service; H_PAIR["$_a"]=$_p; H_PAIR["$_b"]=$_p
    H_NET["$_a"]=$_net; H_NET["$_b"]=$_net
    P_METHOD["$_p"]=vip; P_PRIMARY["$_p"]=$_a; P_STANDBY["$_p"]=$_b
    P_TARGET["$_p"]=$_net.$((150 + _i))/$NET_BITS; P_TTL["$_p"]=-; P_DESC["$_p"]="fleet VIP pair $_k"
    P_ENV["$_p"]=$2; P_CANARY["$_p"]=$3
    printf -v "$4" '%s' "$_p"
}

# read_recorded VAR — sets VAR to the fleet size recorded by the last `up` (0 when none)
read_recorded() {
    local _n=
    printf -v "$1" 0
    [ -s "$LAB/fleet-pairs" ] || return 0
    IFS= read -r _n <"$LAB/fleet-pairs" || true
    [[ $_n =~ ^[0-9]+$ ]] || die "$LAB/fleet-pairs holds '$_n', not a number; run 'scripts/lab up --pairs N'"
    printf -v "$1" '%s' $((10#$_n))
}

# find_fleet_remains VAR — sets VAR to the highest fleet pair index with anything left of it
# (namespace, host dir, pair file), 0 when none
find_fleet_remains() {
    local _f _k _max=0
    for _f in /run/netns/baton-f[0-9][0-9][0-9][ab] /etc/netns/baton-f[0-9][0-9][0-9][ab] \
        "$LAB"/hosts/f[0-9][0-9][0-9][ab] "$LAB"/fleet/pairs/fleet-[0-9][0-9][0-9].toml; do
        _k=${_f##*/}; _k=${_k#baton-}; _k=${_k#fleet-}; _k=${_k#f}; _k=$((10#${_k:0:3}))
        [ "$_k" -gt "$_max" ] && _max=$_k
    done
    printf -v "$1" '%s' "$_max"
}

host_daemons() { # host_daemons HOST — print the kinds of daemon its role runs
    case ${H_ROLE[$1]} in
        service) echo sshd nginx ;;
        dns|dns2) echo knotd ;;
        pg) echo sshd postgres ;;
        haproxy) echo sshd haproxy ;;
        bastion) echo sshd ;;
        etcd) echo etcd ;;
        *) echo ;;
    esac
}

# pair_addr PAIR HOST VAR — sets VAR to the address of HOST that PAIR's file names (its IPv6
# address for a pair of IPv6 hosts, P_HOST6)
pair_addr() {
    if [ "${P_HOST6[$1]-}" = 1 ]; then printf -v "$3" '%s' "${H_IP6[$2]}"; else printf -v "$3" '%s' "${H_ADDR[$2]}"; fi
}
