#!/usr/bin/env python3
"""Write unavailability of a PostgreSQL hand-over (issue 14): the lab pair `pg` is handed over
while a writer in the client namespace inserts one row per transaction through the VIP as fast
as it can (`scripts/pgwriter run`) and a watcher asks both servers every 10 ms whether they take
writes (`pgwriter roles`). Three methods, in one run:

  baton-switchover  `baton switchover pg` (alternating directions)
  baton-apply       `baton apply pg --change buffers64`, then `--change buffers32` (a restart of
                    each server besides the hand-over; the pair ends with the setting it had)
  hand              the same hand-over by hand: scripts/bench.d/pg-handover, the role hook run
                    directly in the hosts' namespaces and the VIP moved with ip addr del/add and
                    arping (what an operator or a repmgr-style script does; no SSH, no journal)
  hand-add-first    the same, but the VIP is added on the new primary and announced before it
                    leaves the old one (pg-handover --add-first: an experiment, not baton's way)

Per run (one JSON line in --out): the hand-over's wall time and exit code; the longest time
between two acknowledged writes (write unavailability), when it began and ended relative to
the hand-over's start; rows acked, the rate, rows lost (`pgwriter check` on the new primary;
must be 0); both-writable moments (must be 0); each step's begin/end (baton: its journal;
hand: the script's marks). SVG timelines of the run with the median gap of each method go to
--svg-dir (pg-switchover.svg, pg-apply.svg, pg-hand.svg), and of the first baton switchover
whose first write came 800 ms or more after the switch, if any (pg-switchover-late.svg).

Usage: pggap.py --out FILE.jsonl --svg-dir DIR [--switchovers N] [--applies N] [--hand N]
                [--hand-add-first N] [--lead S] [--tail S]
Brings the lab up when needed (keeping its fleet size), starts from `scripts/lab reset` with an
empty state dir, and ends the same way (baton's state does not know about hand-run moves).
Hold /run/baton-lab-tests.lock around it (scripts/bench does, with flock -o). Root only.
"""
import argparse
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# Which build to measure (scripts/bench --smoke uses the debug build).
PROFILE = os.environ.get("BATON_BENCH_PROFILE", "release")
LAB = "/var/lib/baton-lab"
CONFIG = f"{LAB}/config/baton.toml"
STATE = f"{LAB}/state"
VIP = "198.18.0.130"
ADDR = {"pga": "198.18.0.31", "pgb": "198.18.0.32"}
HOOK = "/usr/local/sbin/baton-pg"
# Debian's python with psycopg2 (a python3 earlier on PATH may lack it)
PY = "/usr/bin/python3"
PGWRITER = os.path.join(ROOT, "scripts/pgwriter")
HANDOVER = os.path.join(HERE, "pg-handover")
STEPS = ("demote", "catch_up", "promote", "switch")
CHANGES = ("buffers64", "buffers32")


def say(text):
    print(f"bench: pg-gap: {text}", file=sys.stderr, flush=True)


def dsn(host):
    return f"host={host} user=app dbname=app connect_timeout=2"


def lab(*args):
    subprocess.run([os.path.join(ROOT, "scripts/lab"), *args], check=True, stdout=subprocess.DEVNULL)


def fresh_lab():
    """The initial roles and an empty state dir: baton and the lab agree again."""
    lab("reset")
    shutil.rmtree(STATE, ignore_errors=True)


def position(host):
    """(state, position) from the role hook on `host`, run there as postgres."""
    out = subprocess.run(
        ["ip", "netns", "exec", f"baton-{host}", "setpriv", "--reuid=postgres", "--regid=postgres",
         "--init-groups", "--", "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C",
         "LC_ALL=C", "HOME=/var/lib/postgresql", HOOK, "position"],
        cwd="/", capture_output=True, text=True, check=False)
    parts = out.stdout.split()
    return (parts[0], parts[1]) if len(parts) >= 2 else ("unknown", out.stderr.strip())


def roles():
    """(primary, standby), or None when the pair is not one writable primary and one standby."""
    state = {h: position(h)[0] for h in ADDR}
    prim = [h for h, s in state.items() if s == "primary"]
    stby = [h for h, s in state.items() if s == "standby"]
    if len(prim) == 1 and len(stby) == 1:
        return prim[0], stby[0]
    say(f"the pair is not one primary and one standby: {state}")
    return None


def pgwriter(*args):
    return ["ip", "netns", "exec", "baton-client", PY, PGWRITER, *args]


def last_json(text):
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return {}


def ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def journal_steps(run_id):
    """{step: (begin epoch, end epoch, duration ms, ok)} of baton's run `run_id`, from the journal."""
    begin, steps = {}, {}
    names = sorted(f for f in os.listdir(STATE) if f.startswith("pg.journal")) if os.path.isdir(STATE) else []
    for name in names:
        with open(os.path.join(STATE, name), encoding="utf-8") as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                if r.get("run") != run_id:
                    continue
                if r["event"] == "begin":
                    begin[r["step"]] = ts(r["at"])
                elif r["event"] == "end":
                    end = ts(r["at"])
                    start = begin.get(r["step"], end - r["duration_ms"] / 1000)
                    steps[r["step"]] = (start, end, r["duration_ms"], r["ok"])
    return steps


def baton_handover(argv):
    """Runs baton; (exit, start, end, steps, detail)."""
    baton = os.path.join(ROOT, f"target/{PROFILE}/baton")
    start = time.time()
    p = subprocess.run(["ip", "netns", "exec", "baton-ctl", baton, "--json", "--config", CONFIG] + argv,
                       capture_output=True, text=True, check=False)
    end = time.time()
    events = []
    for line in p.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    run_id = next((e["run"] for e in events if e.get("run")), None)
    steps = journal_steps(run_id) if run_id else {}
    outcome = next((e for e in reversed(events) if e.get("step") == "run"), {})
    detail = outcome.get("detail") or p.stderr.strip()[-300:]
    return p.returncode, start, end, steps, {"run": run_id, "outcome": outcome.get("state"), "detail": detail}


def hand_handover(old, new, add_first=False):
    """Runs scripts/bench.d/pg-handover; (exit, start, end, steps, detail)."""
    start = time.time()
    p = subprocess.run([HANDOVER] + (["--add-first"] if add_first else []) + [old, new],
                       capture_output=True, text=True, check=False)
    end = time.time()
    begin, steps, notes = {}, {}, {}
    # the sequence's end (the script then waits for its background arping, as baton does not)
    end = next((float(line.split()[0]) for line in p.stdout.splitlines() if line.split()[1:] == ["done"]), end)
    for line in p.stdout.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 3:
            continue
        at, step, what = float(parts[0]), parts[1], parts[2]
        if what == "begin":
            begin[step] = at
        elif what == "end" and step in begin:
            steps[step] = (begin[step], at, round((at - begin[step]) * 1000), True)
            if len(parts) > 3:
                notes[step] = parts[3]
    return p.returncode, start, end, steps, {"notes": notes, "detail": p.stderr.strip()[-300:]}


def stop(child):
    child.send_signal(signal.SIGTERM)
    try:
        out, err = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
    return last_json(out) or {"error": err.strip()[-300:]}


