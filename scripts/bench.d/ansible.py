#!/usr/bin/env python3
"""The same blue-green sequence done by Ansible and by baton, timed in the
same run against the same lab pair (web). Ansible runs the playbook in
scripts/bench.d/ansible/ with its fastest settings (pipelining, persistent
SSH connections); baton runs `apply web` with a copy of the lab's
configuration whose observation period is 0 s (one check through the VIP,
as the playbook does) and, for reference, with the lab's 2 s.

Usage: ansible.py --venv DIR --reps N --out FILE.jsonl
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# Which build to measure (scripts/bench --smoke uses the debug build).
PROFILE = os.environ.get("BATON_BENCH_PROFILE", "release")
LAB = "/var/lib/baton-lab"
ADDR = {"blue": "198.18.0.11", "green": "198.18.0.12"}


def sh(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def reset():
    r = sh([os.path.join(ROOT, "scripts/lab"), "reset"])
    assert r.returncode == 0, r.stdout


def fast_config():
    """The lab's configuration with observe_period = 0s, beside the original
    (so its relative paths still resolve)."""
    src, dst = os.path.join(LAB, "config"), os.path.join(LAB, "config-bench")
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    for name in ("web.toml", "api.toml"):
        p = os.path.join(dst, "pairs", name)
        text = open(p).read().replace('observe_period = "2s"', 'observe_period = "0s"')
        open(p, "w").write(text)
    return os.path.join(dst, "baton.toml")


def time_ansible(venv, reps, out):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(HERE, "ansible/ansible.cfg"),
               ANSIBLE_LOCAL_TEMP="/tmp/baton-bench-ansible", ANSIBLE_HOME="/tmp/baton-bench-ansible")
    notes = os.path.join(LAB, "config/pairs/files/release-notes.txt")
    reset()
    holder = "blue"
    for i in range(reps):
        frm, to = holder, ("green" if holder == "blue" else "blue")
        version = "2" if i % 2 == 0 else "1"
        extra = json.dumps({"from": frm, "to": to, "from_addr": ADDR[frm], "to_addr": ADDR[to],
                            "version": version, "notes": notes})
        t0 = time.perf_counter()
        r = sh(["ip", "netns", "exec", "baton-ctl", os.path.join(venv, "bin/ansible-playbook"),
                "-i", os.path.join(HERE, "ansible/inventory.ini"), os.path.join(HERE, "ansible/switch.yml"),
                "-e", extra], env=env, cwd=os.path.join(HERE, "ansible"))
        wall = time.perf_counter() - t0
        row = {"tool": "ansible", "run": i + 1, "exit": r.returncode, "wall_s": round(wall, 3)}
        if r.returncode != 0:
            row["error"] = r.stdout[-2000:]
        out.write(json.dumps(row) + "\n")
        print(json.dumps({k: v for k, v in row.items() if k != "error"}))
        holder = to


def time_baton(config, label, reps, out):
    baton = os.path.join(ROOT, f"target/{PROFILE}/baton")
    reset()
    for i in range(reps):
        change = "v2" if i % 2 == 0 else "v1"
        t0 = time.perf_counter()
        r = sh(["ip", "netns", "exec", "baton-ctl", baton, "--config", config, "apply", "web",
                "--change", change, "--reason", "benchmark"])
        wall = time.perf_counter() - t0
        row = {"tool": label, "run": i + 1, "exit": r.returncode, "wall_s": round(wall, 3)}
        out.write(json.dumps(row) + "\n")
        print(json.dumps(row))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--venv", required=True)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    version = sh([os.path.join(a.venv, "bin/ansible-playbook"), "--version"]).stdout.splitlines()[0]
    with open(a.out, "w") as out:
        out.write(json.dumps({"ansible_version": version}) + "\n")
        time_ansible(a.venv, a.reps, out)
        time_baton(fast_config(), "baton (observe 0s)", a.reps, out)
        time_baton(os.path.join(LAB, "config/baton.toml"), "baton (observe 2s)", a.reps, out)
    shutil.rmtree(os.path.join(LAB, "config-bench"), ignore_errors=True)
    reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())
