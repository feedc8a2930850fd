#!/usr/bin/env python3
"""A switch through HAProxy beside a switch by VIP (issue 15), and a ramp, as a client sees them.

The probe of gap.py (examples/probe.rs: a new TCP connection per request, 200 requests per
second, 3 s timeout) runs in the lab's client namespace while baton runs in the controller's:

  switchover  `baton switchover lb` with the probe on the balancer's frontend (198.18.0.40:80),
              and, in turn with it, `baton switchover web` with the probe on the VIP
              (198.18.0.100:80): N of each, alternating, in the same run
  ramp        `baton apply lb --change v2 --ramp 10,50,100 --step 5s` with the probe on the
              frontend, each from `scripts/lab reset` (teal weight 100, coral 0, version 1)
  bad ramp    the same with `--change v2-bad` (about 20 % of ordinary requests on the updated
              host answer 500, its checks stay green): it must abort at its first step (exit 1)
              and leave every new request on teal
  A/B         `baton ab lb --change v2 --weight 20 --for 10s --interval 2s`, then, while the
              split is held, `baton ab lb --report --json`, then `baton ab lb --end --keep new`,
              all under one probe on the frontend; and `baton ab lb --change v2-bad` (the same
              split), which must abort at its first interval (exit 1)

Per run (one JSON line in --out, after a first line with when, what and how): what gap.py's
analysis says (requests, failed, delayed over 100 ms, max latency, gap, the switch step's
duration from baton's --json events), the run id, and the operations of the switch step with
their durations (`baton log --run ID --json`). A ramp's line also has, per ramp step, the share
of the probe's answers that came from the updated host (the page names the host) while the
step's weights held, next to its weight and to the balancer's own counters over the step (the
step's detail in the journal); and the ramp step's wall time against the sum of its waits.
A bad ramp's line has the step that aborted, the time from the ramp step's start to the abort
(and to the switch back), the requests harmed (the probe's answers with a 5xx status), and the
answers sent after the run ended, with those of them the updated host gave (must be 0), and
the balancer's servers afterwards (`baton status lb --json`). An A/B line has the three
commands' exits and times, the share of the probe's answers from coral while the split was
watched and while it was held (against the weight), the report's samples and totals, and the
answers after `--end` (all must come from coral); a bad A/B line has the interval that aborted
and the requests harmed, like a bad ramp.
SVG timelines of the first run of each: lb-switchover.svg, lb-vip-switchover.svg (gap.py's),
lb-ramp.svg, lb-ramp-bad.svg, lb-ab.svg, lb-ab-bad.svg (the share of answers from the updated
host) in --svg-dir.

Usage: lbgap.py --out FILE.jsonl --svg-dir DIR [--switchovers N] [--ramps N] [--bad-ramps N]
                [--abs N] [--bad-abs N] [--ramp 10,50,100] [--step 5] [--rate 200]
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


# A probe's answer with a 5xx status ("status:_HTTP/1.1_500_Internal_Server_Error"): a request
# the service harmed. The probe's other failures (connect, timeout, ...) are counted apart.
HARMED = re.compile(r"^status:_HTTP/1\.[01]_5\d\d")


def harmed(reqs):
    return sum(1 for r in reqs if r[2] == "FAIL" and HARMED.match(r[3]))


def answers_between(reqs, lo, hi=None):
    """The probe's answers (not failures) sent in [lo, hi]: (all requests, answered, by host)."""
    inside = [r for r in reqs if r[0] >= lo and (hi is None or r[0] <= hi)]
    by_host = {}
    for r in inside:
        if r[2] != "FAIL":
            by_host[r[2]] = by_host.get(r[2], 0) + 1
    return len(inside), sum(by_host.values()), by_host


def share(by_host, host):
    total = sum(by_host.values())
    return None if not total else round(100.0 * by_host.get(host, 0) / total, 2)


def balancer_now():
    """The balancer's servers as `baton status lb --json` sees them now, and its verdict."""
    out = subprocess.run(["ip", "netns", "exec", "baton-ctl", baton_path(), "--config", CONFIG,
                          "status", "lb", "--json"], capture_output=True, text=True, check=False).stdout
    try:
        st = json.loads(out)
        pair = st["pairs"][0]
        return {"verdict": pair.get("verdict"), "holder": (pair.get("holder") or {}).get("detail"),
                "servers": [{k: s.get(k) for k in ("name", "status", "weight")}
                            for s in (pair.get("balancer") or {}).get("servers", [])]}
    except (ValueError, KeyError, IndexError, TypeError):
        return {"error": out[-300:]}


