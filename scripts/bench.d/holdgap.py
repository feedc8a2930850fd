#!/usr/bin/env python3
"""The way back from a change, as a client sees it (issue 16): `baton revert` of a held run beside
a full rollback cycle (`baton rollback`), on the lab's VIP pair web (blue 198.18.0.11, green
198.18.0.12, VIP 198.18.0.100; the page says `host=NAME version=N`).

Each run starts from `scripts/lab reset` (blue primary, both hosts on version 1), then, outside
the measurement:

  revert    `baton apply web --change v2 --hold 1h`: green serves version 2, blue is held on
            version 1 (exit 0, HELD); measured: `baton revert web`
  rollback  `baton apply web --change v2` (a whole cycle: green serves version 2, blue is updated
            to it too); measured: `baton rollback --change v2 web`

and the same two with `v2-slow` (v2 with `sleep 3` at the end of its steps and of its rollback,
standing in for a change that takes time: a package, a restart; added to a copy of the lab's
configuration in /var/lib/baton-lab/bench-hold, which shares its state dir, removed at the end).

The measured command runs in the controller's namespace under two clients in the client's, both
aimed at the VIP and started 1 s before it: the probe of gap.py (examples/probe.rs: GET /, 200
requests per second, a new TCP connection each, 3 s timeout; it reports the host that answered)
and a light poller (this file, --poll: GET /index.html, 100 requests per second, a new
connection each, 3 s timeout; it reports the host and the version). *All on the old version*:
the first answer, by send time, after which every answer of both clients came from blue, and
every poller answer said version=1 (failures are not answers: they are counted apart). From it:
the time from the command's start, and from the start of the switch step that moved the VIP;
and the same by the time the answers arrived (the later of the two clients' first answers, by
arrival, after which every answer that arrived was from blue on version 1).

Per run (one JSON line in --out, after a first line with when, what and how): gap.py's analysis
of the probe (requests, failed, delayed over 100 ms, max latency, gap, the longest stretch
without a prompt answer), the command's exit, outcome and wall time, the times to all on blue
(probe), to all on version 1 (poller) and to all on the old version (both), the poller's answers
by host and version in all, before the command and after its exit, each step's duration and end from
baton's --json events, the operations of the run (`baton log --run ID --json`) summed per step,
and the pair's status afterwards (`baton status web --json`: the hold, each host's version).
SVG timelines of the first run of each (gap.py's; the zoomed panel is around the moment all
traffic was on the old version): hold-revert.svg, hold-rollback.svg, hold-revert-slow.svg,
hold-rollback-slow.svg in --svg-dir.

Usage: holdgap.py --out FILE.jsonl --svg-dir DIR [--runs N] [--slow-runs N] [--slow 3]
                  [--rate 200] [--poll-rate 100] [--seconds 10]
       holdgap.py --poll HOST:PORT RATE SECONDS     (the poller; in the client's namespace)
Brings the lab up when needed, starts each run from `scripts/lab reset` with an empty state dir,
and ends the same way. Hold /run/baton-lab-tests.lock around it (scripts/bench does, with
flock -o). Root only.
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in scripts/bench.d
import gap  # noqa: E402  (the probe's analysis and timelines)
import lbgap  # noqa: E402  (the lab, baton and probe runners)

CONFIG = lbgap.CONFIG
# A copy of the lab's configuration (the same state dir, ../state) whose pair web also has the
# change v2-slow: v2 with a wait at the end of its steps and of its rollback, standing in for a
# change that takes time to apply (a package, a restart, a cache to warm)
SLOW_CONFIG_DIR = f"{lbgap.LAB}/bench-hold"
VIP = "198.18.0.100:80"
OLD, NEW = "blue", "green"
LEAD = 1.0


def say(text):
    print(f"bench: hold: {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# The poller: host and version, by a new connection per request

def poll_one(addr, timeout):
    try:
        with socket.create_connection(addr, timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET /index.html HTTP/1.0\r\nHost: poller\r\nConnection: close\r\n\r\n")
            buf = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
    except OSError as e:
        return "FAIL", type(e).__name__
    text = buf.decode("utf-8", "replace")
    if not re.match(r"HTTP/1\.[01] 200", text):
        return "FAIL", "status:" + text.split("\r\n", 1)[0].replace(" ", "_")
    host = re.search(r"\bhost=(\S+)", text)
    version = re.search(r"\bversion=(\S+)", text)
    if not host or not version:
        return "FAIL", "no_host=_or_version=_in_the_page"
    return host.group(1), version.group(1)


def poll(target, rate, seconds, timeout=3.0):
    """Prints `send_unix_us latency_us host|FAIL version|detail`, one line per request."""
    h, p = target.rsplit(":", 1)
    addr = (h, int(p))
    lines, lock, threads = [], threading.Lock(), []

    def one():
        sent = time.time()
        t0 = time.monotonic()
        host, what = poll_one(addr, timeout)
        lat = time.monotonic() - t0
        with lock:
            lines.append(f"{int(sent * 1e6)} {int(lat * 1e6)} {host} {what}")

    start = time.monotonic()
    for i in range(int(seconds * rate)):
        due = start + i / rate
        time.sleep(max(0.0, due - time.monotonic()))
        t = threading.Thread(target=one, daemon=True)
        t.start()
        threads.append(t)
        threads = [t for t in threads if t.is_alive()]
    for t in threads:
        t.join(timeout + 1)
    with lock:
        print("\n".join(lines))
    return 0


def poller_start(target, rate, seconds):
    return subprocess.Popen(["ip", "netns", "exec", "baton-client", sys.executable, os.path.abspath(__file__),
                             "--poll", target, str(rate), str(seconds)], stdout=subprocess.PIPE, text=True)


def poller_end(p):
    out, _ = p.communicate()
    rows = []
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4:
            rows.append((int(parts[0]) / 1e6, int(parts[1]) / 1e6, parts[2], parts[3]))
    rows.sort()
    return rows


# ---------------------------------------------------------------------------
# The analysis

def settled(answers, ok):
    """(last send time of an answer that was not ok, first send time of an ok answer after it):
    every answer sent from the second on is ok. Failures are not answers. (None, first) when
    every answer was ok; (last, None) when none was ok after the last one that was not."""
    answers = [a for a in answers if a[2] != "FAIL"]
    bad = [a[0] for a in answers if not ok(a)]
    last_bad = max(bad) if bad else None
    first_ok = next((a[0] for a in answers if (last_bad is None or a[0] > last_bad) and ok(a)), None)
    return last_bad, first_ok


def all_old(reqs, polls):
    """(the probe's first answer from which on all came from blue, the poller's first from which on
    all came from blue with version 1, the last answer of either that did not, the first answer of
    either after it: from then on, every answer of both was from blue on version 1), by the rows'
    first field (send time, or arrival time)."""
    p_last, p_first = settled(reqs, lambda a: a[2] == OLD)
    v_last, v_first = settled(polls, lambda a: a[2] == OLD and a[3] == "1")
    last_bad = max((t for t in (p_last, v_last) if t is not None), default=None)
    both = sorted(a[0] for a in reqs + polls if a[2] != "FAIL" and (last_bad is None or a[0] > last_bad))
    old_at = both[0] if both and p_first is not None and v_first is not None else None
    return p_first, v_first, last_bad, old_at


def by_host_version(rows, lo=None, hi=None):
    out = {}
    for r in rows:
        if (lo is None or r[0] >= lo) and (hi is None or r[0] < hi):
            k = "FAIL" if r[2] == "FAIL" else f"{r[2]} v{r[3]}"
            out[k] = out.get(k, 0) + 1
    return out


def rel(t, t0):
    return None if t is None or t0 is None else round(t - t0, 3)


def status_now():
    """`baton status web --json`: the verdict, the hold, each host's version."""
    out = subprocess.run(["ip", "netns", "exec", "baton-ctl", lbgap.baton_path(), "--config", CONFIG,
                          "status", "web", "--json"], capture_output=True, text=True, check=False).stdout
    try:
        pair = json.loads(out)["pairs"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return {"error": out[-300:]}
    hosts = pair.get("hosts")
    versions = {}
    if isinstance(hosts, list):
        for h in hosts:
            if isinstance(h, dict):
                versions[h.get("name")] = h.get("version")
    elif isinstance(hosts, dict):
        for name, h in hosts.items():
            if isinstance(h, dict):
                versions[name] = h.get("version")
    return {"verdict": pair.get("verdict"), "held": pair.get("held"), "versions": versions,
            "holder": (pair.get("holder") or {}).get("detail")}


def slow_config(sleep_s):
    """SLOW_CONFIG_DIR: the lab's configuration with [changes.v2-slow] added to web's pair file."""
    shutil.rmtree(SLOW_CONFIG_DIR, ignore_errors=True)
    shutil.copytree(os.path.dirname(CONFIG), SLOW_CONFIG_DIR)
    path = os.path.join(SLOW_CONFIG_DIR, "pairs/web.toml")
    with open(path, "rb") as f:
        v2 = tomllib.load(f)["changes"]["v2"]
    q = lambda xs: "[" + ", ".join(json.dumps(x) for x in xs) + "]"
    wait = f"sleep {sleep_s:g}"
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"\n# Added by scripts/bench.d/holdgap.py: v2 with {sleep_s:g} s more in its steps and in its rollback\n"
                "[changes.v2-slow]\n"
                f"label = {json.dumps(v2.get('label', 'v2') + f', {sleep_s:g} s slower')}\n"
                f"steps = {q(list(v2['steps']) + [wait])}\n"
                f"rollback = {q(list(v2['rollback']) + [wait])}\n")
    return os.path.join(SLOW_CONFIG_DIR, "baton.toml")


