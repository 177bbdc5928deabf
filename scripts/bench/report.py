#!/usr/bin/env python3
"""Assembles the per-phase JSON that scripts/bench.sh wrote into one results file and prints the table.

usage: report.py RESULTS_DIR JSON_OUT

Every tunnel figure is also given as a ratio to the direct path of the same run. Then each Portway configuration is
compared, row by row, with the best peer run in the same configuration in the same sitting (PEER_ROWS; `met` when
Portway is at least as good within 3 % noise), and the absolute targets are checked: TLS + mux throughput >= 0.28x
direct, server + client RSS holding 1,000 connections <= 32 MiB in both configurations.
"""
import json
import os
import statistics
import sys

TARGETS = [
    # (paths, metric, op, bound, kind, label)
    (["portway-tcp"], "tput_up_1", ">=", 0.28, "ratio", "TCP throughput, 1 stream"),
    (["portway-tcp"], "tput_up_8", ">=", 0.28, "ratio", "TCP throughput, 8 streams"),
    (["portway-tcp", "portway-plain"], "rss_conc", "<=", 32.0, "abs", "server + client RSS with 1,000 connections (MiB)"),
]
# Each Portway configuration against the peers run the same way: (label, portway path, peer paths)
CONFIGS = [
    ("TLS + tcpMux (frp's default)", "portway-tcp", ["frp-tcp"]),
    ("plain: no TLS, no mux", "portway-plain", ["rathole", "bore", "frp-plain"]),
]
PEER_ROWS = ["tput_up_1", "tput_up_8", "lat_p50", "lat_p99", "connrate", "rss_conc", "udp_rr_p50"]
NOISE = 0.03  # within 3 % of the best peer counts as met

# (metric, label, phase, field, scale, higher_is_better, fmt)
ROWS = [
    ("tput_up_1", "TCP 1 stream MB/s (to service)", "tput_up_1", "mb_s", 1, True, "%.0f"),
    ("tput_up_8", "TCP 8 streams MB/s (to service)", "tput_up_8", "mb_s", 1, True, "%.0f"),
    ("tput_down_1", "TCP 1 stream MB/s (from service)", "tput_down_1", "mb_s", 1, True, "%.0f"),
    ("tput_down_8", "TCP 8 streams MB/s (from service)", "tput_down_8", "mb_s", 1, True, "%.0f"),
    ("fair_up_8", "8 streams to service: slowest/fastest", "tput_up_8", "fairness", 1, True, "%.2f"),
    ("fair_down_8", "8 streams from service: slowest/fastest", "tput_down_8", "fairness", 1, True, "%.2f"),
    ("lat_p50", "TCP round trip p50 us", "lat", "p50_us", 1, False, "%.1f"),
    ("lat_p99", "TCP round trip p99 us", "lat", "p99_us", 1, False, "%.1f"),
    ("connrate", "connections/s (connect+echo+close)", "connrate", "conns_per_s", 1, True, "%.0f"),
    ("conc_ok", "1,000 conns: echoed", "conc", "ok", 1, True, "%.0f"),
    ("conc_secs", "1,000 conns: secs until all echoed", "conc", "secs_to_all", 1, False, "%.3f"),
    ("rss_idle", "RSS server+client idle MiB", "idle", "rss_idle_kib", 1 / 1024, False, "%.1f"),
    ("rss_conc", "RSS server+client @1,000 conns MiB", "conc", "rss_total_kib", 1 / 1024, False, "%.1f"),
    ("rss_peak", "RSS server+client peak (VmHWM) MiB", "end", "hwm_kib", 1 / 1024, False, "%.1f"),
    ("rss_after", "RSS server+client after the burst MiB", "after_burst", "rss_kib", 1 / 1024, False, "%.1f"),
    ("udp_rr_p50", "UDP round trip p50 us (1 in flight)", "udp_rr", "p50_us", 1, False, "%.1f"),
    ("udp_rr_rate", "UDP datagrams/s (1 in flight)", "udp_rr", "dgrams_per_s", 1, True, "%.0f"),
    ("udp_flood_rate", "UDP datagrams/s (%s in flight)", "udp_flood", "dgrams_per_s", 1, True, "%.0f"),
    ("udp_flood_loss", "UDP loss %% (%s in flight)", "udp_flood", "loss_pct", 1, False, "%.2f"),
    ("udp_flood_p99", "UDP round trip p99 us (%s in flight)", "udp_flood", "p99_us", 1, False, "%.0f"),
    ("wake_conn", "tunnel wake-ups per connect+echo+close", "connrate", "wakeups_per_op", 1, False, "%.1f"),
    ("wake_rt", "tunnel wake-ups per round trip", "lat", "wakeups_per_op", 1, False, "%.2f"),
]
CPU_PHASES = ["lat", "connrate", "conc", "udp_rr", "udp_flood", "tput_up_1", "tput_up_8", "tput_down_1", "tput_down_8"]
PATH_ORDER = ["direct", "portway-tcp", "frp-tcp", "portway-plain", "portway-plain-nosplice", "portway-plain-splice", "rathole", "bore",
              "frp-plain", "portway-v2", "portway-websocket", "portway-wss", "portway-quic", "portway-stcp", "portway-xtcp"]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"error": "unreadable %s: %s" % (os.path.basename(path), e)}


