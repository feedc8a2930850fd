# shellcheck shell=bash
# scripts/lab.d/ssh.sh — sourced by scripts/lab. SSH: the client keys, each service host's host key and sshd_config, known_hosts.

# host_key HOST — its sshd host key, generated when missing (NEW_HOSTKEY[HOST]=1)
host_key() {
    local k=$LAB/hosts/$1/ssh_host_ed25519_key
    if [ ! -s "$k" ] || [ ! -s "$k.pub" ]; then
        rm -f "$k" "$k.pub"
        ssh-keygen -q -t ed25519 -N '' -C "baton-lab host $1" -f "$k"
        NEW_HOSTKEY[$1]=1
    fi
}

ensure_keys() {
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
    for h in "${SERVICE_HOSTS[@]}"; do
        host_key "$h"
        keys+=("$LAB/hosts/$h/ssh_host_ed25519_key")
    done
    chmod 0600 "${keys[@]}"
    # known_hosts: write_known_hosts, once the fleet's keys exist too

    local kdir=$LAB/keys
    if [ ! -s "$kdir/update.key" ]; then
        (umask 077; tsig-keygen -a hmac-sha256 "$TSIG_NAME" >"$kdir/update.key.tmp")
        mv -f "$kdir/update.key.tmp" "$kdir/update.key"
    fi
    if [ ! -s "$kdir/wrong.key" ] || [ "$(tsig_secret "$kdir/wrong.key")" = "$(tsig_secret "$kdir/update.key")" ]; then
        (umask 077; tsig-keygen -a hmac-sha256 "$TSIG_NAME" >"$kdir/wrong.key.tmp")
        mv -f "$kdir/wrong.key.tmp" "$kdir/wrong.key"
    fi
    chmod 0600 "$kdir/update.key" "$kdir/wrong.key"

    # TLS for the https checks: a lab CA and one server certificate for the
    # service names, which every host serves on port 443.
    if [ ! -s "$kdir/tls-ca.crt" ] || [ ! -s "$kdir/tls-server.crt" ] || [ ! -s "$kdir/tls-server.key" ]; then
        (
            umask 077
            cd "$kdir"
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
                -subj "/CN=baton lab CA" -keyout tls-ca.key -out tls-ca.crt 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -subj "/CN=app.${ZONE%.}" -keyout tls-server.key -out tls-server.csr 2>/dev/null
            printf 'subjectAltName=DNS:app.%s,DNS:web.%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
                "${ZONE%.}" "${ZONE%.}" >tls-server.ext
            openssl x509 -req -in tls-server.csr -CA tls-ca.crt -CAkey tls-ca.key -CAcreateserial \
                -days 3650 -extfile tls-server.ext -out tls-server.crt 2>/dev/null
            rm -f tls-server.csr tls-server.ext tls-ca.srl
        )
    fi
    chmod 0644 "$kdir/tls-ca.crt" "$kdir/tls-server.crt"
    chmod 0600 "$kdir/tls-ca.key" "$kdir/tls-server.key"
}

# known_hosts: the base hosts first (their line numbers never change), then the fleet's
write_known_hosts() {
    local h kt kb rest txt=
    for h in "${SERVICE_HOSTS[@]}" "${FLEET_HOSTS[@]}"; do
        read -r kt kb rest <"$LAB/hosts/$h/ssh_host_ed25519_key.pub"
        txt+="${H_ADDR[$h]} $kt $kb"$'\n'
    done
    put_text "$LAB/ssh/known_hosts" 0644 root:root "$txt"
}

# sshd_config_text HOST, nginx_conf_text HOST — the daemons' configuration files, in TXT
sshd_config_text() {
    local h=$1 d=$LAB/hosts/$1
    TXT="# Written by scripts/lab up: sshd of lab host $h (namespace baton-$h).
ListenAddress ${H_ADDR[$h]}
Port 22
# A second port, so tests can check [host]:port known_hosts entries.
Port 2222
AddressFamily inet
HostKey $d/ssh_host_ed25519_key
PidFile $d/sshd.pid
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