def bands_of(events):
    """baton's steps as (start, end, name), from the ok/failed events of every run given."""
    return [(e["_at"] - e.get("duration_ms", 0) / 1000.0, e["_at"], e["step"]) for e in events
            if e.get("state") in ("ok", "failed") and e.get("step") != "run"]


def after_run(rec, reqs, end_at, new, expect, label):
    """The answers sent after end_at: how many, and how many came from another host than expect
    (after_run_not_LABEL, LABEL "old" or "new"), and from the updated host new."""
    n, answered, by_host = answers_between(reqs, end_at + EDGE)
    rec["after_run_s"] = None if not reqs else round(max(r[0] for r in reqs) - end_at, 2)
    rec["after_run_requests"] = n
    rec["after_run_answered"] = answered
    rec["after_run_by_host"] = by_host
    rec["after_run_not_" + label] = answered - by_host.get(expect, 0)
    rec["after_run_from_new"] = by_host.get(new, 0)


# "step 1/2 (10% to coral) for 5s: ...: ABORTED: ..."
STEP_HEAD = re.compile(r"step (\d+)/(\d+) \((\d+)% to ")


def bad_ramp_run(name, rate, seconds, percents, step_s, svg):
    """`baton apply lb --change v2-bad --ramp ...` under the probe: it must abort at the first step."""
    ramp = ",".join(map(str, percents + [100]))
    args = ["apply", "lb", "--change", "v2-bad", "--ramp", ramp, "--step", f"{step_s:g}s", "--reason", "benchmark"]
    title = f"baton apply lb --change v2-bad --ramp {ramp} --step {step_s:g}s"
    rec, events, reqs, (started, bands) = probe_run(name, FRONTEND, seconds, rate, args, title=title, ramp=True)
    rec["method"] = "haproxy-ramp-bad"
    rec["pair"] = "lb"
    rec["change"] = "v2-bad"
    rec["ramp"] = percents + [100]
    rec["step_s"] = step_s
    begin = next((e for e in events if e.get("step") == "ramp" and e.get("state") == "begin"), None)
    end = next((e for e in events if e.get("step") == "ramp" and e.get("state") in ("ok", "failed")), None)
    back = next((e for e in events if e.get("step") == "switch_back" and e.get("state") in ("ok", "failed")), None)
    run_end = next((e for e in events if e.get("step") == "run"), None)
    rec["hosts"] = begin.get("host") if begin else None
    old, new = (rec["hosts"].split("->") + [None])[:2] if rec["hosts"] else (None, None)
    rec["ramp_state"] = end.get("state") if end else None
    rec["ramp_detail"] = end.get("detail") if end else None
    rec["switch_back_state"] = back.get("state") if back else None
    rec["switch_back_ms"] = back.get("duration_ms") if back else None
    # which step aborted: the last "step N/M (P% to" before ABORTED in the ramp step's detail
    detail = rec["ramp_detail"] or ""
    cut = detail.find("ABORTED")
    heads = list(STEP_HEAD.finditer(detail[:cut])) if cut >= 0 else []
    rec["aborted_step"] = int(heads[-1].group(1)) if heads else None
    rec["aborted_percent"] = int(heads[-1].group(3)) if heads else None
    rec["aborted_why"] = detail[cut + len("ABORTED: "):][:300] if cut >= 0 else None
    # from the ramp step's start to the abort (the journal's duration of the failed step), and to
    # the end of the switch back (every new request on the old host again), by the events' times
    rec["ramp_to_abort_s"] = None if end is None else round(end.get("duration_ms", 0) / 1000.0, 3)
    rec["ramp_to_switch_back_s"] = (None if begin is None or back is None
                                    else round(back["_at"] - begin["_at"], 3))
    rec["harmed"] = harmed(reqs)
    rec["failed_otherwise"] = rec["failed"] - rec["harmed"]
    if begin is not None and end is not None:
        # the probe's answers from the updated host while the ramp step ran (its share at weight P)
        _, answered, by_host = answers_between(reqs, begin["_at"], end["_at"])
        rec["ramp_answered"] = answered
        rec["ramp_from_new"] = by_host.get(new, 0)
    if run_end is not None:
        after_run(rec, reqs, run_end["_at"], new, old, "old")
    rec["balancer_after"] = balancer_now()
    if svg and reqs and new:
        windows = []
        if begin is not None and end is not None and rec["aborted_percent"] is not None:
            windows = [(begin["_at"], end["_at"], rec["aborted_percent"])]
        ramp_svg(svg, f"{name}: {title}, {len(reqs)} requests at {rate}/s", reqs, bands, started, new,
                 windows, weights="the weight of the ramp step that aborted (dashed)")
    return rec


