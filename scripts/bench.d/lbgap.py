#!/usr/bin/env python3
"""A switch through HAProxy beside a switch by VIP (issue 15), and a ramp, as a client sees them.

The probe of gap.py (examples/probe.rs: a new TCP connection per request, 200 requests per
second, 3 s timeout) runs in the lab's client namespace while baton runs in the controller's:

  switchover  `baton switchover lb` with the probe on the balancer's frontend (198.18.0.40:80),
              and, in turn with it, `baton switchover web` with the probe on the VIP
              (198.18.0.100:80): N of each, alternating, in the same run
  ramp        `baton apply lb --change v2 --ramp 10,50,100 --step 5s` with the probe on the
              frontend, each from `scripts/lab reset` (teal weight 100, coral 0, version 1)

Per run (one JSON line in --out, after a first line with when, what and how): what gap.py's
analysis says (requests, failed, delayed over 100 ms, max latency, gap, the switch step's
duration from baton's --json events), the run id, and the operations of the switch step with
their durations (`baton log --run ID --json`). A ramp's line also has, per ramp step, the share
of the probe's answers that came from the updated host (the page names the host) while the
step's weights held, next to its weight and to the balancer's own counters over the step (the
step's detail in the journal); and the ramp step's wall time against the sum of its waits.
SVG timelines (gap.py's) of the first run of each: lb-switchover.svg, lb-vip-switchover.svg,
lb-ramp.svg in --svg-dir.

Usage: lbgap.py --out FILE.jsonl --svg-dir DIR [--switchovers N] [--ramps N]
                [--ramp 10,50,100] [--step 5] [--rate 200]
Brings the lab up when needed (keeping its fleet size), starts from `scripts/lab reset` with an
empty state dir, and ends the same way. Hold /run/baton-lab-tests.lock around it (scripts/bench
does, with flock -o). Root only.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in scripts/bench.d
import gap  # noqa: E402  (the probe's runner, analysis and timelines)

LAB = "/var/lib/baton-lab"
CONFIG = f"{LAB}/config/baton.toml"
STATE = f"{LAB}/state"
FRONTEND = "198.18.0.40:80"
VIP = "198.18.0.100:80"
# What a request spends at most on each side of a weight change (kept out of a step's window):
# the requests in flight when the weights change, and baton's own time between operations.
EDGE = 0.05


def say(text):
    print(f"bench: lb-gap: {text}", file=sys.stderr, flush=True)


def lab(*args):
    subprocess.run([os.path.join(ROOT, "scripts/lab"), *args], check=True, stdout=subprocess.DEVNULL)


def fresh_lab():
    """The initial state and an empty state dir: baton and the lab agree again."""
    lab("reset")
    shutil.rmtree(STATE, ignore_errors=True)


def baton_path():
    return os.path.join(ROOT, f"target/{gap.PROFILE}/baton")


def ops_of(run_id):
    """The operations the run performed (`baton log --run ID --json`), in order."""
    if not run_id:
        return []
    out = subprocess.run(["ip", "netns", "exec", "baton-ctl", baton_path(), "--config", CONFIG,
                          "log", "--run", run_id, "--json"],
                         capture_output=True, text=True, check=False).stdout
    ops = []
    for line in out.splitlines():
        try:
            ops.append(json.loads(line))
        except ValueError:
            continue
    return ops


def probe_run(name, target, seconds, rate, baton_args, svg=None, title="", ramp=False):
    """One baton command under the probe: gap.py's analysis plus the run id and its events."""
    a = types.SimpleNamespace(target=target, rate=rate, seconds=seconds, lead=1.0,
                              baton=["--config", CONFIG] + baton_args)
    code, started, ended, events, reqs = gap.run(a)
    rec = gap.analyse(reqs, events, started, ended)
    if svg and not ramp:
        gap.svg(svg, f"{name}: {title}, {len(reqs)} requests at {rate}/s", reqs, rec["steps"],
                started, rec["switch_at"])
    bands = rec.pop("steps")
    del rec["switch_at"]
    rec["name"] = name
    rec["baton_exit"] = code
    rec["run"] = next((e.get("run") for e in events if e.get("run")), None)
    end = next((e for e in events if e.get("step") == "run"), {})
    rec["outcome"] = end.get("state")
    if code != 0:
        rec["message"] = end.get("detail")
    return rec, events, reqs, (started, bands)


