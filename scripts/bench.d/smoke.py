#!/usr/bin/env python3
"""Checks a smoke run of the benchmarks (`scripts/bench --smoke`): every
measurement asked for produced its results and every baton run in it ended
with exit 0. Numbers are not judged (a debug build on a CI machine says
nothing about speed); that the machinery works is.

Usage: smoke.py --dir DIR NAME...   (NAME: vip-gap dns-gap pg-gap lb-gap overhead ansible fleet)
"""
import argparse
import json
import os
import sys


def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def check(d, name):
    """Problems with one measurement's results (empty: fine)."""
    if name == "vip-gap":
        rs = rows(os.path.join(d, "vip-gap.jsonl"))
        kinds = {r["name"].rsplit("-", 1)[0] for r in rs}
        want = {"vip-switchover", "vip-apply", "vip-apply-quiesce"}
        out = [f"vip-gap: no run of {k}" for k in sorted(want - kinds)]
        for r in rs:
            if r["baton_exit"] != 0:
                out.append(f'{r["name"]}: baton exited {r["baton_exit"]}')
            if r["requests"] < 100 or r["gap_ms"] is None:
                out.append(f'{r["name"]}: {r["requests"]} requests, gap {r["gap_ms"]}: the client saw no switch')
        for svg in ("vip-switchover.svg", "vip-apply.svg", "vip-apply-quiesce.svg"):
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
        want = {"haproxy", "vip", "haproxy-ramp"}
        out = [f"lb-gap: no run of {m}" for m in sorted(want - methods)]
        for r in rs:
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
        for svg in ("lb-switchover.svg", "lb-vip-switchover.svg", "lb-ramp.svg"):
            if not os.path.exists(os.path.join(d, svg)):
                out.append(f"lb-gap: no {svg}")
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
