# shellcheck shell=bash
# scripts/lab.d/web.sh — sourced by scripts/lab. The web servers: nginx's configuration, the TLS certificate it serves, the service files
# (each service host's srv, seen as SRV_PATH there).

nginx_conf_text() {
    local h=$1 d=$LAB/hosts/$1
    TXT="# Written by scripts/lab up: nginx of lab host $h (namespace baton-$h).
# Listens on *:80 so it also answers on the VIP while this host holds it.
user www-data;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/nginx-error.log warn;
events { worker_connections 512; }
http {
    access_log $d/nginx-access.log;
    client_body_temp_path $d/nginx-tmp/body;
    proxy_temp_path $d/nginx-tmp/proxy;
    fastcgi_temp_path $d/nginx-tmp/fastcgi;
    uwsgi_temp_path $d/nginx-tmp/uwsgi;
    scgi_temp_path $d/nginx-tmp/scgi;
    types { }
    default_type text/plain;
    server_tokens off;
    server {
        listen 80 default_server;
        listen 443 ssl default_server;
        ssl_certificate $LAB/keys/tls-server.crt;
        ssl_certificate_key $LAB/keys/tls-server.key;
        server_name _;
        root $SRV_PATH;
        index index.html;
        location = /health { }
        location / { }
    }
}
"
}

# the initial service files (also used by reset)
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
