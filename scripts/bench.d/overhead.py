#!/usr/bin/env python3
"""Controller overhead: runs baton cycles on a lab pair and compares the
process's wall time with the time its journal says the steps took (remote
commands, checks, configured waits: everything baton waits for).

Usage: overhead.py --config FILE --pair NAME --reps N --out FILE.jsonl -- ARGS...
ARGS is the baton command after `--config FILE` (e.g. `switchover web`);
`{change}` in ARGS alternates v2/v1 between repetitions.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Which build to measure (scripts/bench --smoke uses the debug build).
PROFILE = os.environ.get("BATON_BENCH_PROFILE", "release")


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def last_run(journal):
    records = [json.loads(l) for l in open(journal) if l.strip()]
    start = max(i for i, r in enumerate(records) if r["event"] == "start")
    run = records[start]["run"]
    mine = [r for r in records[start:] if r.get("run") == run]
    return mine


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    p.add_argument("--pair", required=True)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("args", nargs=argparse.REMAINDER)
    a = p.parse_args()
    args = a.args[1:] if a.args and a.args[0] == "--" else a.args
    baton = os.path.join(ROOT, f"target/{PROFILE}/baton")
    state = os.path.join(os.path.dirname(a.config), "..", "state")
    with open(a.out, "a") as out:
        for i in range(a.reps):
            change = "v2" if i % 2 == 0 else "v1"
            argv = [x.replace("{change}", change) for x in args]
            t0 = time.perf_counter()
            code = subprocess.run(
                ["ip", "netns", "exec", "baton-ctl", baton, "--config", a.config] + argv,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
            wall = time.perf_counter() - t0
            recs = last_run(os.path.join(state, f"{a.pair}.journal"))
            begin, end = ts(recs[0]["at"]), ts(recs[-1]["at"])
            steps = [r for r in recs if r["event"] == "end"]
            in_steps = sum(r["duration_ms"] for r in steps) / 1000
            # Remote commands only: the journal also records checks, waits
            # and DNS operations (and checks run at once share one time).
            commands = sum(c["duration_ms"] for r in steps for c in r.get("commands", [])
                           if c.get("op", "run") in ("run", "upload", "arm")) / 1000
            row = {
                "name": f"{a.name}-{i + 1}",
                "exit": code,
                "process_wall_s": round(wall, 3),
                "journal_wall_s": round(end - begin, 3),
                "in_steps_s": round(in_steps, 3),
                "in_remote_commands_s": round(commands, 3),
                "overhead_ms": round((wall - in_steps) * 1000, 1),
                "overhead_pct": round((wall - in_steps) / wall * 100, 2),
                "steps": {r["step"]: r["duration_ms"] for r in steps},
            }
            out.write(json.dumps(row) + "\n")
            print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