def step_ops(ops, step):
    return [{"op": o.get("op"), "host": o.get("host"), "duration_ms": o.get("duration_ms"),
             "command": o.get("command", "")[:200]} for o in ops if o.get("step") == step]


def switchover(name, method, target, pair, rate, seconds, svg):
    title = f"baton switchover {pair} ({'through HAProxy' if method == 'haproxy' else 'by VIP'})"
    rec, events, _, _ = probe_run(name, target, seconds, rate,
                               ["switchover", pair, "--reason", "benchmark"], svg, title)
    rec["method"] = method
    rec["pair"] = pair
    sw = next((e for e in events if e.get("step") == "switch" and e.get("state") == "begin"), {})
    rec["hosts"] = sw.get("host")
    rec["switch_ops"] = step_ops(ops_of(rec["run"]), "switch")
    return rec


# "step 1/2 (10% to coral) for 5s: coral 100 requests, 0 5xx ...; teal 900 requests, 0 5xx ...: as good"
STEP_DETAIL = re.compile(r"step (\d+)/(\d+) \((\d+)% to ([\w.-]+)\) for [^:]+: ([\w.-]+) (\d+) requests[^;]*; "
                         r"([\w.-]+) (\d+) requests")


def ramp_run(name, rate, seconds, percents, step_s, svg):
    args = ["apply", "lb", "--change", "v2", "--ramp", ",".join(map(str, percents + [100])),
            "--step", f"{step_s:g}s", "--reason", "benchmark"]
    title = f"baton apply lb --ramp {','.join(map(str, percents + [100]))} --step {step_s:g}s"
    rec, events, reqs, (started, bands) = probe_run(name, FRONTEND, seconds, rate, args, title=title, ramp=True)
    rec["method"] = "haproxy-ramp"
    rec["pair"] = "lb"
    rec["ramp"] = percents + [100]
    rec["step_s"] = step_s
    begin = next((e for e in events if e.get("step") == "ramp" and e.get("state") == "begin"), None)
    end = next((e for e in events if e.get("step") == "ramp" and e.get("state") in ("ok", "failed")), None)
    switch = next((e for e in events if e.get("step") == "switch" and e.get("state") == "begin"), None)
    rec["hosts"] = begin.get("host") if begin else None
    new = rec["hosts"].split("->")[-1] if rec["hosts"] else None
    ops = ops_of(rec["run"])
    ramp_ops = [o for o in ops if o.get("step") == "ramp"]
    rec["ramp_ops"] = step_ops(ops, "ramp")
    rec["switch_ops"] = step_ops(ops, "switch")
    rec["ramp_step_ms"] = end.get("duration_ms") if end else None
    rec["ramp_detail"] = end.get("detail") if end else None
    rec["waits_ms"] = len(percents) * step_s * 1000
    rec["ramp_overhead_ms"] = None if rec["ramp_step_ms"] is None else rec["ramp_step_ms"] - rec["waits_ms"]
    # where the overhead goes, by the kind of operation (the waits excluded)
    by_kind = {}
    for o in ramp_ops:
        if o.get("op") != "wait":
            k = "setting the weights" if "weight" in o.get("command", "") else "reading the counters"
            by_kind[k] = by_kind.get(k, 0) + (o.get("duration_ms") or 0)
    rec["ramp_ops_ms"] = by_kind
    # Each ramp step's window: from the end of the operation that set its weights to the start
    # of the next one (the last: to the start of the switch step), the operations laid end to
    # end from the step's begin event (their durations are the journal's; baton's time between
    # them is under a millisecond or two, which EDGE covers).
    balancer = {}
    for m in STEP_DETAIL.finditer(rec["ramp_detail"] or ""):
        balancer[int(m.group(1))] = {m.group(5): int(m.group(6)), m.group(7): int(m.group(8))}
    steps = []
    windows = []
    if begin is not None:
        t = begin["_at"]
        sets = []
        for o in ramp_ops:
            d = (o.get("duration_ms") or 0) / 1000.0
            if "weight" in o.get("command", "") and o.get("op") != "wait":
                sets.append((t, t + d))
            t += d
        bounds = sets
        last = switch["_at"] if switch is not None else (end["_at"] if end is not None else None)
        for i, (_, set_end) in enumerate(bounds):
            if i >= len(percents):
                break
            stop = bounds[i + 1][0] if i + 1 < len(bounds) else last
            if stop is None:
                break
            lo, hi = set_end + EDGE, stop - EDGE
            inside = [r for r in reqs if lo <= r[0] <= hi]
            ok = [r for r in inside if r[2] != "FAIL"]
            from_new = sum(1 for r in ok if r[2] == new)
            windows.append((set_end, stop, percents[i]))
            b = balancer.get(i + 1, {})
            b_total = sum(b.values())
            steps.append({
                "percent": percents[i],
                "window_s": round(hi - lo, 3),
                "requests": len(inside),
                "answered": len(ok),
                "from_new": from_new,
                "share_pct": None if not ok else round(100.0 * from_new / len(ok), 2),
                "balancer_new": b.get(new),
                "balancer_total": b_total or None,
                "balancer_share_pct": None if not b_total or new not in b else round(100.0 * b[new] / b_total, 2),
            })
    rec["ramp_steps"] = steps
    if svg and reqs and new:
        ramp_svg(svg, f"{name}: {title}, {len(reqs)} requests at {rate}/s", reqs, bands, started, new, windows)
    return rec