def run_baton(config, args):
    """One baton command in the controller's namespace with --json: (exit, started, ended, events)."""
    started = time.time()
    ctl = subprocess.Popen(["ip", "netns", "exec", "baton-ctl", lbgap.baton_path(), "--json", "--config", config]
                           + args, stdout=subprocess.PIPE, text=True)
    events = []
    for line in ctl.stdout:
        now = time.time()
        try:
            e = json.loads(line)
        except ValueError:
            continue
        e["_at"] = now
        events.append(e)
    code = ctl.wait()
    return code, started, time.time(), events


def host_colours(path, reqs):
    """gap.svg colours the hosts in the order they first answered (here green first, in gap.py's
    blue): swap its first two colours when green answered first, so blue is drawn blue."""
    first = next((r[2] for r in reqs if r[2] != "FAIL"), None)
    if first != "green":
        return
    c1, c2 = gap.COLOURS[0], gap.COLOURS[1]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = text.replace(c1, "\0").replace(c2, c1).replace("\0", c2)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def prepare(kind, config, change):
    """The apply before the measurement: held (revert) or a whole cycle (rollback)."""
    args = ["apply", "web", "--change", change, "--reason", "bench"]
    if kind == "revert":
        args[4:4] = ["--hold", "1h"]
    code, t0, t1, events = run_baton(config, args)
    end = next((e for e in events if e.get("step") == "run"), {})
    return {"args": " ".join(args), "exit": code, "outcome": end.get("state"), "wall_s": round(t1 - t0, 2),
            "detail": None if code == 0 else end.get("detail")}


