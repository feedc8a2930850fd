# shellcheck shell=bash
# scripts/lab.d/labdir.sh — sourced by scripts/lab. The lab dir: where it may live, its
# directories, its removal.

# check_lab_path — BATON_LAB_DIR is a path sshd's StrictModes accepts
check_lab_path() {
    case $LAB in /*) ;; *) die "BATON_LAB_DIR must be an absolute path (got $LAB)" ;; esac
    [ "$LAB" != / ] || die "BATON_LAB_DIR must not be /"
    # sshd StrictModes: every directory above the authorized_keys file must be root-owned
    # and not group/world-writable
    local d=$LAB
    while :; do
        d=$(dirname "$d")
        if [ -e "$d" ]; then
            local st; st=$(stat -L -c '%u %a' "$d")
            local uid=${st% *} mode=${st#* }
            [ "$uid" = 0 ] || die "$d is not owned by root (sshd StrictModes would refuse the lab's keys)"
            (( (8#$mode & 8#022) == 0 )) || die "$d is group/world-writable (sshd StrictModes would refuse the lab's keys); choose another BATON_LAB_DIR"
        fi
        [ "$d" = / ] && break
    done
}

# ensure_dirs — the lab dir and its directories, SRV_PATH, /run/sshd, /etc/baton-pg and
# /run/postgresql (noting which the lab created, so that down removes only those), the service,
# PostgreSQL and HAProxy hosts' dirs
ensure_dirs() {
    if [ -e "$LAB" ] && [ ! -e "$LAB/.baton-lab" ] && [ -n "$(ls -A "$LAB")" ]; then
        die "$LAB exists, is not empty and is not a baton lab (no .baton-lab marker)"
    fi
    install -d -m 0755 -o root -g root "$LAB"
    [ -e "$LAB/.baton-lab" ] || echo "baton lab dir, written by scripts/lab; removed by scripts/lab down" >"$LAB/.baton-lab"
    install -d -m 0755 -o root -g root "$LAB/hosts" "$LAB/ssh" "$LAB/keys" "$LAB/dns" "$LAB/dns2" \
        "$LAB/config" "$LAB/config/pairs" "$LAB/bin"
    install -d -m 0700 -o root -g root "$LAB/state" "$LAB/dns/db" "$LAB/dns2/db"
    # the service path each service host bind-mounts its own srv over
    if [ ! -d "$SRV_PATH" ]; then
        install -d -m 0755 "$SRV_PATH"; touch "$LAB/.created-srv-path"
    fi
    # sshd needs its privilege separation directory
    if [ ! -d /run/sshd ]; then
        install -d -m 0755 /run/sshd; touch "$LAB/.created-run-sshd"
    fi
    # the PostgreSQL hosts: the mount point of each one's hook configuration, and Debian's
    # socket directory, over which each one's sshd mounts its own (pg.sh)
    if [ ! -d "$PG_ETC" ]; then
        install -d -m 0755 "$PG_ETC"; touch "$LAB/.created-etc-baton-pg"
    fi
    if [ ! -d /run/postgresql ]; then
        install -d -m 2775 -o postgres -g postgres /run/postgresql; touch "$LAB/.created-run-postgresql"
    fi
    local h dirs=()
    for h in "${SERVICE_HOSTS[@]}"; do dirs+=("$LAB/hosts/$h" "$LAB/hosts/$h/nginx-tmp"); done
    for h in "${PG_HOSTS[@]}" "${LB_HOSTS[@]}" "${BASTION_HOSTS[@]}"; do dirs+=("$LAB/hosts/$h"); done
    install -d -m 0755 "${dirs[@]}"
}

# remove_lab_dir — the lab dir (only one with the lab's marker), and SRV_PATH, /run/sshd,
# /etc/baton-pg and /run/postgresql when the lab created them
remove_lab_dir() {
    [ -e "$LAB" ] || return 0
    if [ -e "$LAB/.baton-lab" ]; then
        [ -e "$LAB/.created-srv-path" ] && { rmdir "$SRV_PATH" 2>/dev/null || warn "$SRV_PATH not empty; left in place"; }
        if [ -e "$LAB/.created-run-sshd" ]; then rmdir /run/sshd 2>/dev/null || true; fi
        if [ -e "$LAB/.created-etc-baton-pg" ]; then rmdir "$PG_ETC" 2>/dev/null || warn "$PG_ETC not empty; left in place"; fi
        if [ -e "$LAB/.created-run-postgresql" ]; then rmdir /run/postgresql 2>/dev/null || true; fi
        rm -rf "$LAB"
        say "removed $LAB"
    elif [ -z "$(ls -A "$LAB")" ]; then
        rmdir "$LAB"
    else
        warn "$LAB is not a baton lab dir (no .baton-lab marker); left in place"
    fi
}
