# shellcheck shell=bash
# scripts/lab.d/ssh.sh — sourced by scripts/lab. SSH: the client keys, each host's host key
# and sshd_config (the service hosts and the PostgreSQL hosts run sshd), known_hosts.

# host_key HOST — its sshd host key, generated when missing (NEW_HOSTKEY[HOST]=1)
host_key() {
    local k=$LAB/hosts/$1/ssh_host_ed25519_key
    if [ ! -s "$k" ] || [ ! -s "$k.pub" ]; then
        rm -f "$k" "$k.pub"
        ssh-keygen -q -t ed25519 -N '' -C "baton-lab host $1" -f "$k"
        # shellcheck disable=SC2034  # run state (common.sh), read by start_service_host
        NEW_HOSTKEY[$1]=1
    fi
}

# ensure_ssh_keys — the client keys (one with ssh/passphrase), authorized_keys, the host keys
# of the base hosts that run sshd (service, PostgreSQL and HAProxy hosts)
ensure_ssh_keys() {
    local s=$LAB/ssh
    put_file "$s/passphrase" 0600 < <(printf '%s' "$PASSPHRASE")
    if [ ! -s "$s/id_ed25519" ] || [ ! -s "$s/id_ed25519.pub" ]; then
        rm -f "$s/id_ed25519" "$s/id_ed25519.pub"
        ssh-keygen -q -t ed25519 -N '' -C "baton-lab client" -f "$s/id_ed25519"
    fi
    if [ ! -s "$s/id_ed25519_pass" ] || [ ! -s "$s/id_ed25519_pass.pub" ]; then
        rm -f "$s/id_ed25519_pass" "$s/id_ed25519_pass.pub"
        ssh-keygen -q -t ed25519 -N "$PASSPHRASE" -C "baton-lab client (passphrase)" -f "$s/id_ed25519_pass"
    fi
    chmod 0600 "$s/id_ed25519" "$s/id_ed25519_pass"
    chmod 0644 "$s/id_ed25519.pub" "$s/id_ed25519_pass.pub"
    cat "$s/id_ed25519.pub" "$s/id_ed25519_pass.pub" | put_file "$s/authorized_keys" 0644

    local h keys=()
    for h in "${SERVICE_HOSTS[@]}" "${PG_HOSTS[@]}" "${LB_HOSTS[@]}" "${BASTION_HOSTS[@]}"; do
        host_key "$h"
        keys+=("$LAB/hosts/$h/ssh_host_ed25519_key")
    done
    chmod 0600 "${keys[@]}"
    # known_hosts: write_known_hosts, once the fleet's keys exist too
}

# write_known_hosts — ssh/known_hosts: the service hosts first (their line numbers never
# change: blue green amber violet), then the PostgreSQL hosts (pga pgb), then the fleet's, then
# the HAProxy pairs' hosts and their balancers (teal coral lb), then the dual-stack hosts
# (blue6 green6 amber6 violet6: each with a line for its IPv4 and one for its IPv6 address),
# then pair far's hosts and the bastion: each group appended after the lines that were there
# before it, so no earlier line moves
write_known_hosts() {
    local h kt kb rest txt='' first=() last=() dual=() far=()
    for h in "${SERVICE_HOSTS[@]}"; do
        if [ -n "${H_IP6[$h]-}" ]; then dual+=("$h")
        elif [ "${H_NET[$h]}" = "$FAR_NET" ]; then far+=("$h")
        elif [ "${P_METHOD[${H_PAIR[$h]}]-}" = haproxy ]; then last+=("$h"); else first+=("$h"); fi
    done
    for h in "${first[@]}" "${PG_HOSTS[@]}" "${FLEET_HOSTS[@]}" "${last[@]}" "${LB_HOSTS[@]}" "${dual[@]}" "${far[@]}" "${BASTION_HOSTS[@]}"; do
        read -r kt kb rest <"$LAB/hosts/$h/ssh_host_ed25519_key.pub"
        txt+="${H_ADDR[$h]} $kt $kb"$'\n'
        [ -z "${H_IP6[$h]-}" ] || txt+="${H_IP6[$h]} $kt $kb"$'\n'
    done
    put_text "$LAB/ssh/known_hosts" 0644 root:root "$txt"
}

# sshd_config_text HOST VAR — sets VAR to the host's sshd_config
sshd_config_text() {
    local _h=$1 _d=$LAB/hosts/$1 _listen="ListenAddress ${H_ADDR[$1]}" _family=inet
    # a dual-stack host also listens on its IPv6 address
    [ -z "${H_IP6[$1]-}" ] || { _listen+=$'\n'"ListenAddress ${H_IP6[$1]}"; _family=any; }
    printf -v "$2" '%s' "# Written by scripts/lab up: sshd of lab host $_h (namespace baton-$_h).
$_listen
Port 22
# A second port, so tests can check [host]:port known_hosts entries.
Port 2222
AddressFamily $_family
HostKey $_d/ssh_host_ed25519_key
PidFile $_d/sshd.pid
AuthorizedKeysFile $LAB/ssh/authorized_keys
AllowUsers $DEPLOY_USER
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
PubkeyAuthentication yes
StrictModes yes
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowAgentForwarding no
LoginGraceTime 30
MaxStartups 64:30:128
MaxSessions 32
LogLevel VERBOSE
Subsystem sftp internal-sftp
"
}
