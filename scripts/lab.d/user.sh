# shellcheck shell=bash
# scripts/lab.d/user.sh — sourced by scripts/lab. The deploy user batonlab, its sudoers rules and
# its membership of group haproxy (all left in place by `down`).

# ensure_user — the deploy user (no password, not locked, home in the lab dir) and exactly the
# sudo rights baton needs on a lab host
ensure_user() {
    local ent
    if ! ent=$(getent passwd "$DEPLOY_USER"); then
        say "creating user $DEPLOY_USER"
        useradd --system --user-group --shell /bin/bash --home-dir "$LAB/home" --no-create-home \
            --comment "baton lab deploy user" "$DEPLOY_USER"
        ent=$(getent passwd "$DEPLOY_USER")
    fi
    local home shell
    home=$(cut -d: -f6 <<<"$ent"); shell=$(cut -d: -f7 <<<"$ent")
    [ "$home" = "$LAB/home" ] || usermod -d "$LAB/home" "$DEPLOY_USER"
    [ "$shell" = /bin/bash ] || usermod -s /bin/bash "$DEPLOY_USER"
    # sshd with UsePAM no refuses a locked account ('!' in shadow): '*' = no password, not locked
    local pw; pw=$(getent shadow "$DEPLOY_USER" | cut -d: -f2)
    [ "$pw" = '*' ] || usermod -p '*' "$DEPLOY_USER"
    install -d -m 0700 -o "$DEPLOY_USER" -g "$DEPLOY_USER" "$LAB/home"
    # the HAProxy pairs' admin sockets are mode 660, group haproxy (lb.sh): the deploy user is a
    # member, as an admin would make it on a Debian host (sshd gives each login its groups)
    if [[ " $(id -nG "$DEPLOY_USER") " != *" $LB_GROUP "* ]]; then
        getent group "$LB_GROUP" >/dev/null || die "no group $LB_GROUP (Debian's haproxy creates it)"
        usermod -a -G "$LB_GROUP" "$DEPLOY_USER"
        say "added $DEPLOY_USER to group $LB_GROUP"
    fi

    local ip_bin arping_bin install_bin nft_bin psql_bin python_bin ss_bin tmp
    ip_bin=$(command -v ip); arping_bin=$(command -v arping); install_bin=$(command -v install)
    nft_bin=$(command -v nft); psql_bin=$(command -v psql); python_bin=$(command -v python3)
    ss_bin=$(command -v ss)
    tmp=$(mktemp)
    cat >"$tmp" <<EOF
# Written by baton's scripts/lab: exactly what baton needs on a lab host, nothing more.
# Left in place by 'scripts/lab down' (harmless without the lab).
# The install rule is for privileged uploads into the root-owned $SRV_PATH/etc; ip -o -batch -
# lets baton start ip before a VIP switch so the switch does not wait for sudo; nft -f -
# lets it hold new connections off the old holder for a moment (\`quiesce\`); python3 -c sends
# IPv6 neighbour advertisements and solicitations (the IPv6 VIP pair web6) from a raw socket;
# ss -K ends the old holder's connections to a VIP at the end of an overlap handover.
# (ip -o -batch - and python3 -c are each as good as root: the lab's deploy user is trusted.)
$DEPLOY_USER ALL=(root) NOPASSWD: $ip_bin -o -batch -, $ip_bin addr add *, $ip_bin addr del *, $ip_bin -o addr show *, $arping_bin *, $install_bin -m 0644 /tmp/.baton-upload.* $SRV_PATH/etc/*, $nft_bin -f -, $python_bin -c *, $ss_bin -K -t -n src *
# The PostgreSQL hosts: the role hook (any action) as postgres, and exactly the queries of the
# pg pair's checks.
$DEPLOY_USER ALL=(postgres) NOPASSWD: $PG_HOOK, $psql_bin -X -A -t -c $PG_SQL_WRITABLE, $psql_bin -X -A -t -c $PG_SQL_STREAMING
EOF
    if ! cmp -s "$tmp" "$SUDOERS_FILE" 2>/dev/null || [ "$(stat -c %a "$SUDOERS_FILE")" != 440 ]; then
        visudo -cqf "$tmp" >/dev/null || { rm -f "$tmp"; die "generated sudoers rule does not validate"; }
        put_file "$SUDOERS_FILE" 0440 <"$tmp"
        say "wrote $SUDOERS_FILE"
    fi
    rm -f "$tmp"
}