def measure(name, method, old, new, handover, args, tmp):
    """One hand-over under the writer and the watcher; its record, and what the SVG needs."""
    table = f"bench_{name.replace('-', '_')}_{os.getpid()}"
    acked = os.path.join(tmp, f"{name}.acked")
    rolesf = os.path.join(tmp, f"{name}.roles")
    writer = subprocess.Popen(pgwriter("run", "--dsn", dsn(VIP), "--table", table, "--out", acked),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watcher = subprocess.Popen(pgwriter("roles", "--hosts", f"{ADDR['pga']},{ADDR['pgb']}", "--out", rolesf),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(args.lead)
    code, t0, t1, steps, extra = handover()
    time.sleep(args.tail)
    wrote = stop(writer)
    seen = stop(watcher)
    chk = subprocess.run(pgwriter("check", "--dsn", dsn(ADDR[new]), "--table", table, "--acked", acked),
                         capture_output=True, text=True, check=False)
    check = last_json(chk.stdout)
    subprocess.run(["ip", "netns", "exec", "baton-client", "psql", "-X", "-q", dsn(ADDR[new]),
                    "-c", f"drop table if exists {table}"],
                   capture_output=True, check=False)
    acks = []
    if os.path.exists(acked):
        with open(acked, encoding="ascii") as f:
            acks = sorted(float(line.split()[1]) for line in f if len(line.split()) == 2)
    # The hand-over's gap: between the last write acknowledged before demote ended (the old
    # primary is stopped then) and the first one after; no write can be acknowledged in
    # between. Any other long gap (a stall with no hand-over going on) is reported apart.
    demoted = steps.get("demote", (None, None))[1]
    gap, gap_at, other, other_at = 0.0, None, 0.0, None
    for a, b in zip(acks, acks[1:]):
        if (demoted is not None and a <= demoted <= b) or (demoted is None and b - a > gap):
            gap, gap_at = b - a, a
        elif b - a > other:
            other, other_at = b - a, a
    if demoted is not None and gap_at is None and acks and acks[-1] <= demoted:
        gap, gap_at = None, acks[-1]  # no write after demote: the outage outlasted the writer

    def ms(t):
        return None if t is None else round((t - t0) * 1000, 1)

    before = [a for a in acks if t0 - args.lead + 0.5 <= a < t0]
    switch_end = steps.get("switch", (None, None))[1]
    record = {
        "load_1m": round(os.getloadavg()[0], 2),
        "name": name,
        "method": method,
        "from": old,
        "to": new,
        "exit": code,
        "wall_s": round(t1 - t0, 3),
        "gap_ms": round(gap * 1000, 1) if gap else None,
        "gap_began_ms": ms(gap_at),
        "gap_ended_ms": ms(gap_at + gap) if gap else None,
        "gap_end_after_switch_ms": round((gap_at + gap - switch_end) * 1000, 1) if gap and switch_end else None,
        "other_longest_gap_ms": round(other * 1000, 1) if other_at is not None else None,
        "other_gap_began_ms": ms(other_at),
        "writer_longest_gap_ms": round(wrote["longest_gap_s"] * 1000, 1) if "longest_gap_s" in wrote else None,
        "acked": len(acks),
        "rate_per_s": wrote.get("rate_per_s"),
        "rate_before_per_s": round(len(before) / (args.lead - 0.5), 1) if args.lead > 0.5 else None,
        "errors": wrote.get("errors"),
        "error_messages": wrote.get("error_messages"),
        "first_ack_after_s": wrote.get("first_ack_after_s"),
        "tail_s": wrote.get("tail_s"),
        "lost": check.get("lost_count"),
        "extra": check.get("extra_count"),
        "check_error": None if check else chk.stderr.strip()[-300:],
        "both_writable": seen.get("both_writable_moments"),
        "none_writable_polls": seen.get("none_writable_polls"),
        "role_polls": seen.get("polls"),
        "steps": {s: {"begin_ms": ms(b), "end_ms": ms(e), "ms": d, "ok": ok}
                  for s, (b, e, d, ok) in sorted(steps.items(), key=lambda kv: kv[1][0])},
    }
    record.update(extra)
    drawing = {"t0": t0, "t1": t1, "acks": acks, "steps": steps, "gap": (gap_at, gap or 0.0),
               "timeline": seen.get("timeline", []),
               "start": t0 - args.lead, "stop": t1 + args.tail}
    return record, drawing


# --- the timeline -------------------------------------------------------------------------------

ROLE_COLOUR = {"writable": "#2ca02c", "standby": "#1f77b4", "down": "#bbbbbb"}


def svg(path, title, d):
    """One panel for the whole run (ack rate), one zoomed on the longest gap (one tick per ack)."""
    t0, acks, steps = d["t0"], d["acks"], d["steps"]
    gap_at, gap = d["gap"]
    if not acks:
        return
    w, left, right = 1000, 70, 20
    o = []

    def panel(a, b, base, label, tick, unit_ms, rate):
        span = max(b - a, 1e-3)

        def x(t):
            return left + (t - a) / span * (w - left - right)

        top = base - 80
        o.append(f'<text x="{left}" y="{top - 8}" fill="#333">{label}</text>')
        if gap_at is not None and gap_at + gap >= a and gap_at <= b:
            x0, x1 = x(max(gap_at, a)), x(min(gap_at + gap, b))
            o.append(f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1):.1f}" height="{base - top}" '
                     f'fill="#d62728" fill-opacity="0.15"/>')
            # right of the shaded window, or inside it at its right edge when there is no room
            at, anchor = (x1 + 3, "start") if x1 + 110 < w - right else (x1 - 3, "end")
            o.append(f'<text x="{at:.1f}" y="{top + 12}" fill="#d62728" text-anchor="{anchor}">'
                     f'write gap {gap * 1000:.0f} ms</text>')
        if rate:
            bin_s = 0.05
            n = int(span / bin_s) + 1
            counts = [0] * n
            for t in acks:
                if a <= t < b:
                    counts[min(int((t - a) / bin_s), n - 1)] += 1
            peak = max(counts) or 1
            pts = " ".join(f"{x(a + (i + 0.5) * bin_s):.1f},{base - c / peak * 70:.1f}" for i, c in enumerate(counts))
            o.append(f'<polyline points="{pts}" fill="none" stroke="#333" stroke-width="1"/>')
            o.append(f'<text x="{left - 4}" y="{base - 66}" text-anchor="end">{peak / bin_s:.0f}/s</text>')
            o.append(f'<text x="{left - 4}" y="{base}" text-anchor="end">0</text>')
        else:
            for t in acks:
                if a <= t <= b:
                    o.append(f'<line x1="{x(t):.1f}" y1="{base}" x2="{x(t):.1f}" y2="{base - 40}" '
                             f'stroke="#333" stroke-width="0.8"/>')
        o.append(f'<line x1="{left}" y1="{base + 1}" x2="{w - right}" y2="{base + 1}" stroke="black"/>')
        # ticks, relative to the hand-over's start
        first = (int((a - t0) / tick) - 1) * tick
        t = first
        while t0 + t <= b + 1e-9:
            if t0 + t >= a - 1e-9:
                text = f"{t * 1000:.0f} ms" if unit_ms else f"{t:.1f} s"
                o.append(f'<line x1="{x(t0 + t):.1f}" y1="{base + 1}" x2="{x(t0 + t):.1f}" y2="{base + 5}" stroke="black"/>')
                o.append(f'<text x="{x(t0 + t):.1f}" y="{base + 16}" text-anchor="middle">{text}</text>')
            t += tick
        # both servers' roles, as the watcher saw them
        for i, host in enumerate(ADDR):
            y = base + 24 + i * 12
            o.append(f'<text x="{left - 4}" y="{y + 9}" text-anchor="end">{host}</text>')
            changes = [(e["t"], e["role"]) for e in d["timeline"] if e["host"] == ADDR[host]]
            for j, (s, role) in enumerate(changes):
                e = changes[j + 1][0] if j + 1 < len(changes) else d["stop"]
                if e < a or s > b:
                    continue
                o.append(f'<rect x="{x(max(s, a)):.1f}" y="{y}" width="{max(x(min(e, b)) - x(max(s, a)), 0.5):.1f}" '
                         f'height="10" fill="{ROLE_COLOUR.get(role, "#ff7f0e")}"/>')
        # the hand-over's steps
        y = base + 52
        for i, (name, (s, e, _, ok)) in enumerate(sorted(steps.items(), key=lambda kv: kv[1][0])):
            if e < a or s > b:
                continue
            yy = y + (i % 3) * 15
            fill = "#eee" if ok else "#f4cccc"
            o.append(f'<rect x="{x(max(s, a)):.1f}" y="{yy}" width="{max(x(min(e, b)) - x(max(s, a)), 1.5):.1f}" '
                     f'height="13" fill="{fill}" stroke="#999"/>')
            if x(min(e, b)) - x(max(s, a)) >= 6 * len(name) or not rate:
                o.append(f'<text x="{x(max(s, a)) + 3:.1f}" y="{yy + 10}">{name}</text>')
            if name in STEPS and not rate:
                for edge in (s, e):
                    if a <= edge <= b:
                        o.append(f'<line x1="{x(edge):.1f}" y1="{top}" x2="{x(edge):.1f}" y2="{yy}" '
                                 f'stroke="#777" stroke-dasharray="3,3"/>')
        return y + 45

    a, b = d["start"], d["stop"]
    bottom = panel(a, b, 120, "whole run: acknowledged writes per second (50 ms bins); red: the write gap; "
                   "role bars: writable, standby, down", 1.0 if b - a < 15 else 2.0, False, True)
    if gap_at is not None:
        marks = [v for (s, e, _, _) in (steps[n] for n in STEPS if n in steps) for v in (s, e)]
        z0 = min([gap_at] + marks) - 0.1
        z1 = max([gap_at + gap] + marks) + 0.1
        span = z1 - z0
        tick = 0.05 if span < 0.6 else 0.1 if span < 1.5 else 0.25 if span < 4 else 0.5
        bottom = panel(z0, z1, bottom + 110, "around the hand-over: one tick per acknowledged write; "
                       "dashed: start and end of demote, catch_up, promote, switch", tick, True, False)
    h = bottom + 22
    legend, lx = [], left
    for role, colour in ROLE_COLOUR.items():
        legend.append(f'<rect x="{lx}" y="{h - 14}" width="10" height="10" fill="{colour}"/>'
                      f'<text x="{lx + 14}" y="{h - 5}">{role}</text>')
        lx += 90
    head = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
            f'<rect width="{w}" height="{h}" fill="white"/>',
            f'<text x="{left}" y="18" font-size="13">{title}</text>']
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(head + o + legend + ["</svg>"]) + "\n")


