#!/usr/bin/env python3
"""The VIP handover benchmark (issue 19): baton's classic order, baton's
overlap order and keepalived's priority swap, side by side in one run,
each measured by three clients at once from the lab's client namespace:

  a  new-conn   a new TCP connection per request, 200 requests/s (the probe
                of gap.py), 3 s timeout
  b  one-at-a-time  one request at a time, a new connection each, the next
                sent when the last ended (at most 200/s), 3 s timeout
  c  pool8      8 persistent HTTP/1.1 keep-alive connections, each sending
                its requests back to back (at most 100/s per connection); a
                request that fails is retried once on a new connection, and
                its wait counts from the first attempt

Variants, interleaved round by round (the order rotates each round):

  classic     `baton switchover web` (the lab's web pair, VIP 198.18.0.100)
              with `handover = "classic"` (remove, then add), from a copy of
              the lab's configuration with the same state directory
  overlap     the same with `handover = "overlap"` (baton's default)
  classic6, overlap6
              the same on the lab's web6 pair: an IPv6 VIP
              (fd00:198:18::160, added `nodad`) on hosts baton reaches over
              IPv4, whose hand-back goes to the old host's own IPv6 address
              (not in the default list: --variants)
  keepalived  the lab's keepalived hosts kpa/kpb (VIP 198.18.0.180): both
              configurations rewritten with the priorities swapped, SIGHUP to
              both (lab.d/keepalived.sh's kp_move); the move is over when
              the new master holds the VIP and the old one no longer does

Every client runs from 1 s before the switch starts to 1 s after it ended.
Per switch and client: requests, failed (a request without an answer; for
the pool, one whose retry failed too), delayed (answered after more than
100 ms), the longest wait, and for the pool the attempts that failed (each
retried) and among them the connection resets. One JSON object per switch
and client goes to --out.

Usage: handover.py --rounds N [--variants classic,overlap,keepalived,classic6,overlap6]
                   --out FILE.jsonl [--report]
Takes the lab tests' lock (/run/baton-lab-tests.lock) for at most
--chunk rounds at a time (default 8, about 3 minutes), releasing it between
chunks so that others can run theirs. --report prints the Markdown table of
an existing --out file.
"""
import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROFILE = os.environ.get("BATON_BENCH_PROFILE", "release")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
PROBE = os.path.join(TARGET, PROFILE, "examples", "probe")
BATON = os.path.join(TARGET, PROFILE, "baton")
LAB = os.environ.get("BATON_LAB_DIR", "/var/lib/baton-lab")
LOCK = "/run/baton-lab-tests.lock"
CLIENTS = ["a", "b", "c"]
CLIENT_NAMES = {"a": "new connection per request, 200/s",
                "b": "one request at a time",
                "c": "keep-alive pool of 8"}
VARIANTS = ["classic", "overlap", "keepalived"]
# baton's variants: the pair, its VIP (the clients' target) and the order.
BATON_VARIANTS = {
    "classic": ("web", "198.18.0.100", "classic"),
    "overlap": ("web", "198.18.0.100", "overlap"),
    "classic6": ("web6", "[fd00:198:18::160]", "classic"),
    "overlap6": ("web6", "[fd00:198:18::160]", "overlap"),
}
ALL_VARIANTS = ["classic", "overlap", "keepalived", "classic6", "overlap6"]
KP_VIP = "198.18.0.180"
KP_ADDR = {"kpa": "198.18.0.81", "kpb": "198.18.0.82"}
LEAD = 1.0
TAIL = 1.0


def variant_config(name):
    """A copy of the lab's configuration (same state directory: all agree on
    who holds the VIP) whose pair of variant `name` moves its VIP in that
    variant's order; its baton.toml."""
    pair, _, order = BATON_VARIANTS[name]
    d = os.path.join(LAB, f"bench-{name}")
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(os.path.join(LAB, "config"), d)
    cfg = os.path.join(d, "baton.toml")
    text = open(cfg).read()
    lines = [f'state_dir = "{LAB}/state"' if line.startswith("state_dir = ") else line
             for line in text.splitlines()]
    open(cfg, "w").write("\n".join(lines) + "\n")
    path = os.path.join(d, "pairs", f"{pair}.toml")
    text = open(path).read()
    if '\ninterface = "eth0"\n' not in text:
        sys.exit(f"handover.py: {pair}.toml has no `interface = \"eth0\"` line to add the handover after")
    keys = f'handover = "{order}"\n' + ('overlap = "1s"\n' if order == "overlap" else "")
    text = text.replace('\ninterface = "eth0"\n', '\ninterface = "eth0"\n' + keys, 1)
    open(path, "w").write(text)
    return cfg