def run_baton(args, json_events=True):
    """One baton command in the controller's namespace: (exit, started, ended, events or stdout)."""
    cmd = ["ip", "netns", "exec", "baton-ctl", baton_path()] + (["--json"] if json_events else []) + \
        ["--config", CONFIG] + args
    started = time.time()
    ctl = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    events, text = [], []
    for line in ctl.stdout:
        now = time.time()
        text.append(line)
        if json_events:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            e["_at"] = now
            events.append(e)
    code = ctl.wait()
    return code, started, time.time(), (events if json_events else "".join(text))


def probe_start(target, rate, seconds):
    probe = os.path.join(ROOT, f"target/{gap.PROFILE}/examples/probe")
    return subprocess.Popen(["ip", "netns", "exec", "baton-client", probe, target, str(rate), str(seconds)],
                            stdout=subprocess.PIPE, text=True)


def probe_end(client):
    out, _ = client.communicate()
    reqs = []
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4:
            reqs.append((int(parts[0]) / 1e6, int(parts[1]) / 1e6, parts[2], parts[3]))
    reqs.sort()
    return reqs


def probe_summary(rec, reqs):
    rec["requests"] = len(reqs)
    rec["failed"] = sum(1 for r in reqs if r[2] == "FAIL")
    rec["failures"] = sorted({r[3] for r in reqs if r[2] == "FAIL"})[:5]
    rec["harmed"] = harmed(reqs)
    rec["failed_otherwise"] = rec["failed"] - rec["harmed"]
    rec["delayed_over_100ms"] = sum(1 for r in reqs if r[2] != "FAIL" and r[1] > 0.1)
    rec["max_latency_ms"] = round(max((r[1] for r in reqs), default=0) * 1000, 1)


def split_set_at(events, ops, step):
    """When the split's weights were set: the step's begin plus the durations of its operations up
    to the end of the first one that sets a weight (as the ramp's windows are laid)."""
    begin = next((e for e in events if e.get("step") == step and e.get("state") == "begin"), None)
    if begin is None:
        return None
    t = begin["_at"]
    for o in ops:
        if o.get("step") != step:
            continue
        t += (o.get("duration_ms") or 0) / 1000.0
        if "weight" in o.get("command", "") and o.get("op") != "wait":
            return t
    return None