def collect(rdir):
    """One sitting's (or one round's) per-path figures: the path directories of RDIR."""
    paths, order = {}, []
    names = sorted(d for d in os.listdir(rdir) if os.path.isdir(os.path.join(rdir, d)) and not d.startswith("round-"))
    for name in sorted(names, key=lambda n: PATH_ORDER.index(n) if n in PATH_ORDER else 99):
        d = os.path.join(rdir, name)
        p = {}
        for fn in sorted(os.listdir(d)):
            if fn.endswith(".json"):
                p[fn[:-5]] = load(os.path.join(d, fn))
        for phase, count in (("connrate", "ok"), ("lat", "ok")):
            # context switches of the tunnel's threads (voluntary + involuntary) per operation of the phase
            r, c = p.get(phase), p.get(phase + ".cpu", {})
            if isinstance(r, dict) and r.get(count) and "tunnel_ctx_switches" in c and name != "direct":
                r["wakeups_per_op"] = c["tunnel_ctx_switches"] / r[count]
        for phase in ("tput_up_8", "tput_down_8"):
            r = p.get(phase)
            # a stream starved while the others run shows here, not in the total
            if isinstance(r, dict) and r.get("stream_max_mb"):
                r["fairness"] = r.get("stream_min_mb", 0) / r["stream_max_mb"]
        paths[name] = p
        order.append(name)

    summary, errors, cpu, noisy, overflows = {}, [], {}, [], []
    for name in order:
        p = paths[name]
        if "skipped" in p or "failed" in p:
            continue
        s = {}
        for metric, _label, phase, field, scale, _hib, _fmt in ROWS:
            v = p.get(phase, {}).get(field)
            if metric == "rss_conc" and not p.get("conc", {}).get("rss_kib"):
                continue  # direct: no tunnel processes to measure
            if isinstance(v, (int, float)) and v >= 0:
                s[metric] = v * scale
        summary[name] = s
        for phase in CPU_PHASES:
            res = p.get(phase, {})
            if res.get("error"):
                errors.append("%s %s: %s" % (name, phase, res["error"]))
            c = p.get(phase + ".cpu", {})
            if c.get("listen_overflows"):
                overflows.append("%s %s: %d listen-queue overflows, %d SYN retransmissions (a full accept queue; "
                                 "each costs the client a 1 s SYN retry)" % (name, phase, c["listen_overflows"],
                                                                                 c.get("syn_retrans", 0)))
            if not c.get("wall_ms"):
                continue
            tck, wall = c["clk_tck"], c["wall_ms"] / 1000.0
            tunnel = c["tunnel_cpu_ticks"] / tck
            ld = c["service_cpu_ticks"] / tck + (res.get("tool_cpu_s") or 0)
            # a task's CPU time includes the softirq work done on its behalf, so compare with busy + irq; what
            # ksoftirqd does is deferred network work of the data path, not noise
            ksoft = c.get("ksoftirqd_cpu_ticks", 0) / tck
            others = max(0.0, (c["cpu_busy_ticks"] + c["cpu_irq_ticks"]) / tck - tunnel - ld - ksoft)
            cpu.setdefault(name, {})[phase] = {
                "tunnel": round(tunnel / wall, 2), "load": round(ld / wall, 2), "ksoftirqd": round(ksoft / wall, 2),
                "others": round(others / wall, 2), "irq": round(c["cpu_irq_ticks"] / tck / wall, 2),
                "steal": round(c["cpu_steal_ticks"] / tck / wall, 2)}
            # conc sleeps on purpose (the RSS reading waits 1 s), and phases under 1 s are too short for tick counts
            if phase != "conc" and wall >= 1.0 and (others / wall > 0.10 or c["cpu_steal_ticks"] / tck / wall > 0.05):
                noisy.append("%s %s: other processes %.0f%%, steal %.0f%% of the CPU" % (
                    name, phase, 100 * others / wall, 100 * c["cpu_steal_ticks"] / tck / wall))
        for phase in ("tput_up_8", "tput_down_8"):
            f = p.get(phase, {}).get("fairness")
            if f is not None and f < 0.5:
                errors.append("%s %s: unfair: the slowest stream moved %.0f%% of what the fastest did" % (
                    name, phase, 100 * f))
        if p.get("end") and not (p["end"].get("server_alive") and p["end"].get("client_alive")):
            errors.append("%s: a tunnel process died during the run (see its log)" % name)
    return {"paths": paths, "order": order, "summary": summary, "errors": errors, "cpu": cpu, "noisy": noisy,
            "overflows": overflows}