def clients_start(target, seconds):
    procs = {}
    for c in CLIENTS:
        mode = {"a": [], "b": ["--seq"], "c": ["--pool", "8"]}[c]
        rate = {"a": "200", "b": "200", "c": "100"}[c]
        procs[c] = subprocess.Popen(
            ["ip", "netns", "exec", "baton-client", PROBE] + mode + [f"{target}:80", rate, f"{seconds:.2f}"],
            stdout=subprocess.PIPE, text=True)
    return procs


def clients_end(procs):
    out = {}
    for c, p in procs.items():
        text, _ = p.communicate()
        lines = []
        for line in text.splitlines():
            parts = line.split(" ", 3)
            if len(parts) == 4:
                lines.append((int(parts[0]) / 1e6, int(parts[1]) / 1e6, parts[2], parts[3]))
        out[c] = sorted(lines)
    return out


def analyse(client, lines, t0, t1):
    """The lines of one client over one switch."""
    if client == "c":
        # Attempts: a FAIL line is an attempt that failed; the retry's line
        # (success or FAIL) has the same send time.
        by_send = {}
        for sent, lat, host, detail in lines:
            by_send.setdefault(sent, []).append((lat, host, detail))
        requests = len(by_send)
        failed = sum(1 for v in by_send.values() if all(h == "FAIL" for _, h, _ in v))
        attempts_failed = sum(1 for _, _, h, _ in lines if h == "FAIL")
        resets = sum(1 for _, _, h, d in lines if h == "FAIL" and "reset" in d)
        waits = [max(lat for lat, _, _ in v) for v in by_send.values()]
        delayed = sum(1 for v in by_send.values()
                      if any(h != "FAIL" for _, h, _ in v) and max(lat for lat, _, _ in v) > 0.1)
        details = sorted({d for _, _, h, d in lines if h == "FAIL"})[:4]
    else:
        requests = len(lines)
        failed = sum(1 for _, _, h, _ in lines if h == "FAIL")
        attempts_failed = failed
        resets = sum(1 for _, _, h, d in lines if h == "FAIL" and "reset" in d)
        waits = [lat for _, lat, _, _ in lines]
        delayed = sum(1 for _, lat, h, _ in lines if h != "FAIL" and lat > 0.1)
        details = sorted({d for _, _, h, d in lines if h == "FAIL"})[:4]
    hosts = []
    for _, _, h, _ in lines:
        if h != "FAIL" and h not in hosts:
            hosts.append(h)
    return {
        "requests": requests,
        "failed": failed,
        "delayed_over_100ms": delayed,
        "longest_wait_ms": round(max(waits, default=0) * 1000, 1),
        "attempts_failed": attempts_failed,
        "resets": resets,
        "failures": details,
        "hosts_seen": hosts,
    }


def baton_switch(cfg, pair):
    """`baton switchover PAIR` in the controller's namespace: its exit, wall
    time and the switch step's duration and detail."""
    t0 = time.time()
    p = subprocess.run(["ip", "netns", "exec", "baton-ctl", BATON, "--config", cfg, "--json",
                        "switchover", pair, "--reason", "handover benchmark"],
                       capture_output=True, text=True)
    t1 = time.time()
    step_ms, detail = None, None
    for line in p.stdout.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("step") == "switch" and e.get("state") in ("ok", "failed"):
            step_ms = e.get("duration_ms")
            detail = e.get("detail") or e.get("message")
    return {"exit": p.returncode, "wall_s": round(t1 - t0, 2), "switch_step_ms": step_ms,
            "detail": detail, "stderr": p.stderr.strip()[-300:] if p.returncode else ""}


def kp_holders():
    on = []
    for h in ("kpa", "kpb"):
        out = subprocess.run(["ip", "-n", f"baton-{h}", "-o", "-4", "addr", "show", "dev", "eth0"],
                             capture_output=True, text=True).stdout
        if f" inet {KP_VIP}/" in out:
            on.append(h)
    return on