def ab_run(name, rate, weight, for_s, interval_s, hold_s, svg):
    """`baton ab lb --change v2` under the probe, held for hold_s, reported, ended keeping new."""
    after_s = 3.0
    # lead 1 s; the experiment (preflight, the change, for_s, about 0.5 s more); the hold; the end
    # (switch, 2 s observation, drain, the old primary's update: about 2.5 s); then after_s
    seconds = 1 + for_s + 1 + hold_s + 3 + after_s
    args = ["ab", "lb", "--change", "v2", "--weight", str(weight), "--for", f"{for_s:g}s",
            "--interval", f"{interval_s:g}s", "--reason", "benchmark"]
    client = probe_start(FRONTEND, rate, seconds)
    time.sleep(1.0)
    code, t0, t1, events = run_baton(args)
    hold_until = t1 + hold_s
    rcode, r0, r1, rtext = run_baton(["ab", "lb", "--report", "--json"], json_events=False)
    time.sleep(max(0.0, hold_until - time.time()))
    ecode, e0, e1, end_events = run_baton(["ab", "lb", "--end", "--keep", "new", "--reason", "benchmark"])
    reqs = probe_end(client)
    rec = {"name": name, "method": "haproxy-ab", "pair": "lb", "change": "v2", "weight": weight,
           "for_s": for_s, "interval_s": interval_s, "hold_s": hold_s}
    probe_summary(rec, reqs)
    rec["baton_exit"] = code
    rec["report_exit"] = rcode
    rec["end_exit"] = ecode
    rec["run"] = next((e.get("run") for e in events if e.get("run")), None)
    run_end = next((e for e in events if e.get("step") == "run"), {})
    rec["outcome"] = run_end.get("state")
    rec["ab_wall_s"] = round(t1 - t0, 2)
    rec["report_wall_s"] = round(r1 - r0, 2)
    rec["end_wall_s"] = round(e1 - e0, 2)
    exp_begin = next((e for e in events if e.get("step") == "experiment" and e.get("state") == "begin"), None)
    exp_end = next((e for e in events if e.get("step") == "experiment" and e.get("state") in ("ok", "failed")), None)
    rec["hosts"] = exp_begin.get("host") if exp_begin else None
    old, new = (rec["hosts"].split("->") + [None])[:2] if rec["hosts"] else ("teal", "coral")
    rec["experiment_ms"] = exp_end.get("duration_ms") if exp_end else None
    rec["experiment_detail"] = exp_end.get("detail") if exp_end else None
    # the --end's events: the run ids it names (it continues the experiment's run) and its steps
    rec["end_runs"] = sorted({e.get("run") for e in end_events if e.get("run")})
    rec["end_steps"] = [{"step": e.get("step"), "state": e.get("state"), "run": e.get("run"),
                         "duration_ms": e.get("duration_ms")} for e in end_events
                        if e.get("state") != "begin" or e.get("run") != rec["run"]]
    end_run = next((e for e in end_events if e.get("step") == "run"), {})
    rec["end_outcome"] = end_run.get("state")
    rec["end_message"] = end_run.get("detail")
    switch_b = next((e for e in end_events if e.get("step") == "switch" and e.get("state") == "begin"), None)
    switch_e = next((e for e in end_events if e.get("step") == "switch" and e.get("state") in ("ok", "failed")), None)
    rec["end_to_switch_s"] = None if switch_e is None else round(switch_e["_at"] - e0, 3)
    rec["end_switch_ms"] = switch_e.get("duration_ms") if switch_e else None
    # the probe's share of answers from coral: while watched (from the weights' setting to the
    # experiment step's end), while held (from the ab process's exit to the --end's switch step)
    set_at = split_set_at(events, ops_of(rec["run"]), "experiment")
    windows = []
    if set_at is not None and exp_end is not None:
        _, answered, by_host = answers_between(reqs, set_at + EDGE, exp_end["_at"] - EDGE)
        rec["watched"] = {"window_s": round(exp_end["_at"] - set_at - 2 * EDGE, 3), "answered": answered,
                          "from_new": by_host.get(new, 0), "share_pct": share(by_host, new)}
        windows.append((set_at, exp_end["_at"], weight))
    if switch_b is not None:
        lo, hi = t1 + EDGE, switch_b["_at"] - EDGE
        _, answered, by_host = answers_between(reqs, lo, hi)
        rec["held"] = {"window_s": round(hi - lo, 3), "answered": answered,
                       "from_new": by_host.get(new, 0), "share_pct": share(by_host, new)}
        windows.append((t1, switch_b["_at"], weight))
    # the report: its state, samples and totals (coral's share by the balancer's counters)
    try:
        report = json.loads(rtext)
    except ValueError:
        report = None
    if report:
        tot = report.get("totals", {})
        o, n = (tot.get("old") or {}).get("requests"), (tot.get("new") or {}).get("requests")
        rec["report"] = {
            "state": report.get("state"),
            "samples": [{"index": s.get("index"), "old": s["old"].get("requests"), "new": s["new"].get("requests"),
                         "old_errors": s["old"].get("errors"), "new_errors": s["new"].get("errors"),
                         "verdict": s.get("verdict")} for s in report.get("samples", [])],
            "totals": tot,
            "new_share_pct": None if not (o or n) else round(100.0 * (n or 0) / ((o or 0) + (n or 0)), 2),
        }
    else:
        rec["report"] = {"error": rtext[-300:]}
    if switch_e is not None:
        after_run(rec, reqs, switch_e["_at"], new, new, "new")
    rec["balancer_after"] = balancer_now()
    if svg and reqs:
        bands = bands_of(events + end_events)
        if exp_end is not None and switch_b is not None:
            bands.append((t1, switch_b["_at"], "held"))
        ramp_svg(svg, f"{name}: baton ab lb --change v2 --weight {weight} --for {for_s:g}s --interval "
                 f"{interval_s:g}s, held {hold_s:g}s, --end --keep new; {len(reqs)} requests at {rate}/s",
                 reqs, bands, t0, new, windows, weights="the split's weight while watched and while held (dashed)")
    return rec


