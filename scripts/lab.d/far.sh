# shellcheck shell=bash
# scripts/lab.d/far.sh — sourced by scripts/lab. Pair far behind a jump host: its hosts fara
# and farb live in FAR_NET (198.18.200.0/24), where baton-ctl has no address and so no route;
# the bastion (198.18.0.60, namespace baton-bastion) has an address in both subnets and runs
# sshd alone, which forwards (direct-tcpip) to far's hosts. Each far host is a service host
# like blue and green (sshd, nginx, the same page and changes); the pair file reaches them
# with `jump`, and checks them with commands run over SSH on the hosts (the controller cannot
# send them an HTTP request).

# bastion_host_files HOST — the bastion's sshd_config (its host key: ensure_ssh_keys)
bastion_host_files() {
    local h=$1 d=$LAB/hosts/$1 txt
    [ -d "$d" ] || install -d -m 0755 "$d"
    sshd_config_text "$h" txt
    put_text "$d/sshd_config" 0644 root:root "$txt" "CFG_CHANGED[sshd/$h]"
}

# far_pair_extra VAR — appends to VAR what pair far's file has beyond a VIP pair's: the jump
# host under [ssh], and a check run on each host (curl to the host's own address, or to the VIP
# through the service address) in place of the controller's HTTP check
far_pair_extra() {
    local -n _t=$1
    _t+="
[ssh]
jump = \"$DEPLOY_USER@${H_ADDR[${BASTION_HOSTS[0]}]}:22\"
"
}

# far_check_text VAR — sets VAR to far's check
far_check_text() {
    printf -v "$1" '%s' '
[[checks]]
name = "page"
kind = "command"
command = "curl -fsS --max-time 2 http://{address}/"
expect_output = "host={host} "
timeout = "3s"
'
}