def measured_args(kind, change):
    if kind == "revert":
        return ["revert", "web", "--reason", "bench"]
    return ["rollback", "--change", change, "web", "--reason", "bench"]


def one_run(kind, name, config, change, rate, poll_rate, seconds, svg):
    lbgap.fresh_lab()
    rec = {"name": name, "kind": kind, "change": change}
    rec["prepare"] = prepare(kind, config, change)
    rec["status_before"] = status_now()
    args = measured_args(kind, change)
    rec["command"] = "baton " + " ".join(args)
    if rec["prepare"]["exit"] != 0:
        rec["baton_exit"] = None
        rec["message"] = "the apply before it failed"
        return rec
    client = lbgap.probe_start(VIP, rate, seconds)
    poller = poller_start(VIP, poll_rate, seconds)
    time.sleep(LEAD)
    code, started, ended, events = run_baton(config, args)
    reqs = lbgap.probe_end(client)
    polls = poller_end(poller)
    an = gap.analyse(reqs, events, started, ended)
    bands = an.pop("steps")
    del an["switch_at"]
    del an["switch_step_ms"]
    rec.update(an)
    rec["harmed"] = lbgap.harmed(reqs)
    rec["baton_exit"] = code
    rec["wall_s"] = round(ended - started, 3)
    rec["run"] = next((e.get("run") for e in events if e.get("run")), None)
    end = next((e for e in events if e.get("step") == "run"), {})
    rec["outcome"] = end.get("state")
    if code != 0:
        rec["message"] = end.get("detail")
    # each step: its duration and when it ended, from the command's start (the events' arrival)
    begins = {}
    for e in events:
        if e.get("state") == "begin":
            begins.setdefault(e["step"], e["_at"])
    rec["steps"] = [{"step": e["step"], "host": e.get("host"), "state": e["state"],
                     "duration_ms": e.get("duration_ms"), "begin_s": rel(begins.get(e["step"]), started),
                     "end_s": rel(e["_at"], started), "detail": (e.get("detail") or "")[:160]}
                    for e in events if e.get("state") in ("ok", "failed") and e.get("step") != "run"]
    rec["first_event_s"] = rel(min((e["_at"] for e in events if e.get("step") != "run"), default=None), started)
    # the switch that moved the VIP back to blue: the step with an `ip ... addr add` on blue
    # (classic order), or `addr replace` (the overlap, the default, takes it with a replace)
    # (a revert continues the held run: its id is the apply's, whose operations come first)
    ops = lbgap.ops_of(rec["run"])
    mine = {st["step"] for st in rec["steps"]}
    per_step = {}
    for o in ops:
        if o.get("step") not in mine:
            continue
        s = per_step.setdefault(o.get("step"), {"ops": 0, "ms": 0})
        s["ops"] += 1
        s["ms"] += o.get("duration_ms") or 0
    rec["ops_per_step"] = per_step
    adds = [o for o in ops if o.get("host") == OLD and re.search(r"addr (add|replace) ", o.get("command") or "")]
    sw_step = adds[-1].get("step") if adds else None
    rec["switch_step"] = sw_step
    sw = [e for e in events if e.get("step") == sw_step]
    sw_begin = next((e["_at"] for e in sw if e.get("state") == "begin"), None)
    sw_end = next((e for e in sw if e.get("state") in ("ok", "failed")), None)
    rec["switch_step_ms"] = sw_end.get("duration_ms") if sw_end else None
    rec["switch_begin_s"] = rel(sw_begin, started)
    rec["switch_end_s"] = rel(sw_end["_at"] if sw_end else None, started)
    # all on blue (the probe), all on version 1 from blue (the poller), both
    (p_first, v_first, last_bad, old_at) = all_old(reqs, polls)
    rec["to_all_blue_s"] = rel(p_first, started)
    rec["to_all_v1_s"] = rel(v_first, started)
    rec["to_all_old_s"] = rel(old_at, started)
    rec["last_not_old_s"] = rel(last_bad, started)
    rec["switch_begin_to_all_old_ms"] = (None if old_at is None or sw_begin is None
                                         else round((old_at - sw_begin) * 1000, 1))
    # the same by the time each answer arrived (send time plus latency): a request whose SYN was
    # retransmitted a second later counts when its answer came, not when it was sent
    done = lambda rows: sorted((r[0] + r[1], r[1], r[2], r[3]) for r in rows)
    rec["to_all_old_answered_s"] = rel(all_old(done(reqs), done(polls))[3], started)
    rec["poll_requests"] = len(polls)
    rec["poll_failed"] = sum(1 for r in polls if r[2] == "FAIL")
    rec["poll_delayed_over_100ms"] = sum(1 for r in polls if r[2] != "FAIL" and r[1] > 0.1)
    rec["poll_all"] = by_host_version(polls)
    rec["poll_before"] = by_host_version(polls, hi=started)
    rec["poll_after_exit"] = by_host_version(polls, lo=ended)
    rec["probe_after_exit"] = by_host_version([(r[0], r[1], r[2], "?") for r in reqs], lo=ended)
    rec["after_exit_s"] = None if not reqs else round(max(r[0] for r in reqs) - ended, 2)
    rec["status_after"] = status_now()
    if svg and reqs:
        what = (f"baton revert web (a held apply of {change})" if kind == "revert"
                else f"baton rollback --change {change} web (after an apply of it)")
        gap.svg(svg, f"{name}: {what}, {len(reqs)} requests at {rate}/s (zoom: all on blue, version 1)",
                reqs, bands, started, old_at)
        host_colours(svg, reqs)
    return rec


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--poll":
        return poll(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--svg-dir", required=True)
    p.add_argument("--runs", type=int, default=5, help="of each: revert, rollback")
    p.add_argument("--slow-runs", type=int, default=2, help="of each with v2-slow")
    p.add_argument("--slow", type=float, default=3.0, help="v2-slow's wait, seconds, in its steps and its rollback")
    p.add_argument("--rate", type=int, default=200)
    p.add_argument("--poll-rate", type=int, default=100)
    p.add_argument("--seconds", type=float, default=10.0, help="how long both clients run")
    args = p.parse_args()

    lbgap.lab("up")
    lbgap.fresh_lab()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    if subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "--", ".", ":(exclude)bench",
                       ":(exclude)BENCHMARKS.md"], check=False).returncode != 0:
        commit += "+dirty"
    failed = 0
    try:
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(json.dumps({"measured": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
                                  "commit": commit, "profile": gap.PROFILE, "rate": args.rate,
                                  "poll_rate": args.poll_rate, "seconds": args.seconds,
                                  "lead_s": LEAD, "slow_s": args.slow}) + "\n")
            plan = [(f"hold-{kind}-{i}", kind, CONFIG, "v2", args.seconds, i == 1)
                    for i in range(1, args.runs + 1) for kind in ("revert", "rollback")]
            if args.slow_runs:
                slow = slow_config(args.slow)
                plan += [(f"hold-{kind}-slow-{i}", kind, slow, "v2-slow", args.seconds + 2 * args.slow, i == 1)
                         for i in range(1, args.slow_runs + 1) for kind in ("revert", "rollback")]
            for name, kind, config, change, seconds, first in plan:
                svg = None
                if first:
                    svg = os.path.join(args.svg_dir, f"hold-{kind}{'-slow' if change != 'v2' else ''}.svg")
                rec = one_run(kind, name, config, change, args.rate, args.poll_rate, seconds, svg)
                out.write(json.dumps(rec) + "\n")
                out.flush()
                say(f"{name}: prepare exit {rec['prepare']['exit']} ({rec['prepare']['outcome']}), "
                    f"{rec['command']} exit {rec['baton_exit']} ({rec.get('outcome')}) in {rec.get('wall_s')} s; "
                    f"all on blue {rec.get('to_all_blue_s')} s, all v1 {rec.get('to_all_v1_s')} s, "
                    f"both {rec.get('to_all_old_s')} s ({rec.get('switch_begin_to_all_old_ms')} ms after the "
                    f"{rec.get('switch_step')} step began); {rec.get('requests')} requests, "
                    f"{rec.get('failed')} failed, {rec.get('delayed_over_100ms')} delayed; poller before "
                    f"{rec.get('poll_before')}, after {rec.get('poll_after_exit')}")
                if rec["baton_exit"] != 0:
                    failed += 1
                    say(f"{name}: {rec.get('message')}")
    finally:
        lbgap.fresh_lab()
        shutil.rmtree(SLOW_CONFIG_DIR, ignore_errors=True)
    if failed:
        say(f"{failed} run(s) failed (recorded in {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