def bad_ab_run(name, rate, weight, for_s, interval_s, svg):
    """`baton ab lb --change v2-bad` under the probe: it must abort at its first interval."""
    seconds = 1 + 0.5 + interval_s + 4
    args = ["ab", "lb", "--change", "v2-bad", "--weight", str(weight), "--for", f"{for_s:g}s",
            "--interval", f"{interval_s:g}s", "--reason", "benchmark"]
    client = probe_start(FRONTEND, rate, seconds)
    time.sleep(1.0)
    code, t0, t1, events = run_baton(args)
    reqs = probe_end(client)
    rec = {"name": name, "method": "haproxy-ab-bad", "pair": "lb", "change": "v2-bad", "weight": weight,
           "for_s": for_s, "interval_s": interval_s}
    probe_summary(rec, reqs)
    rec["baton_exit"] = code
    rec["ab_wall_s"] = round(t1 - t0, 2)
    rec["run"] = next((e.get("run") for e in events if e.get("run")), None)
    run_end = next((e for e in events if e.get("step") == "run"), None)
    rec["outcome"] = run_end.get("state") if run_end else None
    exp_begin = next((e for e in events if e.get("step") == "experiment" and e.get("state") == "begin"), None)
    exp_end = next((e for e in events if e.get("step") == "experiment" and e.get("state") in ("ok", "failed")), None)
    back = next((e for e in events if e.get("step") == "switch_back" and e.get("state") in ("ok", "failed")), None)
    rec["hosts"] = exp_begin.get("host") if exp_begin else None
    old, new = (rec["hosts"].split("->") + [None])[:2] if rec["hosts"] else ("teal", "coral")
    rec["experiment_state"] = exp_end.get("state") if exp_end else None
    rec["experiment_detail"] = exp_end.get("detail") if exp_end else None
    m = re.search(r"ABORTED at interval (\d+)", rec["experiment_detail"] or "")
    rec["aborted_interval"] = int(m.group(1)) if m else None
    samples = [e for e in events if e.get("step") == "experiment" and e.get("state") == "sample"]
    rec["samples"] = [e.get("detail") for e in samples]
    rec["experiment_to_abort_s"] = None if exp_end is None else round(exp_end.get("duration_ms", 0) / 1000.0, 3)
    rec["experiment_to_switch_back_s"] = (None if exp_begin is None or back is None
                                          else round(back["_at"] - exp_begin["_at"], 3))
    rec["switch_back_state"] = back.get("state") if back else None
    if run_end is not None:
        after_run(rec, reqs, run_end["_at"], new, old, "old")
    rec["balancer_after"] = balancer_now()
    if svg and reqs and new:
        windows = []
        set_at = split_set_at(events, ops_of(rec["run"]), "experiment")
        if set_at is not None and exp_end is not None:
            windows = [(set_at, exp_end["_at"], weight)]
        ramp_svg(svg, f"{name}: baton ab lb --change v2-bad --weight {weight} --interval {interval_s:g}s, "
                 f"{len(reqs)} requests at {rate}/s", reqs, bands_of(events), t0, new, windows,
                 weights="the split's weight until the abort (dashed)")
    return rec


