# shellcheck shell=bash
# scripts/lab.d/tables.sh — sourced by scripts/lab. The tables: the base hosts and pairs, the fleet, and what `up` recorded. Everything else
# is derived from these.

lab_define() {
    local fleet=${1:-0}

    # name     address            role     pair
    LAB_HOSTS=(
        "blue    $NET_PREFIX.11     service  web"
        "green   $NET_PREFIX.12     service  web"
        "amber   $NET_PREFIX.21     service  api"
        "violet  $NET_PREFIX.22     service  api"
        "ns      $NET_PREFIX.53     dns      -"
        "ns2     $NET_PREFIX.54     dns2     -"
        "client  $NET_PREFIX.200    client   -"
        "ctl     $NET_PREFIX.250    ctl      -"
    )
    # pair  method  initial-primary  standby  traffic target                 ttl  description
    LAB_PAIRS=(
        "web    vip     blue     green    $NET_PREFIX.100/$NET_BITS        -    the VIP pair"
        "api    dns     amber    violet   app.baton.test.                  5    the DNS pair"
    )

    HOSTS=(); SERVICE_HOSTS=(); PAIRS=()
    declare -gA H_ADDR=() H_ROLE=() H_PAIR=() H_NET=()
    declare -gA P_METHOD=() P_PRIMARY=() P_STANDBY=() P_TARGET=() P_TTL=() P_DESC=() P_ENV=() P_CANARY=()
    local line name addr role pair method prim stby target ttl desc
    for line in "${LAB_HOSTS[@]}"; do
        read -r name addr role pair <<<"$line"
        HOSTS+=("$name"); H_ADDR[$name]=$addr; H_ROLE[$name]=$role; H_PAIR[$name]=$pair
        H_NET[$name]=$NET_PREFIX
        [ "$role" = service ] && SERVICE_HOSTS+=("$name")
        [ "$role" = dns ] && DNS_HOST=$name
        [ "$role" = dns2 ] && DNS2_HOST=$name
        [ "$role" = ctl ] && CTL_HOST=$name
        [ "$role" = client ] && CLIENT_HOST=$name
    done
    for line in "${LAB_PAIRS[@]}"; do
        read -r pair method prim stby target ttl desc <<<"$line"
        PAIRS+=("$pair"); P_METHOD[$pair]=$method; P_PRIMARY[$pair]=$prim; P_STANDBY[$pair]=$stby
        P_TARGET[$pair]=$target; P_TTL[$pair]=$ttl; P_DESC[$pair]=$desc
        P_ENV[$pair]=dev; P_CANARY[$pair]=false
    done
    DNS_ADDR=${H_ADDR[$DNS_HOST]}
    DNS2_ADDR=${H_ADDR[$DNS2_HOST]}

    # The fleet: FLEET_N extra VIP pairs, FLEET_NETS the subnets they use.
    FLEET_N=$fleet; FLEET_PAIRS=(); FLEET_HOSTS=(); FLEET_NETS=()
    local k env prev='' ndev=$fleet ntest=0 net=
    if [ "$fleet" -ge 3 ]; then
        ndev=$(( (2 * fleet + 9) / 10 )); ntest=$(( (3 * fleet + 9) / 10 ))   # ceil(0.2N), ceil(0.3N)
    fi
    for ((k = 1; k <= fleet; k++)); do
        if [ "$k" -le "$ndev" ]; then env="dev"; elif [ "$k" -le $((ndev + ntest)) ]; then env="test"; else env="prod"; fi
        if [ "$env" != "$prev" ]; then fleet_define "$k" "$env" true; else fleet_define "$k" "$env" false; fi
        prev=$env
        FLEET_PAIRS+=("$FP"); FLEET_HOSTS+=("$FA" "$FB")
        [ "$net" = "${H_NET[$FA]}" ] || { net=${H_NET[$FA]}; FLEET_NETS+=("$net"); }
    done
    # every namespace may have the connected routes of these subnets, and nothing else
    LAB_NETS=("$NET_PREFIX" "${FLEET_NETS[@]}")
}

# fleet_define K ENV CANARY — the table entries of fleet pair K; sets FP (pair), FA, FB (hosts)
fleet_define() {
    local k=$1 s i net
    s=$(( 1 + (k - 1) / FLEET_PER_SUBNET )); i=$(( (k - 1) % FLEET_PER_SUBNET ))
    net=$FLEET_NET.$s
    printf -v FP 'fleet-%03d' "$k"; printf -v FA 'f%03da' "$k"; printf -v FB 'f%03db' "$k"
    H_ADDR[$FA]=$net.$((2 * i + 1)); H_ADDR[$FB]=$net.$((2 * i + 2))
    H_ROLE[$FA]=service; H_ROLE[$FB]=service; H_PAIR[$FA]=$FP; H_PAIR[$FB]=$FP
    H_NET[$FA]=$net; H_NET[$FB]=$net
    P_METHOD[$FP]=vip; P_PRIMARY[$FP]=$FA; P_STANDBY[$FP]=$FB
    P_TARGET[$FP]=$net.$((150 + i))/$NET_BITS; P_TTL[$FP]=-; P_DESC[$FP]="fleet VIP pair $k"
    P_ENV[$FP]=$2; P_CANARY[$FP]=$3
}

# the fleet size recorded by the last `up` (0 when none) -> RECORDED
read_recorded() {
    RECORDED=0
    local n=
    [ -s "$LAB/fleet-pairs" ] || return 0
    IFS= read -r n <"$LAB/fleet-pairs" || true
    [[ $n =~ ^[0-9]+$ ]] || die "$LAB/fleet-pairs holds '$n', not a number; run 'scripts/lab up --pairs N'"
    RECORDED=$((10#$n))
}

# the highest fleet pair index with anything left of it (namespace, host dir, pair file) -> FOUND_MAX
find_fleet_remains() {
    local f k
    FOUND_MAX=0
    for f in /run/netns/baton-f[0-9][0-9][0-9][ab] /etc/netns/baton-f[0-9][0-9][0-9][ab] \
        "$LAB"/hosts/f[0-9][0-9][0-9][ab] "$LAB"/fleet/pairs/fleet-[0-9][0-9][0-9].toml; do
        k=${f##*/}; k=${k#baton-}; k=${k#fleet-}; k=${k#f}; k=$((10#${k:0:3}))
        [ "$k" -gt "$FOUND_MAX" ] && FOUND_MAX=$k
    done
    return 0
}

host_daemons() {
    case ${H_ROLE[$1]} in
        service) echo sshd nginx ;;
        dns|dns2) echo knotd ;;
        *) echo ;;
    esac
}