def median(values):
    return statistics.median(values) if values else None


def combine(runs):
    """Several rounds into one view: per path and row the median of the rounds and the spread (min, max, rounds);
    the CPU shares are medians too; notes and errors keep their round's number."""
    order = sorted({n for r in runs for n in r["order"]}, key=lambda n: PATH_ORDER.index(n) if n in PATH_ORDER else 99)
    summary, spread, cpu = {}, {}, {}
    for name in order:
        vals = {}
        for r in runs:
            for m, v in r["summary"].get(name, {}).items():
                vals.setdefault(m, []).append(v)
        if any(name in r["summary"] for r in runs):
            summary[name] = {m: median(v) for m, v in vals.items()}
            spread[name] = {m: [min(v), max(v), len(v)] for m, v in vals.items()}
        shares = {}
        for r in runs:
            for ph, c in r["cpu"].get(name, {}).items():
                for k, v in c.items():
                    shares.setdefault(ph, {}).setdefault(k, []).append(v)
        if shares:
            cpu[name] = {ph: {k: round(median(v), 2) for k, v in c.items()} for ph, c in shares.items()}
    # a path's notes (skipped, failed, accept-queue lengths): the first round that has them
    paths = {}
    for name in order:
        for r in runs:
            p = r["paths"].get(name)
            if p is not None and (name not in paths or "skipped" in p or "failed" in p):
                paths[name] = p
    tagged = lambda key: ["round %d: %s" % (i + 1, e) for i, r in enumerate(runs) for e in r[key]]
    return {"paths": paths, "order": order, "summary": summary, "spread": spread, "errors": tagged("errors"),
            "cpu": cpu, "noisy": tagged("noisy"), "overflows": tagged("overflows")}


