# shellcheck shell=bash
# scripts/lab.d/web.sh — sourced by scripts/lab. The web servers: nginx's configuration, the
# TLS certificate it serves, the service files (each service host's srv, seen as SRV_PATH there).

# ensure_tls — keys/tls-*: the lab CA and the server certificate every nginx serves
ensure_tls() {
    local kdir=$LAB/keys
    # TLS for the https checks: a lab CA and one server certificate for the
    # service names, which every host serves on port 443.
    if [ ! -s "$kdir/tls-ca.crt" ] || [ ! -s "$kdir/tls-server.crt" ] || [ ! -s "$kdir/tls-server.key" ]; then
        (
            umask 077
            cd "$kdir" || exit 1
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

# nginx_conf_text HOST VAR — sets VAR to the host's nginx.conf (a host of an HAProxy pair also
# gets the fault of the change v2-bad: nginx_fault_text)
nginx_conf_text() {
    local _h=$1 _d=$LAB/hosts/$1 _draw='' _loc='        location / { }' _v6=''
    if [ "${P_METHOD[${H_PAIR[$_h]}]-}" = haproxy ]; then nginx_fault_text "$_h" _draw _loc; fi
    # a dual-stack host also listens on IPv6 (its own address and an IPv6 VIP)
    [ -z "${H_IP6[$_h]-}" ] || _v6=$'        listen [::]:80 default_server;\n        listen [::]:443 ssl default_server;\n'

    printf -v "$2" '%s' "# Written by scripts/lab up: nginx of lab host $_h (namespace baton-$_h).
# Listens on *:80 so it also answers on the VIP while this host holds it.
user www-data;
worker_processes 1;
pid $_d/nginx.pid;
error_log $_d/nginx-error.log warn;
events { worker_connections 512; }
http {
    access_log $_d/nginx-access.log;
    client_body_temp_path $_d/nginx-tmp/body;
    proxy_temp_path $_d/nginx-tmp/proxy;
    fastcgi_temp_path $_d/nginx-tmp/fastcgi;
    uwsgi_temp_path $_d/nginx-tmp/uwsgi;
    scgi_temp_path $_d/nginx-tmp/scgi;
    types { }
    default_type text/plain;
    server_tokens off;
$_draw    server {
        listen 80 default_server;
        listen 443 ssl default_server;
$_v6        ssl_certificate $LAB/keys/tls-server.crt;
        ssl_certificate_key $LAB/keys/tls-server.key;
        server_name _;
        root $SRV_PATH;
        index index.html;
        location = /health { }
$_loc
    }
}
"
}

# nginx_fault_text HOST DRAWVAR LOCVAR — (of nginx_conf_text, for the hosts of an HAProxy pair)
# sets DRAWVAR to the http-level part and LOCVAR to the locations of the fault that the change
# v2-bad turns on by creating FAULT_FILE in the host's srv: while it exists, about 20 % of the
# ordinary requests (every path but /health and /index.html; the users' "/") get a 500, drawn
# from each request's random $request_id. /health and /index.html (what the pair's checks ask
# for) never fail, so only a comparison of the two hosts' answers shows it. No reload, no sudo:
# nginx looks for the file on every request.
nginx_fault_text() {
    printf -v "$2" '%s' "    # the change v2-bad's fault (see location /): one request in five, at random
    split_clients \"\$request_id\" \$lab_fault_draw {
        20%     1;
        *       \"\";
    }
"
    printf -v "$3" '%s' "        location = /index.html { }
        location / {
            set \$lab_fault \"\";
            if (-f $FAULT_FILE) { set \$lab_fault \$lab_fault_draw; }
            if (\$lab_fault) { return 500 \"500 fault on host=$1\\n\"; }
        }"
}

# write_srv_files HOST — the initial service files (also used by reset)
write_srv_files() {
    local h=$1 srv=$LAB/hosts/$1/srv
    printf '1\n' >"$srv/VERSION"
    printf 'host=%s version=1\n' "$h" >"$srv/index.html"
    printf 'ok %s\n' "$h" >"$srv/health"
    # a root-owned directory: uploads there need sudo (tests of privileged uploads)
    install -d -m 0755 -o root -g root "$srv/etc"
    chown "$DEPLOY_USER:$DEPLOY_USER" "$srv/VERSION" "$srv/index.html" "$srv/health"
    chmod 0644 "$srv/VERSION" "$srv/index.html" "$srv/health"
}

# srv_is_initial HOST — (builtins only) srv holds exactly the initial files with their initial
# content and an empty etc/ (owners and modes are not looked at: only baton's changes touch a
# fleet host's srv, and they keep them)
srv_is_initial() {
    local h=$1 srv=$LAB/hosts/$1/srv x='' entries
    entries=("$srv"/* "$srv"/.[!.]* "$srv"/..?*)
    [ "${entries[*]}" = "$srv/VERSION $srv/etc $srv/health $srv/index.html" ] || return 1
    [ -d "$srv/etc" ] && [ ! -L "$srv/etc" ] || return 1
    entries=("$srv"/etc/* "$srv"/etc/.[!.]* "$srv"/etc/..?*)
    [ ${#entries[@]} = 0 ] || return 1
    IFS= read -r -d '' x <"$srv/VERSION" || true; [ "$x" = $'1\n' ] || return 1
    IFS= read -r -d '' x <"$srv/index.html" || true; [ "$x" = "host=$h version=1"$'\n' ] || return 1
    IFS= read -r -d '' x <"$srv/health" || true; [ "$x" = "ok $h"$'\n' ]
}

# ensure_srv HOST... — each host's srv exists (with the initial files when new), owned by the
# deploy user
ensure_srv() {
    local h srv dirs=()
    for h in "$@"; do
        srv=$LAB/hosts/$h/srv
        if [ ! -d "$srv" ]; then
            install -d -m 0755 -o "$DEPLOY_USER" -g "$DEPLOY_USER" "$srv"
            write_srv_files "$h"
        else
            dirs+=("$srv")
        fi
    done
    [ ${#dirs[@]} = 0 ] || chown "$DEPLOY_USER:$DEPLOY_USER" "${dirs[@]}"
}

# reset_srv HOST — the host's srv holds the initial files and nothing else (the dir itself
# stays: it is mounted)
reset_srv() {
    find "$LAB/hosts/$1/srv" -mindepth 1 -delete
    write_srv_files "$1"
}