def ramp_svg(path, title, reqs, bands, started, new, windows):
    """The share of the answers that came from the updated host, per 250 ms of send time, over
    the whole run; the ramp steps' weights as dashed lines over their windows; failed requests
    as red ticks; baton's steps as bands below."""
    w, left, right, top, base = 1000, 60, 20, 40, 240
    t0 = min(reqs[0][0], started)
    t1 = max(r[0] for r in reqs)
    span = max(t1 - t0, 0.001)
    x = lambda t: left + (t - t0) / span * (w - left - right)
    y = lambda pct: base - pct / 100.0 * (base - top)
    o = [f'<text x="{left}" y="{top - 8}" fill="#333">share of the answers from {new} per 250 ms of send '
         f'time (bars); the weight of each ramp step (dashed); failed requests (red, below the axis)</text>']
    for pct in (0, 10, 50, 100):
        o.append(f'<line x1="{left}" y1="{y(pct):.1f}" x2="{w - right}" y2="{y(pct):.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{left - 6}" y="{y(pct) + 4:.1f}" text-anchor="end">{pct}%</text>')
    b = 0.25
    n = int(span / b) + 1
    bins = [[0, 0] for _ in range(n)]
    for (sent, _, host, _) in reqs:
        if host != "FAIL":
            k = min(int((sent - t0) / b), n - 1)
            bins[k][1] += 1
            bins[k][0] += host == new
    for k, (hits, total) in enumerate(bins):
        if total:
            pct = 100.0 * hits / total
            o.append(f'<rect x="{x(t0 + k * b):.1f}" y="{y(pct):.1f}" width="{max(x(t0 + (k + 1) * b) - x(t0 + k * b) - 1, 1):.1f}" '
                     f'height="{base - y(pct):.1f}" fill="#2ca02c"/>')
    for (lo, hi, pct) in windows:
        o.append(f'<line x1="{x(lo):.1f}" y1="{y(pct):.1f}" x2="{x(hi):.1f}" y2="{y(pct):.1f}" stroke="black" stroke-dasharray="4,3"/>')
    for (sent, _, host, _) in reqs:
        if host == "FAIL":
            o.append(f'<line x1="{x(sent):.1f}" y1="{base + 3}" x2="{x(sent):.1f}" y2="{base + 12}" stroke="#d62728" stroke-width="1.5"/>')
    o.append(f'<line x1="{left}" y1="{base}" x2="{w - right}" y2="{base}" stroke="black"/>')
    tick = 1 if span < 15 else 2 if span < 30 else 5
    t = 0.0
    while t <= span + 1e-9:
        o.append(f'<text x="{x(t0 + t):.1f}" y="{base + 26}" text-anchor="middle">{t:.0f} s</text>')
        t += tick
    for i, (s, e, name) in enumerate(bands):
        yy = base + 36 + (i % 4) * 16
        o.append(f'<rect x="{x(max(s, t0)):.1f}" y="{yy}" width="{max(x(min(e, t1)) - x(max(s, t0)), 1.5):.1f}" height="13" fill="#eee" stroke="#999"/>')
        o.append(f'<text x="{x(max(s, t0)) + 3:.1f}" y="{yy + 10}">{name}</text>')
    h = base + 36 + 4 * 16 + 10
    head = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
            f'<rect width="{w}" height="{h}" fill="white"/>',
            f'<text x="{left}" y="16" font-size="13">{title}</text>']
    with open(path, "w") as f:
        f.write("\n".join(head + o + ["</svg>"]) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--svg-dir", required=True)
    p.add_argument("--switchovers", type=int, default=10, help="of each method")
    p.add_argument("--ramps", type=int, default=3)
    p.add_argument("--ramp", default="10,50,100")
    p.add_argument("--step", type=float, default=5.0, help="seconds per ramp step")
    p.add_argument("--rate", type=int, default=200)
    args = p.parse_args()
    percents = [int(x) for x in args.ramp.split(",") if int(x) < 100]

    lab("up")
    fresh_lab()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    if subprocess.run(["git", "-C", ROOT, "diff", "--quiet"], check=False).returncode != 0:
        commit += "+dirty"
    failed = 0
    try:
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(json.dumps({"measured": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
                                  "commit": commit, "profile": gap.PROFILE, "rate": args.rate,
                                  "ramp": percents + [100], "step_s": args.step}) + "\n")
            for i in range(1, args.switchovers + 1):
                for method, target, pair, svg_name in (("haproxy", FRONTEND, "lb", "lb-switchover.svg"),
                                                       ("vip", VIP, "web", "lb-vip-switchover.svg")):
                    name = f"{'lb' if method == 'haproxy' else 'vip'}-switchover-{i}"
                    svg = os.path.join(args.svg_dir, svg_name) if i == 1 else None
                    rec = switchover(name, method, target, pair, args.rate, 4, svg)
                    out.write(json.dumps(rec) + "\n")
                    out.flush()
                    say(f"{name}: {rec['hosts']}, exit {rec['baton_exit']}, {rec['requests']} requests, "
                        f"{rec['failed']} failed, {rec['delayed_over_100ms']} delayed, max {rec['max_latency_ms']} ms, "
                        f"gap {rec['gap_ms']} ms, switch step {rec['switch_step_ms']} ms")
                    if rec["baton_exit"] != 0:
                        failed += 1
                        say(f"{name}: baton exited {rec['baton_exit']} ({rec.get('message')}); resetting the lab")
                        fresh_lab()
            # a ramp's run: 1 s lead, its steps, then the switch, the 2 s observation, the drain
            # and the old primary's apply (about 2.5 s in all); 3 s to spare
            seconds = 1 + len(percents) * args.step + 6
            for i in range(1, args.ramps + 1):
                fresh_lab()
                name = f"lb-ramp-{i}"
                svg = os.path.join(args.svg_dir, "lb-ramp.svg") if i == 1 else None
                rec = ramp_run(name, args.rate, seconds, percents, args.step, svg)
                out.write(json.dumps(rec) + "\n")
                out.flush()
                shares = ", ".join(f"{s['percent']}%: {s['share_pct']}% of {s['answered']} (balancer "
                                   f"{s['balancer_share_pct']}%)" for s in rec["ramp_steps"])
                say(f"{name}: {rec['hosts']}, exit {rec['baton_exit']}, {rec['requests']} requests, "
                    f"{rec['failed']} failed, {rec['delayed_over_100ms']} delayed; ramp step "
                    f"{rec['ramp_step_ms']} ms for {rec['waits_ms']:.0f} ms of waits; shares {shares}")
                if rec["baton_exit"] != 0:
                    failed += 1
                    say(f"{name}: baton exited {rec['baton_exit']} ({rec.get('message')})")
    finally:
        fresh_lab()
    if failed:
        say(f"{failed} run(s) failed (recorded in {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
