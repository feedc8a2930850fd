#!/usr/bin/env python3
"""Automatic failover by `baton watch` on the lab's etcd store (issue 18): how long from a dead
primary to traffic on the standby, and how long a new leader takes when the leading watcher dies
in the middle of its failover.

The pair is web (blue 198.18.0.11 primary, green 198.18.0.12, VIP 198.18.0.100). Three watchers
run, one in each controller namespace (baton-ctl, baton-ctl2, baton-ctl3), on a copy of the lab's
config-etcd (/var/lib/baton-lab/bench-watch: the same pairs, its own prefix /baton/bench-watch/ in
the lab's etcd cluster, its own state dir) with the [watch] and [store] settings of the run:

  fast      interval 1s, failure_threshold 3, ttl 3s
  defaults  baton's defaults: interval 10s, failure_threshold 3, ttl 10s
  kill      as fast; the leading watcher is killed (SIGKILL) as soon as the journal shows its
            failover's switch begun: the time until another watcher leads, and until the run is
            settled (finished by the new leader's recover), and how many failovers started (must
            be one)

Each run starts from `scripts/lab reset` with the prefix emptied, records the roles (`baton
status web`), starts the watchers and waits until one leads, starts the probe of the VIP benchmark
in the client's namespace (examples/probe: 200 requests per second, a new connection each, 3 s
timeout), then stops blue's nginx (SIGTERM by its pid file). Measured from that moment: *to the
failover's start* (the start record's `at`), *to its end* (the finish record's `at`), *client
outage*: from the stop to the first answer from green (by send time), and the requests that
failed in between.

Usage: watchbench.py --out FILE.jsonl [--fast N] [--defaults N] [--kill N]
Hold /run/baton-lab-tests.lock around it (scripts/bench does). Root only.
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import gap  # noqa: E402
import lbgap  # noqa: E402

LAB = lbgap.LAB
DIR = f"{LAB}/bench-watch"
PREFIX = "/baton/bench-watch/"
ENDPOINTS = "http://198.18.0.71:2379,http://198.18.0.72:2379,http://198.18.0.73:2379"
NAMESPACES = ["baton-ctl", "baton-ctl2", "baton-ctl3"]
SETTINGS = {
    "fast": {"interval": "1s", "failure_threshold": 3, "ttl": "3s", "timeout": "1s"},
    "defaults": {"interval": "10s", "failure_threshold": 3, "ttl": "10s", "timeout": "2s"},
}
SETTINGS["kill"] = SETTINGS["fast"]


def say(text):
    print(f"bench: watch: {text}", file=sys.stderr, flush=True)


def etcdctl(*args, check=True):
    r = subprocess.run(["ip", "netns", "exec", "baton-ctl", "etcdctl", f"--endpoints={ENDPOINTS}",
                        "--dial-timeout=1s", "--command-timeout=3s", *args],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise RuntimeError(f"etcdctl {args}: {r.stderr.strip()}")
    return r.stdout


def write_config(kind):
    """bench-watch/: config-etcd's baton.toml with this run's [watch] and [store], and its pairs."""
    src = f"{LAB}/config-etcd"
    shutil.rmtree(DIR, ignore_errors=True)
    shutil.copytree(src, DIR)
    path = f"{DIR}/baton.toml"
    text = open(path).read()
    text = text.replace('state_dir = "../state-etcd"', 'state_dir = "../state-bench-watch"')
    head, _, _ = text.partition("\n[store]\n")
    s = SETTINGS[kind]
    text = (head + "\n[store]\nkind = \"etcd\"\nendpoints = [" +
            ", ".join(f'"{e}"' for e in ENDPOINTS.split(",")) + "]\n" +
            f'prefix = "{PREFIX}"\nttl = "{s["ttl"]}"\ntimeout = "{s["timeout"]}"\n' +
            f'[watch]\ninterval = "{s["interval"]}"\nfailure_threshold = {s["failure_threshold"]}\n')
    with open(path, "w") as f:
        f.write(text)
    shutil.rmtree(f"{LAB}/state-bench-watch", ignore_errors=True)
    return path


def baton(cfg, ns, *args):
    return subprocess.run(["ip", "netns", "exec", ns, lbgap.baton_path(), "--config", cfg, *args],
                          capture_output=True, text=True, env=dict(os.environ, BATON_REASON="benchmark"))


def journal():
    out = etcdctl("get", "--prefix", f"{PREFIX}journal/web/", "--print-value-only", check=False)
    recs = []
    for line in out.splitlines():
        try:
            recs.append(json.loads(line))
        except ValueError:
            continue
    return recs


def leader():
    return etcdctl("get", f"{PREFIX}leader", "--print-value-only", check=False).strip() or None


def epoch(at):
    return datetime.datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


def stop_nginx(host):
    pid = int(open(f"{LAB}/hosts/{host}/nginx.pid").read().strip())
    os.kill(pid, signal.SIGTERM)


def wait(what, limit, done, step=0.02):
    deadline = time.time() + limit
    while time.time() < deadline:
        v = done()
        if v:
            return v
        time.sleep(step)
    raise RuntimeError(f"{what}: not within {limit} s")


def hostname():
    return open("/proc/sys/kernel/hostname").read().strip()


def one(kind, n):
    lbgap.fresh_lab()
    etcdctl("del", "--prefix", PREFIX, check=False)
    cfg = write_config(kind)
    s = baton(cfg, "baton-ctl", "status", "web")
    if s.returncode != 0:
        raise RuntimeError(f"status: {s.stdout}{s.stderr}")
    watchers = {}
    for ns in NAMESPACES:
        p = subprocess.Popen(["ip", "netns", "exec", ns, lbgap.baton_path(), "--config", cfg, "watch", "web"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, BATON_REASON="benchmark"))
        watchers[f"{hostname()}:{p.pid}"] = p
    interval = int(SETTINGS[kind]["interval"].rstrip("s"))
    rec = {"kind": kind, "n": n, **SETTINGS[kind]}
    try:
        first = wait("a leader", 30, leader)
        time.sleep(interval + 0.5)
        seconds = 12 + 5 * interval
        probe = lbgap.probe_start(lbgap.VIP, 200, seconds)
        time.sleep(1.0)
        t0 = time.time()
        stop_nginx("blue")
        if kind == "kill":
            wait("the switch began", 60, lambda: any(r.get("event") == "begin" and r.get("step") == "switch"
                                                      for r in journal()))
            killed = time.time()
            watchers[first].send_signal(signal.SIGKILL)
            watchers[first].wait()
            new = wait("another leader", 60, lambda: (leader() or first) != first and leader(), step=0.01)
            rec["to_new_leader_s"] = round(time.time() - killed, 3)
            rec["killed_after_s"] = round(killed - t0, 3)
            rec["new_leader"] = new != first

        def finished():
            recs = journal()
            starts = [r for r in recs if r.get("event") == "start" and r.get("kind") == "failover"]
            ends = [r for r in recs if r.get("event") == "finish" and starts and r.get("run") == starts[0]["run"]]
            return (starts, ends) if ends else None

        starts, ends = wait("the failover's end", 120, finished)
        if kind == "kill":
            rec["settled_after_kill_s"] = round(epoch(ends[0]["at"]) - killed, 3)
        time.sleep(2 * interval + 1)
        recs = journal()
        rec["failovers"] = sum(1 for r in recs if r.get("event") == "start" and r.get("kind") == "failover")
        rec["runs"] = sum(1 for r in recs if r.get("event") == "start")
        rec["to_start_s"] = round(epoch(starts[0]["at"]) - t0, 3)
        rec["to_end_s"] = round(epoch(ends[0]["at"]) - t0, 3)
        rec["outcome"] = ends[0].get("outcome")
        if rec["outcome"] != "ok":
            rec["message"] = ends[0].get("message")
            rec["steps"] = [(r.get("event"), r.get("step"), r.get("ok"), (r.get("detail") or "")[:300])
                            for r in recs if r.get("event") in ("begin", "end")]
        reqs = lbgap.probe_end(probe)
        green = [r for r in reqs if r[2] == "green" and r[0] >= t0]
        rec["client_outage_s"] = round(green[0][0] - t0, 3) if green else None
        rec["failed"] = sum(1 for r in reqs if r[2] == "FAIL")
        rec["requests"] = len(reqs)
    finally:
        for p in watchers.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in watchers.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    say(json.dumps(rec))
    return rec


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--fast", type=int, default=5)
    p.add_argument("--defaults", type=int, default=2)
    p.add_argument("--kill", type=int, default=3)
    a = p.parse_args()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    with open(a.out, "w") as f:
        f.write(json.dumps({"measured": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), "commit": commit,
                            "profile": gap.PROFILE}) + "\n")
        try:
            for kind, count in (("fast", a.fast), ("kill", a.kill), ("defaults", a.defaults)):
                for n in range(count):
                    f.write(json.dumps(one(kind, n + 1)) + "\n")
                    f.flush()
        finally:
            etcdctl("del", "--prefix", PREFIX, check=False)
            shutil.rmtree(DIR, ignore_errors=True)
            shutil.rmtree(f"{LAB}/state-bench-watch", ignore_errors=True)
            lbgap.fresh_lab()


if __name__ == "__main__":
    main()