# --- the runs -----------------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--svg-dir", required=True)
    p.add_argument("--switchovers", type=int, default=10)
    p.add_argument("--applies", type=int, default=4)
    p.add_argument("--hand", type=int, default=10)
    p.add_argument("--hand-add-first", type=int, default=0)
    p.add_argument("--lead", type=float, default=2.0, help="seconds of writing before the hand-over")
    p.add_argument("--tail", type=float, default=2.0, help="seconds of writing after it")
    args = p.parse_args()

    lab("up")
    fresh_lab()
    plan = [("baton-switchover", i) for i in range(args.switchovers)]
    plan += [("baton-apply", i) for i in range(args.applies)]
    plan += [("hand", i) for i in range(args.hand)]
    plan += [("hand-add-first", i) for i in range(args.hand_add_first)]
    drawings = {}
    failed = 0
    tmp = tempfile.mkdtemp(prefix="pg-gap.")
    try:
        with open(args.out, "w", encoding="utf-8") as out:
            commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                    capture_output=True, text=True, check=False).stdout.strip()
            if subprocess.run(["git", "-C", ROOT, "diff", "--quiet"], check=False).returncode != 0:
                commit += "+dirty"
            out.write(json.dumps({"measured": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
                                  "commit": commit, "profile": PROFILE,
                                  "lead_s": args.lead, "tail_s": args.tail}) + "\n")
            for method, i in plan:
                name = f"{method}-{i + 1}"
                pair = roles()
                if pair is None:
                    fresh_lab()
                    pair = roles()
                    if pair is None:
                        raise SystemExit("pg-gap: the lab's pair pg has no primary and standby after a reset")
                old, new = pair
                if method == "baton-switchover":
                    run = functools.partial(baton_handover, ["switchover", "pg", "--reason", "benchmark"])
                elif method == "baton-apply":
                    run = functools.partial(baton_handover, ["apply", "pg", "--change", CHANGES[i % 2],
                                                             "--reason", "benchmark"])
                else:
                    run = functools.partial(hand_handover, old, new, method == "hand-add-first")
                rec, drawing = measure(name, method, old, new, run, args, tmp)
                if method == "baton-apply":
                    rec["change"] = CHANGES[i % 2]
                now = roles()
                rec["roles_after"] = None if now is None else {"primary": now[0], "standby": now[1]}
                out.write(json.dumps(rec) + "\n")
                out.flush()
                drawings.setdefault(method, []).append((rec, drawing))
                say(f"{name}: {old} -> {new}, exit {rec['exit']}, wall {rec['wall_s']:.2f} s, "
                    f"gap {rec['gap_ms']} ms (from {rec['gap_began_ms']} ms; other {rec['other_longest_gap_ms']} ms), "
                    f"{rec['acked']} acked, lost {rec['lost']}, both writable {rec['both_writable']}")
                if rec["exit"] != 0 or now != (new, old):
                    failed += 1
                    say(f"{name} did not end with {new} primary and {old} its standby "
                        f"({rec.get('detail')}); resetting the lab")
                    fresh_lab()
        # the run with the median gap of each method (the lower middle one of an even count)
        files = {"baton-switchover": "pg-switchover.svg", "baton-apply": "pg-apply.svg", "hand": "pg-hand.svg"}
        what = {"baton-switchover": "baton switchover pg", "baton-apply": "baton apply pg",
                "hand": "by hand (scripts/bench.d/pg-handover)"}
        for method, runs in drawings.items():
            if method not in files:
                continue
            ok = [r for r in runs if r[0]["gap_ms"] is not None] or runs
            ok.sort(key=lambda r: r[0]["gap_ms"] or 0)
            rec, drawing = ok[(len(ok) - 1) // 2]
            title = (f"{rec['name']}: {what[method]}, {rec['from']} to {rec['to']}; the run with the median "
                     f"gap ({rec['gap_ms']} ms) of {len(runs)}; x: time from its start")
            svg(os.path.join(args.svg_dir, files[method]), title, drawing)
        # and the first baton switchover whose first write came a second late
        late = [r for r in drawings.get("baton-switchover", []) if (r[0]["gap_end_after_switch_ms"] or 0) >= 800]
        if late:
            rec, drawing = late[0]
            title = (f"{rec['name']}: baton switchover pg, {rec['from']} to {rec['to']}; late: the first write "
                     f"{rec['gap_end_after_switch_ms']:.0f} ms after the switch (gap {rec['gap_ms']} ms)")
            svg(os.path.join(args.svg_dir, "pg-switchover-late.svg"), title, drawing)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        fresh_lab()
    if failed:
        say(f"{failed} run(s) failed (recorded in {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