def kp_conf(host, holder):
    peer = "kpb" if host == "kpa" else "kpa"
    prio = 150 if host == holder else 100
    return f"""# Written by scripts/bench.d/handover.py (as scripts/lab's kp_conf_text): keepalived of lab host {host}.
global_defs {{
    router_id {host}
    enable_script_security
    script_user root
}}
vrrp_instance lab {{
    state BACKUP
    interface eth0
    virtual_router_id 180
    priority {prio}
    advert_int 1
    unicast_src_ip {KP_ADDR[host]}
    unicast_peer {{
        {KP_ADDR[peer]}
    }}
    virtual_ipaddress {{
        {KP_VIP}/24 dev eth0
    }}
}}
"""


def kp_switch():
    """keepalived's priority swap: the move's times from the SIGHUP."""
    on = kp_holders()
    if len(on) != 1:
        return {"exit": 1, "detail": f"the VIP is on {on} before the move"}
    old = on[0]
    new = "kpb" if old == "kpa" else "kpa"
    for h in ("kpa", "kpb"):
        with open(os.path.join(LAB, "hosts", h, "keepalived.conf"), "w") as f:
            f.write(kp_conf(h, new))
    t0 = time.time()
    for h in ("kpa", "kpb"):
        pid = int(open(os.path.join(LAB, "hosts", h, "keepalived.pid")).read().strip())
        os.kill(pid, signal.SIGHUP)
    added = dropped = None
    both = False
    while time.time() - t0 < 15:
        on = kp_holders()
        now = time.time()
        if new in on and added is None:
            added = now
        if len(on) == 2:
            both = True
        if old not in on and added is not None:
            dropped = now
            break
        time.sleep(0.005)
    ok = added is not None and dropped is not None
    return {"exit": 0 if ok else 1, "wall_s": round(time.time() - t0, 2),
            "new_holds_after_ms": None if added is None else round((added - t0) * 1000),
            "old_drops_after_ms": None if dropped is None else round((dropped - t0) * 1000),
            "both_seen": both, "detail": f"{old} -> {new}"}


def one(variant, round_no, configs):
    target = KP_VIP if variant == "keepalived" else BATON_VARIANTS[variant][1]
    seconds = 6.0 if variant == "keepalived" else 7.0
    procs = clients_start(target, seconds)
    time.sleep(LEAD)
    t0 = time.time()
    if variant == "keepalived":
        sw = kp_switch()
    else:
        sw = baton_switch(configs[variant], BATON_VARIANTS[variant][0])
    t1 = time.time()
    lines = clients_end(procs)
    recs = []
    for c in CLIENTS:
        r = {"round": round_no, "variant": variant, "client": c, "switch": sw}
        r.update(analyse(c, lines[c], t0, t1))
        recs.append(r)
    return recs


def run(args):
    for exe in (PROBE, BATON):
        if not os.access(exe, os.X_OK):
            sys.exit(f"handover.py: {exe} is missing: cargo build --release --bin baton --example probe")
    variants = args.variants.split(",")
    for v in variants:
        if v != "keepalived" and v not in BATON_VARIANTS:
            sys.exit(f"handover.py: unknown variant {v!r}: use keepalived or {', '.join(BATON_VARIANTS)}")
    configs = {v: variant_config(v) for v in variants if v in BATON_VARIANTS}
    done = 0
    out = open(args.out, "a")
    while done < args.rounds:
        chunk = min(args.chunk, args.rounds - done)
        with open(LOCK, "a") as lk:
            # (scripts/bench's caller may hold it already and say so)
            held = os.environ.get("BATON_LAB_LOCK_HELD") == "1"
            if not held:
                print(f"handover: waiting for {LOCK}", file=sys.stderr, flush=True)
                fcntl.flock(lk, fcntl.LOCK_EX)
            print(f"handover: rounds {done + 1}..{done + chunk} of {args.rounds}", file=sys.stderr, flush=True)
            # The lab as this checkout defines it (another checkout's `up`
            # or `reset` may have rewritten the deploy user's sudoers, or
            # stopped what it does not know): idempotent, about a second.
            subprocess.run([os.path.join(ROOT, "scripts", "lab"), "up", "--pairs",
                            open(os.path.join(LAB, "fleet-pairs")).read().strip() or "0"],
                           stdout=subprocess.DEVNULL, check=True)
            for i in range(done, done + chunk):
                order = variants[i % len(variants):] + variants[:i % len(variants)]
                for v in order:
                    for r in one(v, i + 1, configs):
                        out.write(json.dumps(r) + "\n")
                        out.flush()
                        print(f"  {v:10} {r['client']} failed={r['failed']} delayed={r['delayed_over_100ms']} "
                              f"longest={r['longest_wait_ms']}ms resets={r['resets']} "
                              f"switch={r['switch'].get('switch_step_ms') or r['switch'].get('old_drops_after_ms')}",
                              file=sys.stderr, flush=True)
                    time.sleep(0.5)
            if not held:
                fcntl.flock(lk, fcntl.LOCK_UN)
        done += chunk
        if done < args.rounds:
            time.sleep(args.pause)


