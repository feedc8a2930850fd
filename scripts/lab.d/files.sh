# shellcheck shell=bash
# scripts/lab.d/files.sh — sourced by scripts/lab. Generated files: write a file only when its
# content, mode or owner differ, so that `up` on a lab that is up changes nothing and is quick.

# load_stat_cache — STAT_OF (common.sh) for the generated files, with one `find`
load_stat_cache() {
    STAT_OF=()
    local m o p dirs=()
    for p in "$LAB/hosts" "$LAB/config" "$LAB/config-etcd" "$LAB/fleet" "$LAB/ssh" /etc/netns; do [ -d "$p" ] && dirs+=("$p"); done
    [ ${#dirs[@]} -gt 0 ] || return 0
    while read -r m o p; do
        STAT_OF["$p"]="$m $o"
    done < <(find "${dirs[@]}" -maxdepth 2 -type f \( -name sshd_config -o -name nginx.conf -o -name haproxy.cfg \
        -o -name ssh_host_ed25519_key -o -name hosts -o -name resolv.conf -o -name '*.toml' \
        -o -path "$LAB/ssh/*" \) -printf '%m %u:%g %p\n' 2>/dev/null)
}

# file_current PATH MODE OWNER CONTENT — the file exists with exactly this content, mode, owner
file_current() {
    local path=$1 mode=$2 owner=$3 existing='' st
    [ -f "$path" ] || return 1
    IFS= read -r -d '' existing <"$path" || true                 # builtins only: up stays quick
    [ "$4" = "$existing" ] || return 1
    st=${STAT_OF[$path]-}
    [ -n "$st" ] || st=$(stat -c '%a %U:%G' "$path")
    [ "$st" = "${mode#0} $owner" ]
}

# put_text PATH MODE OWNER CONTENT [CHANGEDVAR] — write atomically only when content, mode or
# owner differ. With CHANGEDVAR: sets that variable to 1 when it wrote, to 0 otherwise.
put_text() {
    local path=$1 mode=$2 owner=$3 tmp=$1.lab-new.$BASHPID
    if file_current "$1" "$2" "$3" "$4"; then [ -z "${5-}" ] || printf -v "$5" 0; return 0; fi
    [ ! -e "$tmp" ] || rm -f "$tmp"
    printf '%s' "$4" >"$tmp"                     # root, umask 022: a new file is 0644 root:root
    if [ "${mode#0}" != 644 ] || [ "$owner" != root:root ]; then chmod "$mode" "$tmp"; chown "$owner" "$tmp"; fi
    mv -f "$tmp" "$path"
    [ -z "${5-}" ] || printf -v "$5" 1
    STAT_OF["$path"]="${mode#0} $owner"
}

# put_file PATH MODE [OWNER:GROUP [CHANGEDVAR]] < content — put_text with the content on stdin
put_file() {
    local content=
    IFS= read -r -d '' content || true
    put_text "$1" "$2" "${3:-root:root}" "$content" "${4-}"
}
