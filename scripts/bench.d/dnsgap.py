#!/usr/bin/env python3
"""DNS switch gap: while baton moves the DNS pair (api), ask every
authoritative server for the record every few milliseconds (from the
controller's namespace, no recursion, a fresh query id each time) and
report: from the UPDATE leaving baton (the switch step's start in the
journal) to every server answering the new address, and whether any query
in between got no answer, an error, or an empty answer (there must be none).

Usage: dnsgap.py --config FILE --servers A,B --name NAME --interval-ms N
                 --out FILE.jsonl --runs N
Runs itself inside the controller's namespace (re-executes under
`ip netns exec baton-ctl` when it is not there yet).
"""
import argparse
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# Which build to measure (scripts/bench --smoke uses the debug build).
PROFILE = os.environ.get("BATON_BENCH_PROFILE", "release")
sys.path.insert(0, HERE)
from gap import svg  # noqa: E402  (the VIP benchmark's timeline drawing)


def query(name):
    qid = random.randint(0, 65535)
    header = struct.pack(">HHHHHH", qid, 0x0000, 1, 0, 0, 0)  # RD off
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    return qid, header + q + struct.pack(">HH", 1, 1)


def answer(data, qid):
    """The A addresses in a response, or an error string."""
    if len(data) < 12:
        return "short"
    rid, flags, qd, an = struct.unpack(">HHHH", data[:8])
    if rid != qid:
        return "wrong id"
    rcode = flags & 0xF
    if rcode != 0:
        return f"rcode {rcode}"
    pos = 12
    for _ in range(qd):
        while data[pos] != 0:
            pos += data[pos] + 1
        pos += 5
    out = []
    for _ in range(an):
        if data[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while data[pos] != 0:
                pos += data[pos] + 1
            pos += 1
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[pos:pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(data[pos:pos + 4]))
        pos += rdlen
    return out if out else "empty"


def poll(server, name, interval, stop, results):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    while not stop.is_set():
        qid, pkt = query(name)
        t = time.time()
        try:
            s.sendto(pkt, (server, 53))
            data, _ = s.recvfrom(512)
            a = answer(data, qid)
        except socket.timeout:
            a = "timeout"
        results.append((t, time.time() - t, server, a))
        time.sleep(interval)


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def steps_of(recs, run):
    """(start, end, step) of each step of one run, from its journal."""
    begins, out = {}, []
    for r in recs:
        if r.get("run") != run:
            continue
        if r.get("event") == "begin":
            begins[r["step"]] = ts(r["at"])
        elif r.get("event") == "end" and r.get("step") in begins:
            out.append((begins.pop(r["step"]), ts(r["at"]), r["step"]))
    return out


def draw(a, results, recs, run, started, new_seen):
    """One SVG timeline per server: each query a tick coloured by the
    address it answered, red when it got no good answer."""
    steps = steps_of(recs, run)
    for i, srv in enumerate(a.servers.split(",")):
        reqs = [(t, lat, " ".join(ans) if isinstance(ans, list) else "FAIL",
                 "" if isinstance(ans, list) else ans)
                for (t, lat, s, ans) in results if s == srv]
        role = "primary" if i == 0 else f"secondary{'' if i == 1 else i}"
        svg(os.path.join(a.svg_dir, f"dns-{role}.svg"),
            f"{a.name}: {len(reqs)} queries to the {role} {srv}, one every {a.interval_ms:g} ms",
            reqs, steps, started, new_seen.get(srv))


def one(a, change, picture=False):
    stop = threading.Event()
    results = []
    threads = [threading.Thread(target=poll, args=(srv, a.record, a.interval_ms / 1000, stop, results))
               for srv in a.servers.split(",")]
    for t in threads:
        t.start()
    time.sleep(0.5)
    baton = os.path.join(ROOT, f"target/{PROFILE}/baton")
    started = time.time()
    code = subprocess.run([baton, "--config", a.config, "apply", "api", "--change", change,
                           "--reason", "benchmark"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    state = os.path.join(os.path.dirname(a.config), "..", "state", "api.journal")
    recs = [json.loads(l) for l in open(state) if l.strip()]
    switch = [r for r in recs if r.get("step") == "switch"][-2:]
    begin = ts(switch[0]["at"])
    end = ts(switch[1]["at"])
    results.sort()
    first = {}
    for r in results:
        if isinstance(r[3], list):
            first.setdefault(r[2], r[3])
    old = {srv: ans for srv, ans in first.items()}
    new_seen = {}
    bad = []
    for (t, lat, srv, ans) in results:
        if not isinstance(ans, list):
            bad.append({"at_ms": round((t - begin) * 1000, 1), "server": srv, "got": ans})
            continue
        if ans != old[srv] and srv not in new_seen:
            new_seen[srv] = t
    all_new = max(new_seen.values()) if len(new_seen) == len(old) else None
    if picture and a.svg_dir:
        draw(a, results, recs, switch[1]["run"], started, new_seen)
    return {
        "name": f"{a.name}-{change}",
        "exit": code,
        "queries": len(results),
        "servers": len(old),
        "switch_step_ms": round((end - begin) * 1000, 1),
        "update_to_all_new_ms": None if all_new is None else round((all_new - begin) * 1000, 1),
        "update_to_new_ms": {srv: round((t - begin) * 1000, 1) for srv, t in sorted(new_seen.items())},
        "bad_answers": bad[:10],
        "bad_count": len(bad),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    p.add_argument("--servers", required=True)
    p.add_argument("--record", default="app.baton.test.")
    p.add_argument("--name", default="dns")
    p.add_argument("--interval-ms", type=float, default=2)
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--out", required=True)
    p.add_argument("--svg-dir", help="write dns-primary.svg and dns-secondary.svg (first run) here")
    a = p.parse_args()
    if os.environ.get("BATON_BENCH_IN_CTL") != "1":
        env = dict(os.environ, BATON_BENCH_IN_CTL="1")
        return subprocess.run(["ip", "netns", "exec", "baton-ctl", sys.executable] + sys.argv,
                              env=env).returncode
    with open(a.out, "w") as out:
        for i in range(a.runs):
            row = one(a, "v2" if i % 2 == 0 else "v1", picture=i == 0)
            out.write(json.dumps(row) + "\n")
            print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
