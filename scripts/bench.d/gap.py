#!/usr/bin/env python3
"""Switch-gap benchmark: runs the probe in the lab's client namespace against
the service address while baton runs a command in the controller's
namespace, then reports what the client saw and draws an SVG timeline.

Usage: gap.py --name NAME --target HOST:PORT --rate N --seconds S
              --svg FILE --json FILE -- BATON_ARGS...

The probe's lines are `send_unix_us latency_us host|FAIL detail`; baton's
progress comes as JSON events (`--json`), stamped here on arrival.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# Which build to measure (scripts/bench --smoke uses the debug build).
PROFILE = os.environ.get("BATON_BENCH_PROFILE", "release")
COLOURS = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def run(args):
    probe = os.path.join(ROOT, f"target/{PROFILE}/examples/probe")
    baton = os.path.join(ROOT, f"target/{PROFILE}/baton")
    client = subprocess.Popen(
        ["ip", "netns", "exec", "baton-client", probe, args.target,
         str(args.rate), str(args.seconds)],
        stdout=subprocess.PIPE, text=True)
    time.sleep(args.lead)
    events = []
    started = time.time()
    ctl = subprocess.Popen(
        ["ip", "netns", "exec", "baton-ctl", baton, "--json"] + args.baton,
        stdout=subprocess.PIPE, text=True)
    for line in ctl.stdout:
        now = time.time()
        try:
            e = json.loads(line)
        except ValueError:
            continue
        e["_at"] = now
        events.append(e)
    code = ctl.wait()
    ended = time.time()
    out, _ = client.communicate()
    reqs = []
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4:
            reqs.append((int(parts[0]) / 1e6, int(parts[1]) / 1e6, parts[2], parts[3]))
    reqs.sort()
    return code, started, ended, events, reqs


def analyse(reqs, events, started, ended):
    failed = [r for r in reqs if r[2] == "FAIL"]
    slow = [r for r in reqs if r[2] != "FAIL" and r[1] > 0.1]
    first_host = next((r[2] for r in reqs if r[2] != "FAIL"), None)
    # The switch: the first request answered by another host than the first.
    switch_at = next((i for i, r in enumerate(reqs) if r[2] not in ("FAIL", first_host)), None)
    gap = None
    if switch_at is not None:
        last_old = max((r[0] for r in reqs[:switch_at] if r[2] == first_host), default=None)
        first_new = reqs[switch_at][0]
        if last_old is not None:
            gap = first_new - last_old
    # The longest stretch, by send time, without a request answered within
    # 100 ms: what a user with a short timeout would call the outage.
    prompt = [r[0] for r in reqs if r[2] != "FAIL" and r[1] <= 0.1]
    dead = max((b - a for a, b in zip(prompt, prompt[1:])), default=None)
    switches = [e for e in events if e.get("step") in ("switch", "switch_back") and e.get("state") != "begin"]
    steps = []
    for e in events:
        if e.get("state") in ("ok", "failed") and e.get("step") not in ("run",):
            steps.append((e["_at"] - e.get("duration_ms", 0) / 1000.0, e["_at"], e["step"]))
    # Where the failed and the delayed requests were sent, relative to the
    # first request the new host answered (negative: before it).
    ref = reqs[switch_at][0] if switch_at is not None else None
    odd = [{"sent_ms": None if ref is None else round((r[0] - ref) * 1000, 1),
            "latency_ms": round(r[1] * 1000, 1), "host": r[2], "detail": r[3]}
           for r in reqs if r[2] == "FAIL" or r[1] > 0.1]
    return {
        "odd_requests": odd,
        "requests": len(reqs),
        "failed": len(failed),
        "failures": sorted({r[3] for r in failed})[:5],
        "delayed_over_100ms": len(slow),
        "max_latency_ms": round(max((r[1] for r in reqs), default=0) * 1000, 1),
        "gap_ms": None if gap is None else round(gap * 1000, 1),
        "longest_without_prompt_answer_ms": None if dead is None else round(dead * 1000, 1),
        "switch_step_ms": [e.get("duration_ms") for e in switches],
        "baton_wall_s": round(ended - started, 2),
        "steps": steps,
        "switch_at": None if switch_at is None else reqs[switch_at][0],
    }


def svg(path, title, reqs, steps, started, switch_at=None):
    """One panel for the whole run, one zoomed on the switch (+-150 ms)."""
    if not reqs:
        return
    hosts = []
    for r in reqs:
        if r[2] != "FAIL" and r[2] not in hosts:
            hosts.append(r[2])
    colour = {hname: COLOURS[i % len(COLOURS)] for i, hname in enumerate(hosts)}
    w, left, right = 1000, 60, 20
    o = []

    def panel(t0, t1, base, label, tick_step, unit_ms, with_steps):
        span = max(t1 - t0, 0.001)
        x = lambda t: left + (t - t0) / span * (w - left - right)
        o.append(f'<text x="{left}" y="{base - 70}" fill="#333">{label}</text>')
        for (sent, lat, host, _) in reqs:
            if not t0 <= sent <= t1:
                continue
            c = "#d62728" if host == "FAIL" else colour[host]
            hgt = 4 + min(lat * 1000, 100) * 0.55
            o.append(f'<line x1="{x(sent):.1f}" y1="{base}" x2="{x(sent):.1f}" y2="{base - hgt:.1f}" stroke="{c}" stroke-width="1.5"/>')
        o.append(f'<line x1="{left}" y1="{base + 2}" x2="{w - right}" y2="{base + 2}" stroke="black"/>')
        t = 0.0
        while t <= span + 1e-9:
            text = f"{t * 1000:.0f} ms" if unit_ms else f"{t:.1f} s"
            o.append(f'<text x="{x(t0 + t):.1f}" y="{base + 16}" text-anchor="middle">{text}</text>')
            t += tick_step
        if with_steps:
            for i, (s, e, name) in enumerate(steps):
                if e < t0 or s > t1:
                    continue
                y = base + 24 + (i % 4) * 16
                o.append(f'<rect x="{x(max(s, t0)):.1f}" y="{y}" width="{max(x(min(e, t1)) - x(max(s, t0)), 1.5):.1f}" height="13" fill="#eee" stroke="#999"/>')
                o.append(f'<text x="{x(max(s, t0)) + 3:.1f}" y="{y + 10}">{name}</text>')
        return x

    t0 = min(reqs[0][0], started)
    t1 = max(r[0] for r in reqs)
    span = t1 - t0
    panel(t0, t1, 110, "whole run (tick height: latency, capped at 100 ms; bands: baton's steps)",
          0.5 if span < 6 else 1 if span < 15 else 5, False, True)
    if switch_at is not None:
        z0, z1 = switch_at - 0.15, switch_at + 0.15
        panel(z0, z1, 290, "around the switch: 300 ms", 0.05, True, True)
    h = 400 if switch_at is not None else 220
    lx = left
    legend = []
    for hname in hosts + ["FAIL"]:
        c = "#d62728" if hname == "FAIL" else colour[hname]
        legend.append(f'<rect x="{lx}" y="{h - 16}" width="10" height="10" fill="{c}"/><text x="{lx + 14}" y="{h - 7}">{hname if hname != "FAIL" else "failed"}</text>')
        lx += 90
    head = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
            f'<rect width="{w}" height="{h}" fill="white"/>',
            f'<text x="{left}" y="18" font-size="13">{title}</text>']
    with open(path, "w") as f:
        f.write("\n".join(head + o + legend + ["</svg>"]))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--rate", type=int, default=200)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--lead", type=float, default=1.0)
    p.add_argument("--svg")
    p.add_argument("--json")
    p.add_argument("baton", nargs=argparse.REMAINDER)
    args = p.parse_args()
    if args.baton and args.baton[0] == "--":
        args.baton = args.baton[1:]
    code, started, ended, events, reqs = run(args)
    result = analyse(reqs, events, started, ended)
    result["name"] = args.name
    result["baton_exit"] = code
    if args.svg:
        svg(args.svg, f"{args.name}: {len(reqs)} requests at {args.rate}/s", reqs, result["steps"],
            started, result["switch_at"])
    del result["steps"]
    del result["switch_at"]
    text = json.dumps(result)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
