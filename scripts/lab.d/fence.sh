# shellcheck shell=bash
# scripts/lab.d/fence.sh — sourced by scripts/lab. The lab's fence hook.

# write_fence_hook — bin/fence: the lab's fence hook, a power switch for a pair's `fence` key
# (`fence = "/var/lib/baton-lab/bin/fence {host}"`): it appends each call to
# fence.log, then "powers the host off" (its namespace's link goes down;
# `scripts/lab reset` brings it back and empties the log).
write_fence_hook() {
    # shellcheck disable=SC2016  # the hook's own text: its $ are for the hook's shell
    put_text "$LAB/bin/fence" 0755 root:root '#!/bin/sh
# Written by scripts/lab up: the lab'"'"'s fence hook. Usage: fence HOST [ADDRESS]
set -eu
lab=$(dirname "$(dirname "$(readlink -f "$0")")")
printf '"'"'%s %s\n'"'"' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$lab/fence.log"
case "${1-}" in ""|*[!a-z0-9-]*) echo "fence: not a lab host name: ${1-}" >&2; exit 2;; esac
[ -e "/run/netns/baton-$1" ] || { echo "fence: no lab host $1" >&2; exit 2; }
ip netns exec "baton-$1" ip link set eth0 down
echo "fence: $1 is powered off (its link is down)"
'
}

# reset_fence — no fence was called (the log is empty; reset brings the links back up)
reset_fence() { rm -f "$LAB/fence.log"; }
