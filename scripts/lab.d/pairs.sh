# shellcheck shell=bash
# scripts/lab.d/pairs.sh — sourced by scripts/lab. baton's configuration for the lab: config/
# (the base pairs) and fleet/ (the fleet pairs).

# ssh_section_text VAR — sets VAR to the [ssh] section shared by config/baton.toml and
# fleet/baton.toml (both one level below the lab dir, so the same relative paths)
ssh_section_text() {
    printf -v "$1" '%s' "[ssh]
user = \"$DEPLOY_USER\"
port = 22
identity = \"../ssh/id_ed25519\"
known_hosts = \"../ssh/known_hosts\"
connect_timeout = \"3s\"
command_timeout = \"30s\"
sudo = true
"
}

# pair_toml PAIR VAR — sets VAR to the pair's file (a fleet pair also gets canary, a 1 s observe
# period and the `noop` change)
pair_toml() {
    local p=$1 prim=${P_PRIMARY[$1]} stby=${P_STANDBY[$1]} fleet=0 observe=2s x a1 a2
    local -n _toml=$2
    pair_addr "$p" "$prim" a1; pair_addr "$p" "$stby" a2
    [[ $p == fleet-* ]] && { fleet=1; observe=1s; }
    printf -v _toml '# Written by scripts/lab up: %s.\nenvironment = "%s"\n' "${P_DESC[$p]}" "${P_ENV[$p]}"
    if [ $fleet = 1 ]; then printf -v x 'canary = %s\n' "${P_CANARY[$p]}"; _toml+=$x; fi
    printf -v x 'version_command = "cat %s/VERSION"\nobserve_period = "%s"\n' "$SRV_PATH" "$observe"; _toml+=$x
    printf -v x '\n[hosts.%s]\naddress = "%s"\n' "$prim" "$a1"; _toml+=$x
    printf -v x '\n[hosts.%s]\naddress = "%s"\n' "$stby" "$a2"; _toml+=$x
    _toml+=$'\n[traffic]\n'
    case ${P_METHOD[$p]} in
        vip) printf -v x 'method = "vip"\naddress = "%s"\ninterface = "eth0"\n' "${P_TARGET[$p]}" ;;
        dns) printf -v x 'method = "dns"\nname = "%s"\nzone = "%s"\nservers = ["%s:53", "%s:53"]\ntsig_key = "../../keys/update.key"\n' \
            "${P_TARGET[$p]}" "$ZONE" "$DNS_ADDR" "$DNS2_ADDR" ;;
    esac
    _toml+=$x
    if [ "$p" = far ]; then
        # behind the bastion (far.sh): a jump host, and a check the hosts run themselves
        far_pair_extra _toml
        far_check_text x; _toml+=$x
    else
        _toml+=$'\n[[checks]]\nname = "page"\nkind = "http"\nurl = "http://{address}/"\nexpect_status = 200\nexpect_body = "host={host} "\ntimeout = "2s"\n'
    fi
    # Changes the demo and the tests apply: version 2 of the page, and back.
    x="
