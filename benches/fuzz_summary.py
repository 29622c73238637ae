"""Summarises fuzzing logs (blocks of `=== TARGET HH:MM:SS` then libFuzzer's final stats and
any crash) into fuzz.json for benches/trust_report.py.

  python3 benches/fuzz_summary.py OUT_JSON NOTE LOG:SECONDS [LOG:SECONDS...]

A target's runs add up (seconds and inputs); every crash is kept."""
import json
import os
import re
import sys

out, note, logs = sys.argv[1], sys.argv[2], sys.argv[3:]
targets = {}
for spec in logs:
    log, seconds = spec.rsplit(":", 1)
    name = None
    for line in open(log):
        m = re.match(r"=== (\w+) ", line)
        if m:
            name = m.group(1)
            t = targets.setdefault(name, {"name": name, "seconds": 0, "runs": 0, "per_s": 0, "found": []})
            t["seconds"] += int(seconds)
            continue
        if not name:
            continue
        t = targets[name]
        if m := re.match(r"stat::number_of_executed_units:\s+(\d+)", line):
            t["runs"] += int(m.group(1))
        elif m := re.match(r"stat::average_exec_per_sec:\s+(\d+)", line):
            t["per_s"] = max(t["per_s"], int(m.group(1)))
        elif m := re.search(r"panicked at (\S+)", line):
            t["found"].append(m.group(1).rstrip(":"))
        elif m := re.search(r"libFuzzer: (out-of-memory|malloc limit)", line):
            t["found"].append(m.group(1))
for t in targets.values():
    d = os.path.join("fuzz/corpus", t["name"])
    t["corpus"] = len(os.listdir(d)) if os.path.isdir(d) else 0
    t["found"] = "; ".join(t["found"]) or "nothing"
json.dump({"note": note, "targets": list(targets.values())}, open(out, "w"), indent=1)