def report(path):
    print("\n".join(report_lines(path)))


def report_lines(path):
    """The Markdown tables of a --out file."""
    out = []
    print = out.append  # noqa: A001  (the tables, line by line)
    recs = [json.loads(line) for line in open(path) if line.strip()]
    print("| variant | client | switches | requests | failed | delayed > 100 ms | switches with a delay | longest wait | failed attempts (retried) | resets |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for v in ALL_VARIANTS:
        for c in CLIENTS:
            rs = [r for r in recs if r["variant"] == v and r["client"] == c]
            if not rs:
                continue
            bad = [r for r in rs if r["switch"].get("exit") != 0]
            print(f"| {v}{' (' + str(len(bad)) + ' moves failed)' if bad else ''} | {c}: {CLIENT_NAMES[c]} | {len(rs)} | "
                  f"{sum(r['requests'] for r in rs)} | {sum(r['failed'] for r in rs)} | "
                  f"{sum(r['delayed_over_100ms'] for r in rs)} | "
                  f"{sum(1 for r in rs if r['delayed_over_100ms'] or r['failed'])} | "
                  f"{max(r['longest_wait_ms'] for r in rs):.0f} ms | "
                  f"{sum(r['attempts_failed'] for r in rs) if c == 'c' else '–'} | "
                  f"{sum(r['resets'] for r in rs)} |")
    print("")
    print("| variant | moves | the move (median, max) |")
    print("| --- | ---: | --- |")
    for v in ALL_VARIANTS:
        rs = [r["switch"] for r in recs if r["variant"] == v and r["client"] == "a"]
        if not rs:
            continue
        if v == "keepalived":
            adds = sorted(s["new_holds_after_ms"] for s in rs if s.get("new_holds_after_ms") is not None)
            drops = sorted(s["old_drops_after_ms"] for s in rs if s.get("old_drops_after_ms") is not None)
            both = sum(1 for s in rs if s.get("both_seen"))
            if adds and drops:
                print(f"| keepalived | {len(rs)} | from the SIGHUP: the new master holds the VIP after {adds[len(adds) // 2]} ms "
                      f"(max {adds[-1]}), the old one drops it after {drops[len(drops) // 2]} ms (max {drops[-1]}); "
                      f"both seen holding it in {both} moves |")
        else:
            steps = sorted(s["switch_step_ms"] for s in rs if s.get("switch_step_ms") is not None)
            walls = sorted(s["wall_s"] for s in rs)
            # the detail's "moved to X in N ms" (classic: the del and the
            # add) or "taken by X in N ms" (overlap: the add)
            moves = sorted(int(m.group(1)) for m in
                           (re.search(r"(?:moved to|taken by) \S+ in (\d+) ms", s.get("detail") or "") for s in rs) if m)
            fell_back = sum(1 for s in rs if "handover classic, not overlap" in (s.get("detail") or ""))
            what = "the del and the add" if v.startswith("classic") else "the new host's add"
            if steps:
                print(f"| {v} | {len(rs)} | {what} {moves[len(moves) // 2] if moves else '?'} ms (max {moves[-1] if moves else '?'}); "
                      f"switch step {steps[len(steps) // 2]} ms (max {steps[-1]}); "
                      f"whole `baton switchover` {walls[len(walls) // 2]} s"
                      f"{'; fell back to classic in ' + str(fell_back) if fell_back else ''} |")
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--chunk", type=int, default=8)
    p.add_argument("--pause", type=float, default=20.0)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--out", required=True)
    p.add_argument("--report", action="store_true")
    args = p.parse_args()
    if args.report:
        report(args.out)
        return 0
    run(args)
    report(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