[changes.v2]
label = \"service version 2\"
upload = [{ from = \"files/release-notes.txt\", to = \"$SRV_PATH/release-notes.txt\", mode = \"0644\" }]
steps = [\"sed -i 's/version=[0-9]*/version=2/' $SRV_PATH/index.html\", \"echo 2 > $SRV_PATH/VERSION\"]
rollback = [\"sed -i 's/version=[0-9]*/version=1/' $SRV_PATH/index.html\", \"echo 1 > $SRV_PATH/VERSION\", \"rm -f $SRV_PATH/release-notes.txt\"]

[changes.v1]
label = \"service version 1\"
steps = [\"sed -i 's/version=[0-9]*/version=1/' $SRV_PATH/index.html\", \"echo 1 > $SRV_PATH/VERSION\"]
"
    _toml+=$x
    # the fleet's cheapest full cycle: nothing changes on the hosts
    [ $fleet = 1 ] && _toml+=$'\n[changes.noop]\nlabel = "no-op change"\nsteps = ["true"]\n'
    return 0
}

# pg_pair_toml PAIR VAR — sets VAR to the file of a PostgreSQL pair (pg.sh): the VIP, the role
# hooks (the lab's baton-pg, run as postgres through sudo), checks by role, and a change that
# needs a restart (pairs/postgres.toml in the repo is the commented example of the same)
pg_pair_toml() {
    local p=$1 prim=${P_PRIMARY[$1]} stby=${P_STANDBY[$1]} hook="sudo -n -u postgres $PG_HOOK"
    # (from /: psql as postgres warns on stderr when it cannot enter the login user's home,
    # and that line would hide the real reason when a check fails)
    local psql="cd / && sudo -n -u postgres psql -X -A -t -c"
    local -n _t=$2
    _t="# Written by scripts/lab up: ${P_DESC[$p]} (the repo's pairs/postgres.toml explains each part).
environment = \"${P_ENV[$p]}\"
version_command = \"$hook show max_connections shared_buffers\"
observe_period = \"2s\"

[hosts.$prim]
address = \"${H_ADDR[$prim]}\"

[hosts.$stby]
address = \"${H_ADDR[$stby]}\"

[traffic]
method = \"vip\"
address = \"${P_TARGET[$p]}\"
interface = \"eth0\"

[roles]
demote = \"$hook demote\"
position = \"$hook position\"
promote = \"$hook promote\"
follow = \"$hook follow {peer_address}\"
resume = \"$hook resume\"
timeout = \"60s\"
catch_up_timeout = \"30s\"
max_lag = 0
max_lag_on_failover = 1048576

[[checks]]
name = \"port\"
kind = \"tcp\"
role = \"any\"
port = $PG_PORT
timeout = \"2s\"

[[checks]]
name = \"writable\"
kind = \"command\"
role = \"primary\"
command = \"$psql '$PG_SQL_WRITABLE'\"
expect_output = \"t\"

[[checks]]
name = \"streaming\"
kind = \"command\"
role = \"standby\"
command = \"$psql '$PG_SQL_STREAMING'\"
expect_output = \"streaming\"

# Changes that need a restart. max_connections: a standby needs at least its primary's value;
# baton applies to the standby first, and the old primary's follow starts it with the new
# primary's value until its own change is applied (there is no way back down in this order:
# lowering it on the standby first makes that standby refuse to start). shared_buffers: no
# rule between the two, both ways work.
[changes.conn200]
label = \"max_connections 200\"
steps = [\"$hook set max_connections 200\", \"$hook restart\"]
rollback = [\"$hook unset max_connections\", \"$hook restart\"]

[changes.buffers64]
label = \"shared_buffers 64MB\"
steps = [\"$hook set shared_buffers 64MB\", \"$hook restart\"]
rollback = [\"$hook unset shared_buffers\", \"$hook restart\"]

[changes.buffers32]
label = \"shared_buffers back to the default (32MB)\"
steps = [\"$hook unset shared_buffers\", \"$hook restart\"]
"
}

# write_baton_config — config/: baton.toml and the base pairs' files
write_baton_config() {
    local c=$LAB/config p ssh txt
    ssh_section_text ssh
    put_text "$c/baton.toml" 0644 root:root "# Written by scripts/lab up: settings for all lab pairs.
state_dir = \"../state\"
environments = [\"dev\", \"test\", \"prod\"]

$ssh"
    for p in "${PAIRS[@]}"; do
        if [ "${P_METHOD[$p]}" = haproxy ]; then
            lb_pair_toml "$p" txt
            put_text "$c/pairs/$p.toml" 0644 root:root "$txt"
            continue
        fi
        case ${H_ROLE[${P_PRIMARY[$p]}]} in
            service) pair_toml "$p" txt ;;
            pg) pg_pair_toml "$p" txt ;;
            *) continue ;;
        esac
        put_text "$c/pairs/$p.toml" 0644 root:root "$txt"
    done
    [ -d "$c/pairs/files" ] || mkdir -p "$c/pairs/files"
    put_text "$c/pairs/files/release-notes.txt" 0644 root:root $'Version 2 of the lab service.\n'
}

# write_fleet_config — fleet/: baton's configuration for the fleet pairs (none when N = 0)
write_fleet_config() {
    local f=$LAB/fleet p name ssh txt
    if [ "$FLEET_N" = 0 ]; then
        if [ -e "$f" ]; then rm -rf "$f"; say "removed $f (no fleet pairs)"; fi
        return 0
    fi
    [ -d "$f/pairs/files" ] || install -d -m 0755 "$f" "$f/pairs" "$f/pairs/files"
    [ -d "$f/state" ] || install -d -m 0700 "$f/state"
    ssh_section_text ssh
    put_text "$f/baton.toml" 0644 root:root "# Written by scripts/lab up: settings for the $FLEET_N fleet pairs (scripts/lab up --pairs N).
state_dir = \"state\"
environments = [\"dev\", \"test\", \"prod\"]

$ssh"
    for p in "${FLEET_PAIRS[@]}"; do
        pair_toml "$p" txt
        put_text "$f/pairs/$p.toml" 0644 root:root "$txt"
    done
    for p in "$f"/pairs/*.toml; do                       # nothing else: baton reads them all
        name=${p##*/}; name=${name%.toml}
        if ! { [[ $name =~ ^fleet-[0-9]{3}$ ]] && [ $((10#${name#fleet-})) -ge 1 ] && [ $((10#${name#fleet-})) -le "$FLEET_N" ]; }; then
            rm -f "$p"; say "removed $p"
        fi
    done
    put_text "$f/pairs/files/release-notes.txt" 0644 root:root $'Version 2 of the lab service.\n'
}
