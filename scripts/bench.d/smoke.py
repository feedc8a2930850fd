#!/usr/bin/env python3
"""Checks a smoke run of the benchmarks (`scripts/bench --smoke`): every
measurement asked for produced its results and every baton run in it ended
with exit 0, except lb-gap's runs of the faulty change v2-bad, which must
abort at once (exit 1) and leave all traffic on the old host. Speed is not
judged (a debug build on a CI machine says nothing about it); that the
machinery works, and what baton decides, is.

Usage: smoke.py --dir DIR NAME...   (NAME: vip-gap dns-gap pg-gap lb-gap hold watch handover overhead ansible fleet)
"""
import argparse
import json
import os
import sys


def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def lb_bad_or_ab(r):
    """Problems with one run of v2-bad (a ramp or an A/B: it must abort at its first step or
    interval, exit 1, have harmed requests and leave every answer afterwards to the old host) or
    of an A/B of v2 (its three commands exit 0, nothing fails, coral gets about the weight while
    watched and held, by the probe and by the report's totals, and every answer after --end)."""
    out = []
    n = r["name"]
    if r["method"] != "haproxy-ab":
        if r["baton_exit"] != 1:
            out.append(f'{n}: baton exited {r["baton_exit"]}, not 1 (the abort): {r.get("outcome")}')
        first = r.get("aborted_step") if r["method"] == "haproxy-ramp-bad" else r.get("aborted_interval")
        if first != 1:
            out.append(f"{n}: aborted at {first}, not at the first "
                       f'{"step" if r["method"] == "haproxy-ramp-bad" else "interval"}')
        if not r.get("harmed"):
            out.append(f"{n}: no request harmed (answered 500): did v2-bad's fault reach the probe?")
        if r.get("failed_otherwise"):
            out.append(f'{n}: {r["failed_otherwise"]} request(s) failed otherwise than with a 500: {r.get("failures")}')
        if (r.get("after_run_answered") or 0) < 100:
            out.append(f'{n}: {r.get("after_run_answered")} answers after the run: too few to tell where traffic went')
        if r.get("after_run_not_old") != 0:
            out.append(f'{n}: {r.get("after_run_not_old")} answers after the run came from another host than the '
                       f'old one ({r.get("after_run_by_host")})')
        return out
    w = r["weight"]
    for what in ("baton_exit", "report_exit", "end_exit"):
        if r.get(what) != 0:
            out.append(f"{n}: {what} {r.get(what)}: {r.get('end_message') if what == 'end_exit' else r.get('outcome')}")
    if r["failed"]:
        out.append(f'{n}: {r["failed"]} request(s) failed: {r.get("failures")}')
    for phase in ("watched", "held"):
        s = r.get(phase) or {}
        # weighted round robin is exact; 5 points leave room for a slow machine
        if s.get("share_pct") is None or abs(s["share_pct"] - w) > 5:
            out.append(f'{n}: while {phase}, coral answered {s.get("share_pct")} % of {s.get("answered")}, not about {w} %')
    rep = r.get("report") or {}
    if "held" not in (rep.get("state") or ""):
        out.append(f'{n}: the report during the hold says {rep.get("state")!r}')
    if rep.get("new_share_pct") is None or abs(rep["new_share_pct"] - w) > 5:
        out.append(f'{n}: the report\'s totals give coral {rep.get("new_share_pct")} %, not about {w} %')
    if (r.get("after_run_answered") or 0) < 100 or r.get("after_run_not_new") != 0:
        out.append(f'{n}: after --end, {r.get("after_run_not_new")} of {r.get("after_run_answered")} answers '
                   f'not from coral ({r.get("after_run_by_host")})')
    return out


def hold_run(r):
    """Problems with one run of the hold measurement: the apply before it held (revert) or finished
    (rollback); the command exited 0 (rolled_back, ok); the clients saw green on version 2 before
    it and blue on version 1 once it had switched, until the end, and never another host and
    version through the VIP (blue on 2, green on 1); the VIP moved back in the step
    it should (switch_back, switch), and all answers came from blue on version 1 only after that
    step began; afterwards both hosts are on version 1 and nothing is held."""
    out = []
    n, kind = r["name"], r["kind"]
    prep = r.get("prepare") or {}
    want = ("held", "rolled_back", "switch_back") if kind == "revert" else ("ok", "ok", "switch")
    if prep.get("exit") != 0 or prep.get("outcome") != want[0]:
        out.append(f'{n}: the apply before it exited {prep.get("exit")} ({prep.get("outcome")}), not 0 ({want[0]}): '
                   f'{prep.get("detail")}')
        return out
    if r.get("baton_exit") != 0 or r.get("outcome") != want[1]:
        out.append(f'{n}: {r.get("command")} exited {r.get("baton_exit")} ({r.get("outcome")}), not 0 ({want[1]}): '
                   f'{r.get("message")}')
    before = r.get("poll_before") or {}
    if before.get("green v2", 0) < 50 or set(before) - {"green v2"}:
        out.append(f"{n}: before the command the poller saw {before}, not green on version 2 alone")
    mixed = set(r.get("poll_all") or {}) - {"green v2", "blue v1", "FAIL"}
    if mixed:
        out.append(f"{n}: the poller saw {sorted(mixed)}: a host on the other version served the VIP")
    if r.get("to_all_old_s") is None:
        out.append(f"{n}: the clients never saw all answers from blue on version 1")
    if r.get("switch_step") != want[2]:
        out.append(f'{n}: the VIP went to blue in the step {r.get("switch_step")}, not {want[2]}')
    elif r.get("switch_begin_to_all_old_ms") is None or r["switch_begin_to_all_old_ms"] < 0:
        out.append(f'{n}: all on the old version {r.get("switch_begin_to_all_old_ms")} ms after the switch began')
    for what in ("poll_after_exit", "probe_after_exit"):
        c = r.get(what) or {}
        good = c.get("blue v1", 0) + c.get("blue v?", 0)
        if good < 100 or set(c) - {"blue v1", "blue v?"}:
            out.append(f"{n}: after the command, {what.split('_')[0]} answers {c}: not all from blue on version 1")
    st = r.get("status_after") or {}
    if st.get("versions") != {"blue": "1", "green": "1"} or st.get("held"):
        out.append(f'{n}: afterwards versions {st.get("versions")}, held {st.get("held")}')
    return out


