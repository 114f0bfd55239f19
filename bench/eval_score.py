#!/usr/bin/env python3
"""Runs `ollama-guard scan --jsonl` over the prepared sets and prints, per
scanner and data set: true-positive rate, false-positive rate, precision and
scans per second (from the scanners' own timings, one core).

    eval_score.py BINARY DATA_DIR GITLEAKS_BINARY
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

binary, data, gitleaks = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
# EVAL_ONLY=secrets,pii runs only those: the prompt-injection test splits are
# meant to be read once per model.
only = set(filter(None, os.environ.get("EVAL_ONLY", "").split(",")))


def load(name):
    return [json.loads(l) for l in (data / name).read_text().splitlines() if l.strip()]


def scan(scanner_yaml, rows):
    """One report per row, scanned by the given input scanner list."""
    env = {**os.environ, "CONFIG_FILE": "/dev/null", "SCANNERS_INPUT": scanner_yaml, "SCANNERS_OUTPUT": "[]"}
    lines = "".join(json.dumps({"text": r["text"], "id": i}) + "\n" for i, r in enumerate(rows))
    done = subprocess.run([binary, "scan", "--jsonl"], input=lines, capture_output=True, text=True, env=env)
    if done.returncode not in (0, 1):
        sys.exit(f"scan failed ({done.returncode}): {done.stderr or done.stdout[:500]}")
    reports = [json.loads(l) for l in done.stdout.splitlines()]
    assert [r["id"] for r in reports] == list(range(len(rows))), "reports out of order"
    return reports


def rate(n, d):
    return n / d if d else float("nan")


def speed(reports):
    micros = [sum(s["micros"] for s in r["scanners"]) for r in reports]
    return 1e6 / (sum(micros) / len(micros)) if micros and sum(micros) else float("inf")


rows_out = []


def row(scanner, dataset, tpr, fpr, precision, per_sec, note=""):
    rows_out.append((scanner, dataset, tpr, fpr, precision, per_sec, note))
    print(f"{scanner:<17} {dataset:<28} {tpr:>6.3f} {fpr:>6.3f} {precision:>9.3f} {per_sec:>11,.0f}  {note}", flush=True)


print(f"{'scanner':<17} {'data set':<28} {'TPR':>6} {'FPR':>6} {'precision':>9} {'scans/s':>11}")

def prompt_injection():
    # Prompt injection: the held-out test split (bench/pi_data.py), once, at
    # the shipped threshold. One run gives the scanner's verdict and each
    # part's score (rules, classifier), so all three rows share the texts.
    rows = load("pi_test.jsonl")
    reports = scan("[{type: prompt_injection}]", rows)
    parts = [r["scanners"][0].get("parts", {}) for r in reports]
    judges = {
        "rules + classifier": [not r["allowed"] for r in reports],
        "rules alone": [p.get("rules", 0) >= 0.75 for p in parts],
        "classifier alone": [p.get("classifier", 0) >= 0.75 for p in parts],
    }
    labels = [x["label"] for x in rows]
    for judge, flagged in judges.items():
        tp = sum(1 for f, y in zip(flagged, labels) if f and y == 1)
        fp = sum(1 for f, y in zip(flagged, labels) if f and y == 0)
        pos = sum(labels)
        row("prompt_injection", f"test / {judge}", rate(tp, pos), rate(fp, len(rows) - pos), rate(tp, tp + fp), speed(reports), f"n={len(rows)}")
    flagged = judges["rules + classifier"]
    for source in sorted({x["source"] for x in rows}):
        idx = [i for i, x in enumerate(rows) if x["source"] == source]
        pos = [i for i in idx if labels[i] == 1]
        neg = [i for i in idx if labels[i] == 0]
        tpr = rate(sum(flagged[i] for i in pos), len(pos))
        fpr = rate(sum(flagged[i] for i in neg), len(neg))
        row("prompt_injection", f"  {source}", tpr, fpr, float("nan"), speed([reports[i] for i in idx]), f"{len(pos)} attacks, {len(neg)} benign")


def pii():
    # PII: recall per entity on the presidio templates; FPR on benign prompts.
    rows = load("pii_presidio.jsonl")
    reports = scan("[{type: pii, mode: redact}]", rows)
    placeholder_type = {"EMAIL": "email", "PHONE": "phone", "CREDIT_CARD": "credit_card", "IBAN": "iban", "SSN": "ssn", "IP_ADDRESS": "ip"}
    found_by_type, total_by_type = {}, {}
    true_detections = all_detections = 0
    for x, r in zip(rows, reports):
        spans = [(d["start"], d["end"], placeholder_type.get(d["placeholder"].strip("[]").rstrip("_#").rstrip("_0123456789"), "?")) for d in r["redactions"]]
        for e in x["entities"]:
            total_by_type[e["type"]] = total_by_type.get(e["type"], 0) + 1
            hit = any(s < e["end"] and e["start"] < t and k == e["type"] for s, t, k in spans)
            found_by_type[e["type"]] = found_by_type.get(e["type"], 0) + int(hit)
        for s, t, k in spans:
            all_detections += 1
            true_detections += int(any(s < e["end"] and e["start"] < t for e in x["entities"]))
    benign = load("pii_benign.jsonl")
    benign_reports = scan("[{type: pii, mode: redact}]", benign)
    fpr = rate(sum(1 for r in benign_reports if r["redactions"]), len(benign))
    for kind in ["email", "credit_card", "iban", "ssn", "phone"]:
        row("pii", f"presidio/{kind}", rate(found_by_type.get(kind, 0), total_by_type.get(kind, 0)), fpr, rate(true_detections, all_detections), speed(reports), f"n={total_by_type.get(kind, 0)}")


def secrets_eval():
    # Secrets: agreement with gitleaks on generated tokens.
    rows = load("secrets_generated.jsonl")
    reports = scan("[{type: secrets, mode: redact}]", rows)
    with tempfile.TemporaryDirectory() as d:
        for i, x in enumerate(rows):
            Path(d, f"{i:05}.txt").write_text(x["text"] + "\n")
        report = Path(d, "gitleaks.json")
        subprocess.run([gitleaks, "dir", d, "--no-banner", "--report-format", "json", "--report-path", str(report), "--exit-code", "0"], capture_output=True, check=True)
        flagged = {int(Path(f["File"]).stem) for f in json.loads(report.read_text() or "[]") if Path(f["File"]).suffix == ".txt"}
    ours = [bool(r["redactions"]) for r in reports]
    theirs = [i in flagged for i in range(len(rows))]
    agree = sum(1 for a, b in zip(ours, theirs) if a == b)
    pos = [x["positive"] for x in rows]
    tp = sum(1 for o, p in zip(ours, pos) if o and p)
    fp = sum(1 for o, p in zip(ours, pos) if o and not p)
    row("secrets", "generated/vs labels", rate(tp, sum(pos)), rate(fp, len(pos) - sum(pos)), rate(tp, tp + fp), speed(reports), f"n={len(rows)}")
    row("secrets", "generated/agree w. gitleaks", rate(agree, len(rows)), float("nan"), float("nan"), speed(reports), f"gitleaks flagged {len(flagged)}")
    disagreements = [(rows[i]["kind"], ours[i], theirs[i]) for i in range(len(rows)) if ours[i] != theirs[i]]
    if disagreements:
        from collections import Counter
        print("  disagreements (kind, ours, gitleaks):", Counter(disagreements).most_common())


for name, run in [("prompt_injection", prompt_injection), ("pii", pii), ("secrets", secrets_eval)]:
    if not only or name in only:
        run()