def main():
    rdir, out = sys.argv[1], sys.argv[2]
    meta = load(os.path.join(rdir, "meta.json"))
    end_load = load(os.path.join(rdir, "loadavg_end.json"))
    meta["loadavg_end"] = end_load if isinstance(end_load, str) else None
    window = meta.get("settings", {}).get("udp_window", "?")
    # --rounds N (N > 1): results/round-K/PATH/; otherwise results/PATH/
    round_dirs = sorted((d for d in os.listdir(rdir) if d.startswith("round-") and d[6:].isdigit()),
                        key=lambda d: int(d[6:]))
    runs = [collect(os.path.join(rdir, d)) for d in round_dirs]
    for d, r in zip(round_dirs, runs):
        r["loadavg_start"] = load(os.path.join(rdir, d, "loadavg_start.json"))
    view = combine(runs) if runs else collect(rdir)
    multi = bool(runs)
    paths, order, summary = view["paths"], view["order"], view["summary"]
    errors, cpu, noisy, overflows = view["errors"], view["cpu"], view["noisy"], view["overflows"]
    spread = view.get("spread", {})
    ratios = {}
    direct = summary.get("direct", {})
    for name, s in summary.items():
        if name == "direct":
            continue
        ratios[name] = {m: round(v / direct[m], 3) for m, v in s.items() if direct.get(m)}

    # ------------------------------------------------------------ table
    cols = [n for n in order if n in summary]
    colw = {n: max(16, len(n)) + (2 if n != "direct" else 0) for n in cols}
    lines = []
    lines.append("%-40s" % "metric" + "".join("%*s" % (colw[n], n) for n in cols))
    for metric, label, _phase, _field, _scale, _hib, fmt in ROWS:
        if "%s" in label:
            label = label % window
        label = label.replace("%%", "%")
        row = "%-40s" % label
        any_val = False
        for n in cols:
            v = summary[n].get(metric)
            if v is None:
                cell = "-"
            else:
                any_val = True
                cell = fmt % v
                r = ratios.get(n, {}).get(metric)
                if r is not None and metric not in ("conc_ok",):
                    cell += " (%.2fx)" % r
            row += "%*s" % (colw[n], cell)
        if any_val:
            lines.append(row)
    # wire v2 against v1 on the same run (the bar: within 5% on every row)
    v2_vs_v1 = {}
    if "portway-v2" in summary and "portway-tcp" in summary:
        v1s, v2s = summary["portway-tcp"], summary["portway-v2"]
        v2_vs_v1 = {m: round(v2s[m] / v1s[m], 3) for m in v2s if v1s.get(m)}
    # each configuration against its best peer, row by row
    info = {m: (label, hib, fmt) for m, label, _p, _f, _s, hib, fmt in ROWS}
    versus, versus_lines = [], []
    for cfg, pw, peers in CONFIGS:
        if pw not in summary:
            continue
        ran = [n for n in peers if n in summary]
        notes = ["%s: %s" % (n, paths[n]["skipped"].get("skipped")) for n in peers if "skipped" in paths.get(n, {})]
        if multi:  # which rounds lost the peer (its other rounds still count)
            notes = ["%s: round %d: %s" % (n, i + 1, r["paths"][n]["skipped"].get("skipped")) for n in peers
                     for i, r in enumerate(runs) if "skipped" in r["paths"].get(n, {})]
            notes += ["%s: failed in round %d" % (n, i + 1) for n in peers for i, r in enumerate(runs)
                      if "failed" in r["paths"].get(n, {})]
        else:
            notes += ["%s: failed" % n for n in peers if "failed" in paths.get(n, {})]
        versus_lines.append("  %s: %s against %s" % (cfg, pw, ", ".join(ran) or "no peer"))
        versus_lines += ["    (%s)" % n for n in notes]
        if not ran:
            continue
        if multi:
            versus_lines.append("    %-40s %22s%s %22s %8s" % ("row (median [min-max])", pw, "".join(
                " %22s" % n for n in ran), "best peer", "ratio"))
        else:
            versus_lines.append("    %-40s %10s %22s %8s" % ("row", pw, "best peer", "ratio"))
        for metric in PEER_ROWS:
            label, hib, fmt = info[metric]
            v = summary[pw].get(metric)
            cands = [(summary[n][metric], n) for n in ran if summary[n].get(metric) is not None]
            if v is None or not cands:
                continue
            best, who = (max if hib else min)(cands)
            ratio = v / best if best else None
            ok = None if ratio is None else (ratio >= 1 - NOISE if hib else ratio <= 1 + NOISE)
            versus.append({"config": cfg, "path": pw, "metric": metric, "value": v, "best_peer": who,
                           "best_value": best, "ratio": None if ratio is None else round(ratio, 3), "met": ok})
            if multi:
                # the ratios the rounds allow at their extremes (Portway's worst against the peer's best and the
                # other way round): when they fall on both sides of the 3 % line, the rounds do not decide the row
                pmin, pmax, _ = spread[pw][metric]
                bmin, bmax, _ = spread[who][metric]
                worst = (pmin / bmax if hib else pmax / bmin) if bmin and bmax else None
                bestr = (pmax / bmin if hib else pmin / bmax) if bmin and bmax else None
                line = 1 - NOISE if hib else 1 + NOISE
                undecided = worst is not None and (min(worst, bestr) < line < max(worst, bestr)
                                                   or line in (worst, bestr))
                versus[-1].update({"value_spread": [pmin, pmax], "best_spread": [bmin, bmax],
                                   "ratio_range": [round(min(worst, bestr), 3), round(max(worst, bestr), 3)]
                                   if worst is not None else None, "undecided": undecided})
                cell = lambda n: "%s [%s-%s]" % (fmt % summary[n][metric], fmt % spread[n][metric][0],
                                                  fmt % spread[n][metric][1]) if summary[n].get(metric) is not None else "-"
                versus_lines.append("    %-40s %22s%s %22s %8s  %s%s" % (
                    label, cell(pw), "".join(" %22s" % cell(n) for n in ran), who,
                    "-" if ratio is None else "%.2fx" % ratio,
                    {True: "met", False: "NOT MET", None: "no figure"}[ok],
                    "  (undecided: the rounds give %.2fx-%.2fx)" % (min(worst, bestr), max(worst, bestr))
                    if undecided else ""))
                continue
            versus_lines.append("    %-40s %10s %22s %8s  %s" % (
                label, fmt % v, "%s (%s)" % (fmt % best, who), "-" if ratio is None else "%.2fx" % ratio,
                {True: "met", False: "NOT MET", None: "no figure"}[ok]))
    targets = []
    for name in cols:
        if name == "direct":
            continue
        for tpaths, metric, op, bound, kind, label in TARGETS:
            if name not in tpaths:
                continue
            v = ratios.get(name, {}).get(metric) if kind == "ratio" else summary[name].get(metric)
            ok = None if v is None else (v >= bound if op == ">=" else v <= bound)
            targets.append({"path": name, "metric": metric, "label": label, "target": "%s %s%s" % (
                op, bound, "x" if kind == "ratio" else ""), "value": v, "met": ok})
    print()
    print("Portway benchmark, %s, commit %s%s, %s CPUs online, everything pinned to CPU %s%s" % (
        meta.get("date"), meta.get("commit"), " (dirty tree)" if meta.get("dirty") else "", meta.get("cpus_online"),
        meta.get("pinned_cpu"), ", QUICK run" if meta.get("quick") else ""))
    print("load average before: %s, after: %s" % (meta.get("loadavg_start"), meta.get("loadavg_end")))
    if multi:
        print("%d rounds in this sitting, the path list alternating forward and backward; every figure below is the "
              "median of the rounds (ratios: of medians; CPU shares: medians), each round in the JSON (rounds[])" % len(runs))
        print("load average at each round's start: %s" % "; ".join(
            "%d: %s" % (i + 1, r["loadavg_start"] if isinstance(r["loadavg_start"], str) else "?")
            for i, r in enumerate(runs)))
    print()
    print("\n".join(lines))
    if multi:
        print()
        print("spread over the %d rounds (min-max; fewer rounds noted as /n):" % len(runs))
        scolw = {n: max(22, len(n) + 2) for n in cols}
        print("%-40s" % "metric" + "".join("%*s" % (scolw[n], n) for n in cols))
        for metric, label, _phase, _field, _scale, _hib, fmt in ROWS:
            if "%s" in label:
                label = label % window
            cells = []
            for n in cols:
                sp = spread.get(n, {}).get(metric)
                cells.append("-" if sp is None else "%s-%s%s" % (fmt % sp[0], fmt % sp[1],
                                                                 "" if sp[2] == len(runs) else " /%d" % sp[2]))
            if any(c != "-" for c in cells):
                print("%-40s" % label.replace("%%", "%") + "".join("%*s" % (scolw[n], c) for n, c in zip(cols, cells)))
    for i, r in enumerate(runs or [view]):
        tag = "round %d: " % (i + 1) if multi else ""
        for name in r["order"]:
            p = r["paths"][name]
            if "skipped" in p:
                print("%s%s: skipped: %s" % (tag, name, p["skipped"].get("skipped")))
            if "failed" in p:
                print("%s%s: FAILED: %s" % (tag, name, p["failed"].get("error")))
    if cpu:
        print()
        print("share of CPU %s per phase: tunnel (server+client), load (service+load tool), ksoftirqd, other "
              "processes, steal%s:" % (meta.get("pinned_cpu"), " (medians of the rounds)" if multi else ""))
        for name, c in cpu.items():
            print("  %s" % name)
            for ph, v in c.items():
                print("    %-12s %s" % (ph, "  ".join("%s %.2f" % (k, v[k]) for k in ("tunnel", "load", "ksoftirqd", "others", "steal"))))
        if noisy:
            print("NOISE: something else ran on the pinned CPU; figures of these phases are unreliable:")
            for n in noisy:
                print("  " + n)
    if overflows:
        print()
        print("kernel TCP counters (system-wide, during the phase); accept queues: %s" % ", ".join(
            "%s public port %s, bindPort %s" % (n, paths[n]["idle"].get("public_listen_backlog"),
                                               paths[n]["idle"].get("bind_listen_backlog"))
            for n in order if "idle" in paths[n]))
        for o in overflows:
            print("  " + o)
    if v2_vs_v1:
        print()
        print("wire v2 / wire v1 (portway-v2 / portway-tcp; higher is better where the row's figure is):")
        for metric, label, _phase, _field, _scale, hib, _fmt in ROWS:
            r = v2_vs_v1.get(metric)
            if r is None:
                continue
            if "%s" in label:
                label = label % window
            worse = (r < 0.95) if hib else (r > 1.05)
            print("  %-40s %.3f%s" % (label.replace("%%", "%"), r, "  MORE THAN 5% WORSE" if worse else ""))
    if versus_lines:
        print()
        print("against the best peer in the same configuration, same sitting (ratio = Portway / peer; met: at least as "
              "good within %d%%):" % round(100 * NOISE))
        if multi:
            print("  (on the medians of the %d rounds; undecided: the rounds' extremes put the ratio on both sides of "
                  "the line)" % len(runs))
        print("\n".join(versus_lines))
    if targets:
        print()
        print("targets (ratios to direct on this run%s):" % (", of the rounds' medians" if multi else ""))
        for t in targets:
            v = t["value"]
            print("  %-18s %-50s %-8s %8s  %s" % (t["path"], t["label"], t["target"],
                                                 "-" if v is None else ("%.2f" % v) + ("x" if "x" in t["target"] else ""),
                                                 {True: "met", False: "NOT MET", None: "no figure"}[t["met"]]))
    if errors:
        print()
        print("errors:")
        for e in errors:
            print("  " + e)
    result = {"meta": meta, "summary": summary, "ratios": ratios, "v2_vs_v1": v2_vs_v1, "versus_peers": versus,
              "targets": targets, "cpu_share": cpu,
              "noisy_phases": noisy, "listen_overflows": overflows, "errors": errors, "paths": paths}
    if multi:
        # every round's own figures; the top level holds the medians (summary), their spread and, in paths, each
        # path's raw phases from its first round (its notes: skipped or failed from the round that had them)
        result["spread"] = spread
        result["rounds"] = [{"round": i + 1, "loadavg_start": r["loadavg_start"], "summary": r["summary"],
                             "cpu_share": r["cpu"], "noisy_phases": r["noisy"], "listen_overflows": r["overflows"],
                             "errors": r["errors"], "paths": r["paths"]} for i, r in enumerate(runs)]
    with open(out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=False)
        f.write("\n")


if __name__ == "__main__":
    main()