def check(d, name):
    """Problems with one measurement's results (empty: fine)."""
    if name == "vip-gap":
        rs = rows(os.path.join(d, "vip-gap.jsonl"))
        kinds = {r["name"].rsplit("-", 1)[0] for r in rs}
        want = {"vip-switchover", "vip-apply", "vip-apply-quiesce", "vip-6-switchover", "vip-6-apply"}
        out = [f"vip-gap: no run of {k}" for k in sorted(want - kinds)]
        for r in rs:
            if r["baton_exit"] != 0:
                out.append(f'{r["name"]}: baton exited {r["baton_exit"]}')
            if r["requests"] < 100 or r["gap_ms"] is None:
                out.append(f'{r["name"]}: {r["requests"]} requests, gap {r["gap_ms"]}: the client saw no switch')
        for svg in ("vip-switchover.svg", "vip-apply.svg", "vip-apply-quiesce.svg",
                    "vip-6-switchover.svg", "vip-6-apply.svg"):
            if not os.path.exists(os.path.join(d, svg)):
                out.append(f"vip-gap: no {svg}")
        return out
    if name == "dns-gap":
        rs = rows(os.path.join(d, "dns-gap.jsonl"))
        out = [] if rs else ["dns-gap: no run"]
        for r in rs:
            if r["exit"] != 0:
                out.append(f'{r["name"]}: baton exited {r["exit"]}')
            if r["update_to_all_new_ms"] is None or r["servers"] < 2:
                out.append(f'{r["name"]}: not every one of the {r["servers"]} server(s) answered the new address')
            if r["bad_count"]:
                out.append(f'{r["name"]}: {r["bad_count"]} queries without a good answer: {r["bad_answers"][:3]}')
        for svg in ("dns-primary.svg", "dns-secondary.svg"):
            if not os.path.exists(os.path.join(d, svg)):
                out.append(f"dns-gap: no {svg}")
        return out
    if name == "pg-gap":
        rs = [r for r in rows(os.path.join(d, "pg-gap.jsonl")) if "method" in r]
        methods = {r["method"] for r in rs}
        want = {"baton-switchover", "baton-apply", "hand"}
        out = [f"pg-gap: no run of {m}" for m in sorted(want - methods)]
        for r in rs:
            if r["exit"] != 0:
                out.append(f'{r["name"]}: exited {r["exit"]}: {r.get("detail")}')
            if r["gap_ms"] is None or (r["acked"] or 0) < 100:
                out.append(f'{r["name"]}: {r["acked"]} writes acknowledged, gap {r["gap_ms"]}: the writer saw no hand-over')
            if r["lost"] != 0:
                out.append(f'{r["name"]}: acknowledged writes lost: {r["lost"]} ({r.get("check_error")})')
            if r["both_writable"] != 0:
                out.append(f'{r["name"]}: both servers took writes in {r["both_writable"]} polls')
            if r.get("roles_after") != {"primary": r["to"], "standby": r["from"]}:
                out.append(f'{r["name"]}: roles afterwards {r.get("roles_after")}, not {r["to"]} primary and {r["from"]} standby')
        for svg in ("pg-switchover.svg", "pg-apply.svg", "pg-hand.svg"):
            if not os.path.exists(os.path.join(d, svg)):
                out.append(f"pg-gap: no {svg}")
        return out
    if name == "lb-gap":
        rs = [r for r in rows(os.path.join(d, "lb-gap.jsonl")) if "method" in r]
        methods = {r["method"] for r in rs}
        want = {"haproxy", "vip", "haproxy-ramp", "haproxy-ramp-bad", "haproxy-ab", "haproxy-ab-bad"}
        out = [f"lb-gap: no run of {m}" for m in sorted(want - methods)]
        for r in rs:
            if r["method"] in ("haproxy-ramp-bad", "haproxy-ab-bad", "haproxy-ab"):
                out += lb_bad_or_ab(r)
                continue
            if r["baton_exit"] != 0:
                out.append(f'{r["name"]}: baton exited {r["baton_exit"]}: {r.get("message")}')
            if r["requests"] < 100 or r["gap_ms"] is None:
                out.append(f'{r["name"]}: {r["requests"]} requests, gap {r["gap_ms"]}: the client saw no switch')
            if r["method"] != "haproxy-ramp":
                continue
            steps = r.get("ramp_steps", [])
            if len(steps) != len(r["ramp"]) - 1:
                out.append(f'{r["name"]}: {len(steps)} ramp step(s) measured, not {len(r["ramp"]) - 1}')
            for s in steps:
                # the weights must show (round-robin by weight is exact; 10 points leave room for a slow machine)
                if s["share_pct"] is None or abs(s["share_pct"] - s["percent"]) > 10:
                    out.append(f'{r["name"]}: at {s["percent"]} % the updated host answered {s["share_pct"]} % '
                               f'of {s["answered"]} requests')
        for svg in ("lb-switchover.svg", "lb-vip-switchover.svg", "lb-ramp.svg", "lb-ramp-bad.svg",
                    "lb-ab.svg", "lb-ab-bad.svg"):
            if not os.path.exists(os.path.join(d, svg)):
                out.append(f"lb-gap: no {svg}")
        return out
    if name == "hold":
        rs = [r for r in rows(os.path.join(d, "hold-gap.jsonl")) if "kind" in r]
        kinds = {(r["kind"], r.get("change")) for r in rs}
        want = {("revert", "v2"), ("rollback", "v2"), ("revert", "v2-slow"), ("rollback", "v2-slow")}
        out = [f"hold: no run of {k} with {c}" for k, c in sorted(want - kinds)]
        for r in rs:
            out += hold_run(r)
        for svg in ("hold-revert.svg", "hold-rollback.svg", "hold-revert-slow.svg", "hold-rollback-slow.svg"):
            if not os.path.exists(os.path.join(d, svg)):
                out.append(f"hold: no {svg}")
        return out
    if name == "watch":
        rs = [r for r in rows(os.path.join(d, "watch.jsonl")) if "kind" in r]
        out = [f"watch: no {k} run" for k in ("fast", "kill") if not any(r["kind"] == k for r in rs)]
        for r in rs:
            if r.get("failovers") != 1 or r.get("outcome") != "ok":
                out.append(f'watch {r["kind"]}: {r.get("failovers")} failover(s) started, outcome {r.get("outcome")}')
            if r["kind"] == "kill" and not r.get("new_leader"):
                out.append("watch kill: no other watcher took over")
        return out
    if name == "handover":
        rs = [r for r in rows(os.path.join(d, "handover.jsonl")) if "variant" in r]
        out = [f"handover: no {v} switch" for v in ("classic", "overlap", "keepalived", "classic6", "overlap6")
               if not any(r["variant"] == v for r in rs)]
        for r in rs:
            sw = r.get("switch") or {}
            v = r["variant"]
            if sw.get("exit", 0) != 0:
                out.append(f'handover {v} round {r.get("round")}: the switch exited {sw.get("exit")}')
            detail = sw.get("detail") or ""
            if v.startswith("overlap") and "(handover overlap)" not in detail:
                out.append(f'handover {v} round {r.get("round")}: not an overlap: {detail}')
            if v.startswith("classic") and "(handover overlap)" in detail:
                out.append(f'handover {v} round {r.get("round")}: an overlap, not the classic order: {detail}')
        return out
    if name == "overhead":
        rs = rows(os.path.join(d, "overhead.jsonl"))
        out = [] if rs else ["overhead: no run"]
        out += [f'overhead {r.get("name")}: baton exited {r.get("exit")}' for r in rs if r.get("exit") != 0]
        return out
    if name == "ansible":
        rs = [r for r in rows(os.path.join(d, "ansible.jsonl")) if "tool" in r]
        out = [] if rs else ["ansible: no run"]
        out += [f'ansible {r.get("tool")}: exited {r.get("exit")}' for r in rs if r.get("exit") != 0]
        return out
    if name == "fleet":
        with open(os.path.join(d, "fleet.tsv")) as f:
            lines = [line.split("\t") for line in f.read().splitlines() if line]
        out = [] if lines else ["fleet: no run"]
        out += [f"fleet {n} pairs at {c}: baton exited {code}" for n, c, _, _, code in lines if code != "0"]
        return out
    return [f"unknown measurement {name}"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("names", nargs="+")
    a = p.parse_args()
    problems = []
    for name in a.names:
        try:
            problems += check(a.dir, name)
        except (OSError, ValueError, KeyError) as e:
            problems.append(f"{name}: results missing or unreadable: {e}")
    for line in problems:
        print(f"smoke: FAIL {line}")
    print(f"smoke: {len(a.names)} measurement(s), {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
