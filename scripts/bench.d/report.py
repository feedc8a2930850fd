#!/usr/bin/env python3
"""Writes BENCHMARKS.md from the results scripts/bench left in bench/."""
import argparse
import json
import os
import statistics
import sys


def vip_section(d):
    path = os.path.join(d, "vip-gap.jsonl")
    if not os.path.exists(path):
        return []
    rows = [json.loads(l) for l in open(path) if l.strip()]
    out = ["## Switch gap through the VIP", "",
           "A client in the lab's client namespace requests the page through the VIP "
           "(198.18.0.100:80) at 200 requests per second, a new TCP connection each, "
           "3 s timeout (`examples/probe.rs`), while baton runs in the controller's "
           "namespace. *Gap*: from the last request the old primary answered to the "
           "first the new primary answered, by send time. *Longest without a prompt "
           "answer*: the longest stretch of send times in which no request was answered "
           "within 100 ms. *Switch step*: baton's own time for the step. Target: no "
           "failed request, gap under 20 ms. *vip-switchover*, *vip-apply* and the *vip-6* "
           "kinds move the address in baton's default order, the overlap (README, *the "
           "handover*): the new host takes it before the old one lets go, so the switch step "
           "includes the 1 s in which the old host finishes its own connections (*VIP "
           "handover* below compares the orders). "
           "*apply-quiesce* runs the same apply with `quiesce = \"20ms\"`, which implies the "
           "classic order (remove, then add): the old "
           "primary drops new connections' SYNs for 20 ms before the address leaves it, "
           "so that open connections finish (README, *Switching by VIP*). *vip-6-switchover* and "
           "*vip-6-apply* are the same commands on the dual-stack pair web6, whose VIP is IPv6 "
           "(fd00:198:18::160, added `nodad` and announced with unsolicited neighbour "
           "advertisements), with the client requesting [fd00:198:18::160]:80 over IPv6.", ""]
    kinds = []
    for r in rows:
        k = r["name"].rsplit("-", 1)[0]
        if k not in kinds:
            kinds.append(k)
    out += ["| runs of | runs | requests | failed | delayed > 100 ms (per run) | median gap | median longest without a prompt answer |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for k in kinds:
        rs = [r for r in rows if r["name"].rsplit("-", 1)[0] == k]
        gaps = [r["gap_ms"] for r in rs if r["gap_ms"] is not None]
        deads = [r["longest_without_prompt_answer_ms"] for r in rs
                 if r.get("longest_without_prompt_answer_ms") is not None]
        delayed = sum(r["delayed_over_100ms"] for r in rs)
        out.append(f'| {k} | {len(rs)} | {sum(r["requests"] for r in rs)} | '
                   f'{sum(r["failed"] for r in rs)} | {delayed} ({delayed / len(rs):.1f}) | '
                   + (f"{statistics.median(gaps):.1f} ms" if gaps else "-") + " | "
                   + (f"{statistics.median(deads):.1f} ms" if deads else "-") + " |")
    out += ["", "Each run:", "",
            "| run | requests | failed | delayed > 100 ms | max latency | gap | longest without a prompt answer | switch step | baton exit |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        gap = "-" if r["gap_ms"] is None else f'{r["gap_ms"]:.1f} ms'
        sw = ", ".join(f"{x} ms" for x in r["switch_step_ms"]) or "-"
        dead = r.get("longest_without_prompt_answer_ms")
        dead = "-" if dead is None else f"{dead:.1f} ms"
        out.append(f'| {r["name"]} | {r["requests"]} | {r["failed"]} | {r["delayed_over_100ms"]} | '
                   f'{r["max_latency_ms"]:.1f} ms | {gap} | {dead} | {sw} | {r["baton_exit"]} |')
    gaps = [r["gap_ms"] for r in rows if r["gap_ms"] is not None]
    if gaps:
        out += ["", f"Median gap {statistics.median(gaps):.1f} ms, worst {max(gaps):.1f} ms; "
                f"failed requests in all runs: {sum(r['failed'] for r in rows)}."]
    out += timelines(d, ["vip-switchover.svg", "vip-apply.svg", "vip-apply-quiesce.svg",
                         "vip-6-switchover.svg", "vip-6-apply.svg"],
                     "Timelines of the first run of each kind (one tick per request at its "
                     "send time, coloured by the host that answered, red when it failed; tick "
                     "height is the latency; the bands are baton's steps):")
    return out + [""]


def timelines(d, files, caption):
    """The SVG timelines among `files` that a run left in `d`, under a caption."""
    present = [f for f in files if os.path.exists(os.path.join(d, f))]
    if not present:
        return []
    return ["", caption, ""] + [f"![{f}](bench/{f})" for f in present]


def dns_section(d):
    path = os.path.join(d, "dns-gap.jsonl")
    if not os.path.exists(path):
        return []
    rows = [json.loads(l) for l in open(path) if l.strip()]
    out = ["## Switch gap through DNS", "",
           "`baton apply api` on the DNS pair (one TSIG-signed compare-and-swap UPDATE to "
           "Knot) while every authoritative server of the zone is asked for the record every "
           "2 ms from the controller's namespace, without recursion "
           "(`scripts/bench.d/dnsgap.py`). The lab's zone has two authoritative servers: the "
           "primary (198.18.0.53), which takes the UPDATE, and a secondary (198.18.0.54), "
           "which follows by NOTIFY and incremental zone transfer. *UPDATE to new*: from the "
           "switch step's start in the journal (the UPDATE leaves right after it) to the first "
           "answer with the new address, per server; *all new* is the later of the two, and "
           "the switch step ends when baton has seen it. *Bad answers*: queries with no "
           "answer, an error or an empty answer at any time during the run; there must be "
           "none.", "",
           "| run | exit | queries | servers | UPDATE to new (primary / secondary) | UPDATE to all new | switch step | bad answers |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        new = "-" if r["update_to_all_new_ms"] is None else f'{r["update_to_all_new_ms"]:.1f} ms'
        each = " / ".join(f"{ms:.1f} ms" for _, ms in sorted(r.get("update_to_new_ms", {}).items()))
        out.append(f'| {r["name"]} | {r["exit"]} | {r["queries"]} | {r["servers"]} | '
                   f'{each or "-"} | {new} | {r["switch_step_ms"]:.1f} ms | {r["bad_count"]} |')
    out += timelines(d, ["dns-primary.svg", "dns-secondary.svg"],
                     "Timelines of the first run, one per server (one tick per query at its "
                     "send time, coloured by the address it answered, red when it got no good "
                     "answer; tick height is the latency; the bands are baton's steps):")
    return out + [""]


PG_METHODS = [("baton-switchover", "baton switchover"), ("baton-apply", "baton apply"), ("hand", "by hand"),
              ("hand-add-first", "by hand, VIP added first")]


def ms_range(values, unit="ms", scale=1.0, digits=0):
    """min / median / max of the values that are known, or "-"."""
    vs = sorted(v * scale for v in values if v is not None)
    if not vs:
        return "-"
    f = f"{{:.{digits}f}}"
    return f"{f.format(vs[0])} / {f.format(statistics.median(vs))} / {f.format(vs[-1])} {unit}"


def fmt(v, unit="ms", digits=0):
    return "-" if v is None else f"{v:.{digits}f} {unit}".rstrip()


def is_late(r):
    """The first write came 800 ms or more after the switch step ended (a SYN lost in the move)."""
    return (r.get("gap_end_after_switch_ms") or 0) >= 800


def pg_section(d):
    path = os.path.join(d, "pg-gap.jsonl")
    if not os.path.exists(path):
        return []
    lines = [json.loads(l) for l in open(path) if l.strip()]
    meta = next((r for r in lines if "measured" in r), {})
    rows = [r for r in lines if "method" in r]
    if not rows:
        return []
    lead = meta.get("lead_s", 2)
    out = ["## Write unavailability of a PostgreSQL hand-over", "",
           "The lab's streaming-replication pair `pg` (PostgreSQL 15: pga and pgb, VIP "
           "198.18.0.130) is handed over while a writer in the client's namespace inserts one row "
           "per transaction through the VIP as fast as it can, reconnecting 20 ms after any error "
           "(`scripts/pgwriter run`), and a watcher asks both servers every 10 ms whether they take "
           f"writes (`pgwriter roles`). The writer starts {lead:g} s before the hand-over and stops "
           f"{meta.get('tail_s', 2):g} s after it. *Write gap* (the write unavailability): from the "
           "last write acknowledged before the old primary stopped to the first one acknowledged "
           "after it; no write can be acknowledged in between. *Lost*: acknowledged rows missing on "
           "the new primary afterwards (`pgwriter check`); *both writable*: watcher polls in which "
           "both servers took writes; both must be 0. The methods, in the same run and against "
           "the same servers:", "",
           "- *baton switchover*: `baton switchover pg`, alternating directions.",
           "- *baton apply*: `baton apply pg --change buffers64`, then `--change buffers32` "
           "(`shared_buffers` and a restart: the standby first, then the same hand-over, then the "
           "old primary).",
           "- *by hand*: the same hand-over without baton (`scripts/bench.d/pg-handover`): the "
           "lab's role hook `baton-pg` run directly in the hosts' namespaces as postgres, without "
           "SSH (demote, position until the standby has replayed the old primary's final "
           "position, promote), then the VIP moved with `ip addr del` and `ip addr add` and "
           "announced with `arping -U`, then the old primary follows: the sequence of a "
           "repmgr-style switchover, run as fast as a script can. It is the floor baton's "
           "overhead is measured against.",
           ] + ([
           "- *by hand, VIP added first* (an experiment, not what baton does): the same, but the "
           "VIP is added on the new primary and announced before it is removed from the old one, "
           "100 ms later (`pg-handover --add-first`); its switch step includes that wait, so writes "
           "resume before it ends."] if any(r["method"] == "hand-add-first" for r in rows)
           else []) + ["",
           "*Wall*: baton's process from start to exit, which includes the pair's 2 s observation "
           "period after the switch; by hand, until the old primary follows. Target (issue 14): "
           "under 1 s of write unavailability for a planned switchover; the anchors, repmgr, "
           "Patroni and pg_auto_failover, take 5 s or more.", "",
           f"Measured {meta.get('measured', '?')}, baton {meta.get('commit', '?')} "
           f"({meta.get('profile', 'release')} build). Reproduce: `scripts/bench --only pg-gap`.", "",
           "*Late*: runs whose first write came 800 ms or more after the switch step ended: a "
           "connection attempt whose SYN went unanswered while the VIP moved, sent again by TCP "
           "a second later (see the first write after the switch in the tables below).", "",
           "| method | runs | all exit 0 | write gap (min / median / max) | late | write gap of the "
           "others (min / median / max) | wall (min / median / max) "
           "| acknowledged writes per second before the hand-over (median) | lost | both writable |",
           "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    present = [(m, label) for m, label in PG_METHODS if any(r["method"] == m for r in rows)]
    for m, label in present:
        rs = [r for r in rows if r["method"] == m]
        rates = [r["rate_before_per_s"] for r in rs if r.get("rate_before_per_s") is not None]
        lost = sum(r["lost"] for r in rs if r["lost"] is not None)
        unknown = sum(1 for r in rs if r["lost"] is None)
        late = [r for r in rs if is_late(r)]
        out.append(f"| {label} | {len(rs)} | {'yes' if all(r['exit'] == 0 for r in rs) else 'NO'} | "
                   f"{ms_range([r['gap_ms'] for r in rs])} | {len(late)} | "
                   f"{ms_range([r['gap_ms'] for r in rs if not is_late(r)])} | "
                   f"{ms_range([r['wall_s'] for r in rs], 's', 1, 2)} | "
                   + (f"{statistics.median(rates):.0f}" if rates else "-") + " | "
                   f"{lost}{f' ({unknown} unchecked)' if unknown else ''} | "
                   f"{sum(r['both_writable'] or 0 for r in rs)} |")
    out += ["", "Where the write gap goes (medians of the steps' durations; *first write after the "
            "switch*: from the end of the switch step to the first acknowledged write, in the runs "
            "that were not late):", "",
            "| method | demote | catch_up | promote | switch | first write after the switch (not late) | follow |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for m, label in present:
        rs = [r for r in rows if r["method"] == m]

        def med(step, rs=rs):
            vs = [r["steps"][step]["ms"] for r in rs if step in r.get("steps", {})]
            return f"{statistics.median(vs):.0f} ms" if vs else "-"
        after = [r["gap_end_after_switch_ms"] for r in rs
                 if r.get("gap_end_after_switch_ms") is not None and not is_late(r)]
        out.append(f"| {label} | {med('demote')} | {med('catch_up')} | {med('promote')} | {med('switch')} | "
                   + (f"{statistics.median(after):.0f} ms" if after else "-") + f" | {med('follow')} |")
    out += ["", "Each run (*gap began*: from the start of the run; *other gap*: the longest gap "
            "between acknowledged writes outside the hand-over, a stall of the writer or the server):", "",
            "| run | from → to | exit | wall | write gap | gap began | first write after the switch "
            "| demote | catch_up | promote | switch | acknowledged | per second before | lost | both writable | other gap |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        st = r.get("steps", {})

        def step(n, st=st):
            return fmt(st[n]["ms"]) if n in st else "-"
        out.append(f"| {r['name']}{' (' + r['change'] + ')' if r.get('change') else ''} | "
                   f"{r['from']} → {r['to']} | {r['exit']} | {fmt(r['wall_s'], 's', 2)} | "
                   f"{fmt(r['gap_ms'], 'ms', 1)} | {fmt(r['gap_began_ms'])} | "
                   f"{fmt(r.get('gap_end_after_switch_ms'))} | {step('demote')} | {step('catch_up')} | "
                   f"{step('promote')} | {step('switch')} | {r['acked']} | "
                   f"{fmt(r.get('rate_before_per_s'), '', 0)} | {fmt(r['lost'], '', 0)} | "
                   f"{fmt(r['both_writable'], '', 0)} | {fmt(r.get('other_longest_gap_ms'))} |")
    late = [r["name"] for r in rows if is_late(r)]
    if late:
        out += ["", f"Late (first write 800 ms or more after the switch step ended): {', '.join(late)}."]
    out += timelines(d, ["pg-switchover.svg", "pg-apply.svg", "pg-hand.svg"],
                     "Timelines of the run with the median write gap of each method (top: "
                     "acknowledged writes per second, in 50 ms bins, over the whole run; below it, "
                     "both servers' roles as the watcher saw them, and the run's steps, from "
                     "baton's journal or the script's marks; bottom: the hand-over, one tick per "
                     "acknowledged write, dashed lines at the start and end of demote, catch_up, "
                     "promote and switch; shaded: the write gap):")
    out += timelines(d, ["pg-switchover-late.svg"],
                     "A late run: the first baton switchover whose first write came 800 ms or more "
                     "after the switch step ended:")
    return out + [""]


LB_METHODS = [("haproxy", "through HAProxy (`baton switchover lb`)"), ("vip", "by VIP (`baton switchover web`)")]


def lb_section(d):
    path = os.path.join(d, "lb-gap.jsonl")
    if not os.path.exists(path):
        return []
    lines = [json.loads(l) for l in open(path) if l.strip()]
    meta = next((r for r in lines if "measured" in r), {})
    rows = [r for r in lines if r.get("method") in ("haproxy", "vip")]
    ramps = [r for r in lines if r.get("method") == "haproxy-ramp"]
    bads = [r for r in lines if r.get("method") in ("haproxy-ramp-bad", "haproxy-ab-bad")]
    abs_ = [r for r in lines if r.get("method") == "haproxy-ab"]
    if not rows and not ramps and not bads and not abs_:
        return []
    rate = meta.get("rate", 200)
    ramp = ",".join(str(p) for p in meta.get("ramp", [10, 50, 100]))
    step_s = meta.get("step_s", 5)
    out = ["## A switch through HAProxy beside the switch by VIP", "",
           "The lab's HAProxy pair `lb` (teal and coral behind HAProxy 2.6 on host lb, frontend "
           "198.18.0.40:80) and its VIP pair `web` (blue and green, VIP 198.18.0.100), switched in "
           f"turn in the same run, each under the probe of the VIP benchmark ({rate} requests per "
           "second, a new TCP connection each, 3 s timeout) aimed at the pair's own address: the "
           "frontend or the VIP (`scripts/bench.d/lbgap.py`). baton switches the HAProxy pair with "
           "one runtime API command on the balancer over SSH (the new server at full weight and "
           "ready, the old one in drain), between two `show stat` reads: before, that traffic is "
           "where baton thinks, after, that it moved. *Switch step*: baton's time for the step, "
           "from its journal; *gap*, *delayed* and *longest without a prompt answer* as in the VIP "
           "section above.", "",
           f"Measured {meta.get('measured', '?')}, baton {meta.get('commit', '?')} "
           f"({meta.get('profile', 'release')} build). Reproduce: `scripts/bench --only lb-gap`.", ""]
    if rows:
        out += ["| method | runs | all exit 0 | requests | failed | delayed > 100 ms (per run) | max latency "
                "(median / worst) | longest without a prompt answer (min / median / max) | switch step "
                "(min / median / max) | gap (min / median / max) |",
                "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for m, label in LB_METHODS:
            rs = [r for r in rows if r["method"] == m]
            if not rs:
                continue
            delayed = sum(r["delayed_over_100ms"] for r in rs)
            lat = [r["max_latency_ms"] for r in rs]
            out.append(f"| {label} | {len(rs)} | {'yes' if all(r['baton_exit'] == 0 for r in rs) else 'NO'} | "
                       f"{sum(r['requests'] for r in rs)} | {sum(r['failed'] for r in rs)} | "
                       f"{delayed} ({delayed / len(rs):.1f}) | "
                       f"{statistics.median(lat):.1f} / {max(lat):.1f} ms | "
                       f"{ms_range([r.get('longest_without_prompt_answer_ms') for r in rs], digits=1)} | "
                       f"{ms_range([x for r in rs for x in r['switch_step_ms']])} | "
                       f"{ms_range([r['gap_ms'] for r in rs], digits=1)} |")
        lb = [r for r in rows if r["method"] == "haproxy"]
        ops = [r["switch_ops"] for r in lb if len(r.get("switch_ops", [])) == 3]
        if ops:
            med = [statistics.median(o[i]["duration_ms"] for o in ops) for i in range(3)]
            out += ["", "The HAProxy switch step's three runtime API commands over SSH, medians of the "
                    f"{len(ops)} runs: `show stat` {med[0]:.0f} ms, the weights and states {med[1]:.0f} ms, "
                    f"`show stat` again {med[2]:.0f} ms."]
        out += ["", "Each run:", "",
                "| run | from → to | requests | failed | delayed > 100 ms | max latency | gap | longest without "
                "a prompt answer | switch step | baton exit |",
                "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in rows:
            sw = ", ".join(f"{x} ms" for x in r["switch_step_ms"]) or "-"
            hosts = (r.get("hosts") or "?").replace("->", " → ")
            out.append(f"| {r['name']} | {hosts} | {r['requests']} | {r['failed']} | {r['delayed_over_100ms']} | "
                       f"{r['max_latency_ms']:.1f} ms | {fmt(r['gap_ms'], 'ms', 1)} | "
                       f"{fmt(r.get('longest_without_prompt_answer_ms'), 'ms', 1)} | {sw} | {r['baton_exit']} |")
    if ramps:
        out += ["", f"### A ramp: `baton apply lb --change v2 --ramp {ramp} --step {step_s:g}s`", "",
                "Each run starts from `scripts/lab reset` (teal at weight 100, coral at 0, both on version 1) "
                "under the same probe on the frontend. At each ramp step baton sets the weights (the "
                "updated host gets the step's share, the other the rest), reads the balancer's counters, "
                "waits the step, reads them again and compares the two hosts; then the switch to 100 %. "
                "*Probe share*: of the probe's answers sent while the step's weights held (50 ms kept "
                "clear at each end), those from the updated host (the page names the host); *balancer*: "
                "the same from the balancer's own counters over the step, as baton's journal gives them "
                "(the probe is the frontend's only client; baton's checks ask the hosts directly).", "",
                "| run | exit | requests | failed | delayed > 100 ms | max latency | weight to the updated host | probe share "
                "(answers from the updated host / in the step) | balancer share (requests to it / all) |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
        for r in ramps:
            for i, st in enumerate(r.get("ramp_steps", [])):
                head = (f"| {r['name']} | {r['baton_exit']} | {r['requests']} | {r['failed']} | "
                        f"{r['delayed_over_100ms']} | {r['max_latency_ms']:.1f} ms" if i == 0
                        else "| | | | | |")
                out.append(f"{head} | {st['percent']} % | "
                           f"{fmt(st['share_pct'], '%', 2)} ({st['from_new']} / {st['answered']}) | "
                           f"{fmt(st['balancer_share_pct'], '%', 2)} "
                           f"({fmt(st['balancer_new'], '', 0)} / {fmt(st['balancer_total'], '', 0)}) |")
            if not r.get("ramp_steps"):
                out.append(f"| {r['name']} | {r['baton_exit']} | {r['requests']} | {r['failed']} | "
                           f"{r['delayed_over_100ms']} | {r['max_latency_ms']:.1f} ms | - | - | - |")
        out += ["", "The ramp's time: *ramp step*, the step's wall time in the journal; *waits*, the sum of its "
                "steps' waits; *overhead*, the difference, with the runtime API commands it is made of "
                "(setting the weights, reading the counters before and after each wait); *apply*, the "
                "whole `baton apply` (with preflight, the checks, the switch, the 2 s observation, the "
                "drain and the old primary's apply).", "",
                "| run | ramp step | waits | overhead | setting the weights | reading the counters | apply |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in ramps:
            k = r.get("ramp_ops_ms", {})
            out.append(f"| {r['name']} | {fmt(r.get('ramp_step_ms'))} | {fmt(r.get('waits_ms'))} | "
                       f"{fmt(r.get('ramp_overhead_ms'))} | {fmt(k.get('setting the weights'))} | "
                       f"{fmt(k.get('reading the counters'))} | {fmt(r.get('baton_wall_s'), 's', 2)} |")
    if bads:
        out += lb_bad_table(bads, ramp, step_s)
    if abs_:
        out += lb_ab_table(abs_, meta)
    out += timelines(d, ["lb-switchover.svg", "lb-vip-switchover.svg"],
                     "Timelines of the first switchover of each method in this run (one tick per request at "
                     "its send time, coloured by the host that answered, red when it failed; tick height is "
                     "the latency; the bands are baton's steps):")
    out += timelines(d, ["lb-ramp.svg"],
                     "The first ramp (bars: the share of the answers from the updated host per 250 ms of send "
                     "time; dashed: each ramp step's weight; the bands are baton's steps):")
    out += timelines(d, ["lb-ramp-bad.svg", "lb-ab-bad.svg", "lb-ab.svg"],
                     "The first ramp of v2-bad, the A/B of v2-bad and the first A/B of v2 (bars: the share "
                     "of the answers from coral per 250 ms of send time; dashed: the weight while it held; "
                     "red ticks below the axis: failed requests, here the 500s of v2-bad's fault; the bands "
                     "are baton's steps, and *held* the time between `baton ab` and `--end`):")
    return out + [""]


def balancer_after(r):
    """The updated host's server after the run, as `baton status` reads the balancer."""
    b = r.get("balancer_after") or {}
    new = (r.get("hosts") or "->coral").split("->")[-1]
    s = next((s for s in b.get("servers", []) if s.get("name") == new), None)
    return "?" if s is None else f"{s.get('status')}, weight {s.get('weight')} (status: {b.get('verdict')})"


def lb_bad_table(bads, ramp, step_s):
    out = ["", "### A faulty change: `--change v2-bad`, by a ramp and by an A/B experiment", "",
           "The lab pair's change `v2-bad` is version 2 with a fault: while it is on a host, that host's "
           "nginx answers about 20 % of ordinary requests with a 500, while `/health` and "
           "`/index.html`, which baton's checks ask for, stay 200. The checks pass; only the "
           "comparison of the two hosts' counters on the balancer can catch it. Each run starts from "
           f"`scripts/lab reset`, under the same probe on the frontend: `baton apply lb --change v2-bad "
           f"--ramp {ramp} --step {step_s:g}s` (*ramp*), and `baton ab lb --change v2-bad --weight 20 "
           "--for 10s --interval 2s` (*A/B*). Both must abort at their first step or interval, switch "
           "every new request back to teal and roll the change back on coral (exit 1). *To the abort*: "
           "from the start of the ramp (or experiment) step to its failure, from the journal; *to all "
           "on teal*: to the end of the `switch_back` step. *Harmed*: the probe's requests answered "
           "with a 500; *failed otherwise*: any other failure (connect, timeout). *After the run*: the "
           "probe's answers sent after baton's last event, and how many of them came from coral "
           "(must be 0). *coral afterwards*: its server on the balancer once the run ended.", "",
           "| run | command | exit | outcome | aborted at | to the abort | to all on teal | requests | harmed "
           "(500) | failed otherwise | answers after the run | of them from coral | coral afterwards |",
           "| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in bads:
        if r["method"] == "haproxy-ramp-bad":
            cmd, at = "ramp", (f"step {r['aborted_step']} ({r['aborted_percent']} %)"
                               if r.get("aborted_step") is not None else "-")
            to_abort, to_back = r.get("ramp_to_abort_s"), r.get("ramp_to_switch_back_s")
        else:
            cmd, at = "A/B", (f"interval {r['aborted_interval']} ({r['weight']} %)"
                              if r.get("aborted_interval") is not None else "-")
            to_abort, to_back = r.get("experiment_to_abort_s"), r.get("experiment_to_switch_back_s")
        out.append(f"| {r['name']} | {cmd} | {r['baton_exit']} | {r.get('outcome') or '-'} | {at} | "
                   f"{fmt(to_abort, 's', 2)} | {fmt(to_back, 's', 2)} | {r['requests']} | {r['harmed']} | "
                   f"{r['failed_otherwise']} | {fmt(r.get('after_run_answered'), '', 0)} | "
                   f"{fmt(r.get('after_run_not_old'), '', 0)} | {balancer_after(r)} |")
    why = next((r.get("aborted_why") for r in bads if r.get("aborted_why")), None)
    if why:
        out += ["", f"What the first ramp's abort says (the ramp step's detail in the journal): {why}"]
    return out


def lb_ab_table(abs_, meta):
    ab = meta.get("ab", {})
    w = ab.get("weight", 20)
    out = ["", f"### An A/B experiment: `baton ab lb --change v2 --weight {w} --for {ab.get('for_s', 10):g}s "
           f"--interval {ab.get('interval_s', 2):g}s`, held, reported, ended", "",
           "Each run starts from `scripts/lab reset`, under one probe on the frontend for the whole "
           "sequence: `baton ab` applies v2 to coral, gives it weight "
           f"{w} (teal {100 - w}), samples both servers every interval and exits 0, leaving the split "
           f"held; {ab.get('hold_s', 3):g} s later `baton ab lb --end --keep new` switches, verifies "
           "(the pair's 2 s observation), drains teal and updates it; `baton ab lb --report --json` is "
           "read at the start of the hold. *Watched*: the probe's answers sent from the weights' "
           "setting to the end of the experiment step; *held*: from `baton ab`'s exit to the start of "
           "`--end`'s switch step (50 ms kept clear at each end); *report*: coral's share of requests "
           "in the report's totals, from the balancer's counters; *per interval*: the same for each "
           "sample, with its verdict. *`--end`*: the process's wall time, and from its start to the "
           "end of the switch (when coral takes every new request). *After `--end`*: the probe's "
           "answers sent after the switch, and how many came from teal (must be 0).", "",
           f"| run | exits (ab / report / end) | requests | failed | delayed > 100 ms | coral watched "
           f"(probe) | coral held (probe) | report: coral (requests) | per interval (coral's share, verdicts) "
           f"| report's state in the hold | `--end` | to the switch | after `--end` (not from coral) |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |"]
    for r in abs_:
        wa, he, rep = r.get("watched") or {}, r.get("held") or {}, r.get("report") or {}
        tot = rep.get("totals") or {}
        n_new = (tot.get("new") or {}).get("requests")
        n_all = (n_new or 0) + ((tot.get("old") or {}).get("requests") or 0)
        samples = rep.get("samples") or []
        per = ", ".join(f"{100.0 * s['new'] / (s['new'] + s['old']):.1f}" for s in samples if s["new"] + s["old"])
        verdicts = sorted({s.get("verdict") for s in samples})
        out.append(f"| {r['name']} | {r['baton_exit']} / {r['report_exit']} / {r['end_exit']} | {r['requests']} | "
                   f"{r['failed']} | {r['delayed_over_100ms']} | "
                   f"{fmt(wa.get('share_pct'), '%', 2)} ({wa.get('from_new', '-')} / {wa.get('answered', '-')}) | "
                   f"{fmt(he.get('share_pct'), '%', 2)} ({he.get('from_new', '-')} / {he.get('answered', '-')}) | "
                   f"{fmt(rep.get('new_share_pct'), '%', 2)} ({fmt(n_new, '', 0)} / {n_all}) | "
                   f"{per or '-'} % ({', '.join(str(v) for v in verdicts) or '-'}) | {rep.get('state', '-')} | "
                   f"{fmt(r.get('end_wall_s'), 's', 2)} | {fmt(r.get('end_to_switch_s'), 's', 2)} | "
                   f"{fmt(r.get('after_run_answered'), '', 0)} ({fmt(r.get('after_run_not_new'), '', 0)}) |")
    steps = {}
    for r in abs_:
        for st in r.get("end_steps", []):
            if st.get("state") in ("ok", "failed") and st.get("step") != "run":
                steps.setdefault(st["step"], []).append(st.get("duration_ms") or 0)
    if steps:
        out += ["", "Where `--end --keep new` spends its time (the journal's steps, median of the runs): "
                + ", ".join(f"{k} {statistics.median(v):.0f} ms" for k, v in steps.items()) + "."]
    return out


HOLD_KINDS = [("revert", "v2", "`baton revert web` (held apply of v2)"),
              ("rollback", "v2", "`baton rollback --change v2 web` (cycle)"),
              ("revert", "v2-slow", "`baton revert web` (held apply of v2-slow)"),
              ("rollback", "v2-slow", "`baton rollback --change v2-slow web` (cycle)")]


def hold_section(d):
    path = os.path.join(d, "hold-gap.jsonl")
    if not os.path.exists(path):
        return []
    lines = [json.loads(l) for l in open(path) if l.strip()]
    meta = next((r for r in lines if "measured" in r), {})
    rows = [r for r in lines if "kind" in r]
    if not rows:
        return []
    rate, poll_rate, slow = meta.get("rate", 200), meta.get("poll_rate", 100), meta.get("slow_s", 3)
    out = ["## The way back: `baton revert` of a held run beside a rollback cycle", "",
           "Issue 16: the time from `revert` to all traffic on the old version, beside the time of a "
           "full rollback cycle. On the VIP pair `web`, each run from `scripts/lab reset` (blue serving, "
           "both hosts on version 1), then, not measured, `baton apply web --change v2 --hold 1h` "
           "(green serves version 2, blue is held on version 1) before `baton revert web`, or a whole "
           "`baton apply web --change v2` (green serves version 2, blue is updated to it too) before "
           "`baton rollback --change v2 web`. The measured command runs under the probe of the VIP "
           f"benchmark ({rate} requests per second, a new TCP connection each, 3 s timeout; it reports "
           f"the host) and a poller that reads the page's version ({poll_rate} per second, a new "
           "connection each, 3 s timeout), both on the VIP and started 1 s before it "
           "(`scripts/bench.d/holdgap.py`). *To all on the old version*: from the command's start to "
           "the first answer, by send time, after which every answer of both came from blue and every "
           "poller answer said `version=1` (failures are not answers; they are counted apart); *from "
           "the switch*: the same from the start of the step that moved the VIP to blue (`switch_back` "
           "in a revert, `switch` in the cycle); *by arrival*: the same moment by the time the answers "
           "arrived (send time plus latency), not by send time. *Total*: the command from start to exit. *v2-slow* is "
           f"v2 with `sleep {slow:g}` at the end of its steps and of its rollback, standing in for a "
           "change that takes time (a package, a restart); it is added to a copy of the lab's "
           "configuration for the measurement.", "",
           f"Measured {meta.get('measured', '?')}, baton {meta.get('commit', '?')} "
           f"({meta.get('profile', 'release')} build). Reproduce: `scripts/bench --only hold`.", "",
           "| command | runs | all exit 0 | to all on the old version (min / median / max) | from the switch "
           "(median) | by arrival (median) | total (min / median / max) | requests | failed | delayed > 100 ms "
           "| poller: failed / delayed |",
           "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for kind, change, label in HOLD_KINDS:
        rs = [r for r in rows if r["kind"] == kind and r.get("change", "v2") == change]
        if not rs:
            continue
        sw = [r["switch_begin_to_all_old_ms"] for r in rs if r.get("switch_begin_to_all_old_ms") is not None]
        arr = [r["to_all_old_answered_s"] for r in rs if r.get("to_all_old_answered_s") is not None]
        out.append(f"| {label} | {len(rs)} | {'yes' if all(r.get('baton_exit') == 0 for r in rs) else 'NO'} | "
                   f"{ms_range([r.get('to_all_old_s') for r in rs], 's', 1, 3)} | "
                   + (f"{statistics.median(sw):.0f} ms" if sw else "-") + " | "
                   + (f"{statistics.median(arr):.3f} s" if arr else "-") + " | "
                   f"{ms_range([r.get('wall_s') for r in rs], 's', 1, 2)} | "
                   f"{sum(r.get('requests') or 0 for r in rs)} | {sum(r.get('failed') or 0 for r in rs)} | "
                   f"{sum(r.get('delayed_over_100ms') or 0 for r in rs)} | "
                   f"{sum(r.get('poll_failed') or 0 for r in rs)} / {sum(r.get('poll_delayed_over_100ms') or 0 for r in rs)} |")
    out += ["", "Where the time goes (the steps of baton's `--json` events, medians of the runs: each "
            "step's duration, and in brackets when it began, from the command's start; the step that "
            "moved the VIP in bold):", "",
            "| command | steps |", "| --- | --- |"]
    for kind, change, label in HOLD_KINDS:
        rs = [r for r in rows if r["kind"] == kind and r.get("change", "v2") == change and r.get("steps")]
        if not rs:
            continue
        order, dur, beg = [], {}, {}
        for r in rs:
            for st in r["steps"]:
                if st["step"] not in order:
                    order.append(st["step"])
                dur.setdefault(st["step"], []).append(st.get("duration_ms") or 0)
                b = st.get("begin_s")
                if b is None and st.get("end_s") is not None:  # (decide has no begin event)
                    b = st["end_s"] - (st.get("duration_ms") or 0) / 1000.0
                if b is not None:
                    beg.setdefault(st["step"], []).append(b)
        sw = rs[0].get("switch_step")
        parts = []
        for st in order:
            text = f"{st} {statistics.median(dur[st]):.0f} ms"
            if st in beg:
                text += f" [{statistics.median(beg[st]):.3f} s]"
            parts.append(f"**{text}**" if st == sw else text)
        out.append(f"| {label} | {', '.join(parts)} |")
    out += ["", "Each run (*blue*: the probe's answers, all from blue from then on; *version 1*: the "
            "poller's, all from blue with `version=1`; *after the exit*: the poller's answers sent after "
            "the command ended, by host and version; *afterwards*: `baton status web`, each host's "
            "version and the hold):", "",
            "| run | exit (outcome) | blue | version 1 | all on the old version | by arrival | switch step | total | "
            "requests | failed | delayed > 100 ms | max latency | poller before | poller after the exit | afterwards |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"]

    def counts(c):
        return ", ".join(f"{k}: {v}" for k, v in sorted((c or {}).items())) or "-"

    for r in rows:
        st = r.get("status_after") or {}
        vs = st.get("versions") or {}
        after = ", ".join(f"{h} v{v}" for h, v in sorted(vs.items())) + (", held" if st.get("held") else ", not held")
        sw = f"{r.get('switch_step')} {fmt(r.get('switch_step_ms'))}" if r.get("switch_step") else "-"
        out.append(f"| {r['name']} | {r.get('baton_exit')} ({r.get('outcome') or '-'}) | "
                   f"{fmt(r.get('to_all_blue_s'), 's', 3)} | {fmt(r.get('to_all_v1_s'), 's', 3)} | "
                   f"{fmt(r.get('to_all_old_s'), 's', 3)} | {fmt(r.get('to_all_old_answered_s'), 's', 3)} | {sw} | {fmt(r.get('wall_s'), 's', 2)} | "
                   f"{r.get('requests', '-')} | {r.get('failed', '-')} | {r.get('delayed_over_100ms', '-')} | "
                   f"{fmt(r.get('max_latency_ms'), 'ms', 1)} | {counts(r.get('poll_before'))} | "
                   f"{counts(r.get('poll_after_exit'))} | {after} |")
    seen = {}
    for r in rows:
        for k, v in (r.get("poll_all") or {}).items():
            seen[k] = seen.get(k, 0) + v
    if seen:
        out += ["", "The poller's answers through the VIP in all runs, by host and version (from the clients' "
                "start, 1 s before the command, to their end): " + counts(seen) + "."]
    prep = [r["prepare"] for r in rows if r.get("prepare")]
    held = [p["wall_s"] for p in prep if "--hold" in p["args"] and " v2 " in p["args"] + " "]
    full = [p["wall_s"] for p in prep if "--hold" not in p["args"] and " v2 " in p["args"] + " "]
    if held and full:
        out += ["", f"The applies before them (not measured under the clients), for scale: `apply --change v2 "
                f"--hold 1h` {ms_range(held, 's', 1, 2)}, a whole `apply --change v2` {ms_range(full, 's', 1, 2)} "
                "(min / median / max)."]
    out += timelines(d, ["hold-revert.svg", "hold-rollback.svg", "hold-revert-slow.svg", "hold-rollback-slow.svg"],
                     "Timelines of the first run of each (one tick per probe request at its send time, coloured "
                     "by the host that answered, red when it failed; tick height is the latency; the bands are "
                     "baton's steps; the lower panel is the 300 ms around the first answer of all on the old "
                     "version):")
    return out + [""]


def handover_section(d):
    path = os.path.join(d, "handover.jsonl")
    if not os.path.exists(path):
        return []
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import handover  # noqa: E402  (the benchmark's own tables)
    out = ["## VIP handover: the classic order, the overlap, and keepalived", "",
           "Issue 19. In one run, interleaved round by round: `baton switchover web` in the "
           "classic order (`handover = \"classic\"`: remove from the old holder, then add on "
           "the new one), the same pair in the overlap (`handover = \"overlap\"`, the default, "
           "`overlap = \"1s\"`: the new host takes the address "
           "first, hands the packets of connections it does not own back to the old one, which "
           "lets go 1 s later), the same two orders on web6 (*classic6*, *overlap6*: an IPv6 "
           "VIP, fd00:198:18::160, on hosts baton reaches over IPv4; the hand-back goes to the "
           "old host's own IPv6 address in the VIP's prefix, and the clients use IPv6), "
           "and keepalived's move by swapping priorities on the lab's "
           "keepalived hosts kpa/kpb (both configurations rewritten, SIGHUP to both). Each "
           "switch is measured by three clients at once from baton-client, from 1 s before to "
           "1 s after it: (a) a new TCP connection per request at 200/s, (b) one request at a "
           "time, a new connection each, (c) a keep-alive pool of 8 HTTP/1.1 connections, each "
           "sending requests back to back (at most 100/s per connection), a failed request "
           "retried once on a new connection (its wait counts from the first attempt). Failed: "
           "no answer (for the pool: the retry failed too); delayed: answered after more than "
           "100 ms; resets: attempts that ended in a connection reset.", "",
           "Reproduce: `sudo scripts/bench --only handover` (or `python3 "
           "scripts/bench.d/handover.py --rounds 20 --out bench/handover.jsonl`).", ""]
    out += handover.report_lines(path)
    return out + [""]


def overhead_section(d):
    path = os.path.join(d, "overhead.jsonl")
    if not os.path.exists(path):
        return []
    rows = [json.loads(l) for l in open(path) if l.strip()]
    out = ["## Controller overhead", "",
           "A cycle on the VIP pair (observation period 2 s): the baton process's wall "
           "time, from exec to exit, minus the time its journal says the steps took. "
           "The steps are where baton waits for others: SSH connections, remote commands, "
           "checks, the observation period, the drain. What is left is baton's own work: "
           "start-up, loading the configuration, the lock, reading and fsyncing the journal, "
           "deciding, saving state. Target: under 5% of the cycle and under 200 ms.", "",
           "| run | exit | wall | in steps | of which remote commands | overhead | share |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        out.append(f'| {r["name"]} | {r["exit"]} | {r["process_wall_s"]:.3f} s | {r["in_steps_s"]:.3f} s | '
                   f'{r["in_remote_commands_s"]:.3f} s | {r["overhead_ms"]:.1f} ms | {r["overhead_pct"]:.2f}% |')
    worst = max(rows, key=lambda r: r["overhead_ms"])
    out += ["", f"Worst: {worst['overhead_ms']:.1f} ms, {worst['overhead_pct']:.2f}% of its cycle."]
    return out + [""]


def ansible_section(d):
    path = os.path.join(d, "ansible.jsonl")
    if not os.path.exists(path):
        return []
    rows = [json.loads(l) for l in open(path) if l.strip()]
    version = next((r["ansible_version"] for r in rows if "ansible_version" in r), "?")
    runs = [r for r in rows if "tool" in r]
    tools = []
    for r in runs:
        if r["tool"] not in tools:
            tools.append(r["tool"])
    out = ["## The same work with Ansible", "",
           f"The blue-green sequence for the VIP pair: apply the change to the standby, "
           f"verify it, move the VIP (remove, add, announce), verify through the VIP, apply "
           f"to the old primary, verify it. As an Ansible playbook "
           f"(`scripts/bench.d/ansible/switch.yml`, {version}, pipelining and persistent SSH "
           f"connections on) and as `baton apply web`, against the same lab hosts in the same "
           f"run. baton does more: preflight of both hosts, the journal, compare-and-swap, "
           f"confirming one holder, undo on failure. It is timed once with the playbook's "
           f"single check through the VIP (`observe_period = \"0s\"`) and once with the "
           f"lab's 2 s observation period. Target: baton at least 5 times faster.", "",
           "| tool | runs | all ok | median | min | max |",
           "| --- | ---: | --- | ---: | ---: | ---: |"]
    med = {}
    for t in tools:
        ws = sorted(r["wall_s"] for r in runs if r["tool"] == t)
        ok = all(r["exit"] == 0 for r in runs if r["tool"] == t)
        med[t] = statistics.median(ws)
        out.append(f"| {t} | {len(ws)} | {'yes' if ok else 'NO'} | {med[t]:.2f} s | {ws[0]:.2f} s | {ws[-1]:.2f} s |")
    if "ansible" in med:
        for t in tools:
            if t != "ansible" and med[t] > 0:
                out.append("")
                out.append(f"Ansible / {t}: **{med['ansible'] / med[t]:.1f}x** (medians).")
    return out + [""]


def fleet_section(d):
    path = os.path.join(d, "fleet.tsv")
    if not os.path.exists(path):
        return []
    rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
    out = ["## Fleet scale", "",
           "`baton apply --all --change noop --batch 100% --concurrency C` over the lab's "
           "fleet of N VIP pairs (`scripts/lab up --pairs N`: 20% dev, 30% test, 50% prod, "
           "one canary each; canaries run alone and environments one after another, so "
           "there are at least six stages). Every pair runs the whole cycle: preflight, "
           "apply, checks, switch, 1 s observation, apply to the old primary, checks. "
           "Peak memory is the controller's maximum resident set (`/usr/bin/time`). "
           "Target: 100 pairs at concurrency 32 in under 30 s and under 100 MB.", "",
           "| pairs | concurrency | wall time | peak memory | exit |",
           "| ---: | ---: | ---: | ---: | ---: |"]
    for n, c, t, rss, code in rows:
        out.append(f"| {n} | {c} | {float(t):.1f} s | {int(rss) / 1024:.1f} MB | {code} |")
    return out + [""]


WATCH_KINDS = [("fast", "interval 1s, threshold 3, ttl 3s"),
               ("kill", "the same, leader killed mid-failover"),
               ("defaults", "baton's defaults: interval 10s, threshold 3, ttl 10s")]


def watch_section(d):
    path = os.path.join(d, "watch.jsonl")
    if not os.path.exists(path):
        return []
    lines = [json.loads(l) for l in open(path) if l.strip()]
    meta = next((r for r in lines if "measured" in r), {})
    rows = [r for r in lines if "kind" in r]
    if not rows:
        return []
    out = ["## Automatic failover: three watchers on etcd", "",
           "Issue 18: `baton watch` in each of the lab's three controller namespaces, sharing the lab's "
           "etcd cluster (a prefix of their own), on the VIP pair `web`; each run from `scripts/lab "
           "reset`, then blue's nginx is stopped (SIGTERM) under the VIP benchmark's probe (200 requests "
           "per second, a new connection each, 3 s timeout) (`scripts/bench.d/watchbench.py`). *To the "
           "failover's start* and *to its end*: from the stop to the `start` and `finish` records of the "
           "failover in the journal; *client outage*: from the stop to the first answer from green, by "
           "send time; *failed*: the probe's failed requests. In the *kill* runs the leading watcher is "
           "killed (SIGKILL) as soon as its failover's switch begins: *new leader* is the time from the "
           "kill until another watcher holds the leader key, *settled* until the new leader's recovery "
           "finished the run. *Failovers* counts the failover runs started (one per run is right: never "
           "a second switch).", "",
           f"Measured {meta.get('measured', '?')}, baton {meta.get('commit', '?')} "
           f"({meta.get('profile', 'release')} build). Reproduce: `scripts/bench --only watch`.", "",
           "| settings | runs | all ended ok | to the failover's start (min / median / max) | to its end | client outage "
           "| failed requests | failovers started | new leader after the kill | settled after the kill |",
           "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for kind, label in WATCH_KINDS:
        rs = [r for r in rows if r["kind"] == kind]
        if not rs:
            continue
        bad = [r for r in rs if r.get("outcome") != "ok"]
        ended = "yes" if not bad else "NO: " + "; ".join(
            f"run {r.get('n')}: {r.get('outcome')} ({(r.get('message') or '')[:120]})" for r in bad)
        out.append(f"| {label} | {len(rs)} | {ended} | {ms_range([r.get('to_start_s') for r in rs], 's', 1, 2)} | "
                   f"{ms_range([r.get('to_end_s') for r in rs], 's', 1, 2)} | "
                   f"{ms_range([r.get('client_outage_s') for r in rs], 's', 1, 2)}"
                   + (f" ({sum(1 for r in rs if r.get('client_outage_s') is None)} never within the probe)"
                      if any(r.get('client_outage_s') is None for r in rs) else "") + " | "
                   f"{sum(r.get('failed') or 0 for r in rs)} | {sum(r.get('failovers') or 0 for r in rs)} | "
                   + (ms_range([r.get('to_new_leader_s') for r in rs], 's', 1, 2) if kind == "kill" else "-") + " | "
                   + (ms_range([r.get('settled_after_kill_s') for r in rs], 's', 1, 2) if kind == "kill" else "-")
                   + " |")
    out += ["", "Beside the tools users would otherwise run (their documented defaults, not measured "
            "here): keepalived's backup takes over after three missed adverts plus its skew, about "
            "3.6 s at `advert_int 1`; Patroni's leader key lives `ttl` = 30 s and its loop runs every "
            "`loop_wait` = 10 s, so a dead primary is replaced after 30 to 40 s. baton's failover "
            "verifies the standby, fences the old primary and verifies the service address for its "
            "observation period (2 s here) before it ends; the client outage is the time to traffic on "
            "green, and the end comes after that verification.", ""]
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--machine", required=True)
    p.add_argument("--date", required=True)
    p.add_argument("--commit", required=True)
    p.add_argument("--quick", default="0")
    a = p.parse_args()
    lines = ["# Benchmarks", "",
             f"Measured on {a.machine}. Last run {a.date}, baton {a.commit}"
             + (" (smoke run: `--quick`)" if a.quick == "1" else "")
             + "; a run with `--only` leaves the other measurements' results as they were "
             "(the PostgreSQL section gives its own date).", "",
             "Reproduce: `sudo scripts/bench` (everything; brings the lab up as needed), or "
             "`scripts/bench --only vip-gap` / `--only dns-gap` / `--only pg-gap` / `--only lb-gap` / `--only hold` / `--only watch` / `--only handover` / `--only overhead` / `--only ansible` / "
             "`--only fleet`. Raw results are in `bench/`.", ""]
    lines += vip_section(a.dir)
    lines += dns_section(a.dir)
    lines += pg_section(a.dir)
    lines += lb_section(a.dir)
    lines += hold_section(a.dir)
    lines += watch_section(a.dir)
    lines += handover_section(a.dir)
    lines += overhead_section(a.dir)
    lines += ansible_section(a.dir)
    lines += fleet_section(a.dir)
    notes = os.path.join(a.dir, "NOTES.md")
    if os.path.exists(notes):
        lines += [open(notes).read().rstrip(), ""]
    with open(a.out, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