def ramp_svg(path, title, reqs, bands, started, new, windows,
             weights="the weight of each ramp step (dashed)"):
    """The share of the answers that came from the updated host, per 250 ms of send time, over
    the whole run; the weights (a ramp's steps, an A/B split) as dashed lines over their windows;
    failed requests (a 500 among them) as red ticks; baton's steps as bands below."""
    w, left, right, top, base = 1000, 60, 20, 40, 240
    t0 = min(reqs[0][0], started)
    t1 = max(r[0] for r in reqs)
    span = max(t1 - t0, 0.001)
    x = lambda t: left + (t - t0) / span * (w - left - right)
    y = lambda pct: base - pct / 100.0 * (base - top)
    o = [f'<text x="{left}" y="{top - 8}" fill="#333">share of the answers from {new} per 250 ms of send '
         f'time (bars); {weights}; failed requests (red, below the axis)</text>']
    for pct in sorted({0, 100} | {w[2] for w in windows}):
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
    p.add_argument("--bad-ramps", type=int, default=3, help="of `--change v2-bad`")
    p.add_argument("--abs", type=int, default=3, help="A/B experiments of v2, each held and ended")
    p.add_argument("--bad-abs", type=int, default=1, help="A/B experiments of v2-bad")
    p.add_argument("--weight", type=int, default=20, help="the A/B split: percent to coral")
    p.add_argument("--for", dest="for_s", type=float, default=10.0, help="seconds an A/B is watched")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between A/B samples")
    p.add_argument("--hold", type=float, default=3.0, help="seconds an A/B stays held before --end")
    p.add_argument("--ramp", default="10,50,100")
    p.add_argument("--step", type=float, default=5.0, help="seconds per ramp step")
    p.add_argument("--rate", type=int, default=200)
    args = p.parse_args()
    percents = [int(x) for x in args.ramp.split(",") if int(x) < 100]

    lab("up")
    fresh_lab()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    # (the results in bench/ and BENCHMARKS.md are not the code measured: scripts/bench has just
    # removed the old SVGs)
    if subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "--", ".", ":(exclude)bench",
                       ":(exclude)BENCHMARKS.md"], check=False).returncode != 0:
        commit += "+dirty"
    failed = 0
    try:
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(json.dumps({"measured": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
                                  "commit": commit, "profile": gap.PROFILE, "rate": args.rate,
                                  "ramp": percents + [100], "step_s": args.step,
                                  "ab": {"weight": args.weight, "for_s": args.for_s,
                                         "interval_s": args.interval, "hold_s": args.hold}}) + "\n")
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
            # v2-bad: the probe as long as a whole ramp, so that it goes on well after the abort
            for i in range(1, args.bad_ramps + 1):
                fresh_lab()
                name = f"lb-ramp-bad-{i}"
                svg = os.path.join(args.svg_dir, "lb-ramp-bad.svg") if i == 1 else None
                rec = bad_ramp_run(name, args.rate, seconds, percents, args.step, svg)
                out.write(json.dumps(rec) + "\n")
                out.flush()
                say(f"{name}: exit {rec['baton_exit']} ({rec.get('outcome')}), aborted at step {rec['aborted_step']} "
                    f"({rec['aborted_percent']} %) {rec['ramp_to_abort_s']} s into the ramp (switched back at "
                    f"{rec['ramp_to_switch_back_s']} s); {rec['harmed']} harmed, {rec['failed_otherwise']} "
                    f"failed otherwise, of {rec['requests']}; after the run {rec.get('after_run_answered')} "
                    f"answers, {rec.get('after_run_from_new')} from the updated host; balancer {rec['balancer_after']}")
                if rec["baton_exit"] != 1:
                    failed += 1
            for i in range(1, args.abs + 1):
                fresh_lab()
                name = f"lb-ab-{i}"
                svg = os.path.join(args.svg_dir, "lb-ab.svg") if i == 1 else None
                rec = ab_run(name, args.rate, args.weight, args.for_s, args.interval, args.hold, svg)
                out.write(json.dumps(rec) + "\n")
                out.flush()
                say(f"{name}: exits ab {rec['baton_exit']}, report {rec['report_exit']}, end {rec['end_exit']}; "
                    f"{rec['requests']} requests, {rec['failed']} failed; coral's share watched "
                    f"{(rec.get('watched') or {}).get('share_pct')} %, held {(rec.get('held') or {}).get('share_pct')} %, "
                    f"report {rec['report'].get('new_share_pct')} %; --end {rec['end_wall_s']} s (switch after "
                    f"{rec['end_to_switch_s']} s); after it {rec.get('after_run_answered')} answers, "
                    f"{rec.get('after_run_not_new')} not from coral")
                if (rec["baton_exit"], rec["report_exit"], rec["end_exit"]) != (0, 0, 0):
                    failed += 1
            for i in range(1, args.bad_abs + 1):
                fresh_lab()
                name = f"lb-ab-bad-{i}"
                svg = os.path.join(args.svg_dir, "lb-ab-bad.svg") if i == 1 else None
                rec = bad_ab_run(name, args.rate, args.weight, args.for_s, args.interval, svg)
                out.write(json.dumps(rec) + "\n")
                out.flush()
                say(f"{name}: exit {rec['baton_exit']} ({rec.get('outcome')}), aborted at interval "
                    f"{rec['aborted_interval']} {rec['experiment_to_abort_s']} s into the experiment; "
                    f"{rec['harmed']} harmed of {rec['requests']}; after the run {rec.get('after_run_answered')} "
                    f"answers, {rec.get('after_run_from_new')} from coral; balancer {rec['balancer_after']}")
                if rec["baton_exit"] != 1:
                    failed += 1
    finally:
        fresh_lab()
    if failed:
        say(f"{failed} run(s) failed (recorded in {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
