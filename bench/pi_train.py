#!/usr/bin/env python3
"""Trains the prompt_injection classifier head on frozen all-MiniLM-L6-v2
embeddings and picks its threshold on the validation split.

    pi_train.py DATA_DIR MODELS_DIR JAILGUARD_HEAD OUT_JSON

Texts are cut into windows exactly as the scanner cuts them (src/scan/
classifier/windows.rs: 126 word pieces between [CLS] and [SEP], stride 96),
embedded with the same ONNX graph and runtime, and every window is one
training example with its text's label. A text's score is the highest of its
windows' scores; texts of fewer than MIN_PIECES word pieces with a letter or
digit (`[UNK]` is none) ("ok", "thanks", "yes please") are not judged (score 0: the rules
alone decide them), as in the scanner. Candidates: logistic regression, a one-hidden-layer MLP, and
jailguard 0.1.2's MLP as shipped; the one with the best validation TPR at a
validation FPR of at most 0.75% wins, and that threshold ships with it. The
test split is not read here.
"""
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

data, models, jailguard_path, out_path = (Path(a) for a in sys.argv[1:5])
WINDOW, STRIDE, CLS, SEP = 126, 96, 101, 102
TARGET_FPR = 0.0075
# One- and two-word texts say too little for the classifier: in the public
# training data most of them are attack fragments ("Skip safety"), which
# teaches it to flag "thanks" and "ok".
MIN_PIECES = 3
rng = np.random.default_rng(7)


def load(name):
    return [json.loads(l) for l in (data / name).read_text().splitlines() if l.strip()]


tok = Tokenizer.from_file(str(models / "all-MiniLM-L6-v2/tokenizer.json"))
tok.no_padding()
tok.no_truncation()
opts = ort.SessionOptions()
opts.intra_op_num_threads = 2
session = ort.InferenceSession(str(models / "all-MiniLM-L6-v2/model.onnx"), opts)


def windows(text):
    ids = tok.encode(text, add_special_tokens=False).ids
    starts = list(range(0, max(len(ids) - WINDOW, 0) + 1, STRIDE))
    if starts[-1] + WINDOW < len(ids):
        starts.append(len(ids) - WINDOW)
    return [[CLS] + ids[s : s + WINDOW] + [SEP] for s in starts]


def judged(text):
    tokens = tok.encode(text, add_special_tokens=False).tokens
    return sum(t != "[UNK]" and any(c.isalnum() for c in t) for t in tokens) >= MIN_PIECES


def embed(rows, name):
    """(window embeddings, window -> row index), cached by the rows' hash."""
    digest = hashlib.sha256(json.dumps([r["text"] for r in rows]).encode()).hexdigest()[:16]
    cache = data / f"emb_{name}_{digest}.npz"
    if cache.exists():
        z = np.load(cache)
        return z["x"], z["owner"]
    wins, owner = [], []
    for i, r in enumerate(rows):
        for w in windows(r["text"]):
            wins.append(w)
            owner.append(i)
    order = np.argsort([len(w) for w in wins], kind="stable")
    x = np.zeros((len(wins), 384), np.float32)
    started = time.time()
    for b in range(0, len(order), 64):
        batch = [wins[j] for j in order[b : b + 64]]
        n = max(map(len, batch))
        ids = np.array([w + [0] * (n - len(w)) for w in batch], np.int64)
        mask = np.array([[1] * len(w) + [0] * (n - len(w)) for w in batch], np.int64)
        x[order[b : b + 64]] = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    print(f"{name}: {len(rows)} texts, {len(wins)} windows embedded in {time.time() - started:.0f} s", flush=True)
    owner = np.array(owner)
    np.savez(cache, x=x, owner=owner)
    return x, owner


def per_text(scores, owner, n):
    best = np.full(n, -np.inf)
    np.maximum.at(best, owner, scores)
    return best


def operating_point(scores, labels):
    """(threshold, TPR, FPR) at the lowest threshold with FPR <= TARGET_FPR."""
    benign = np.sort(scores[labels == 0])
    k = int(np.floor(TARGET_FPR * len(benign)))
    threshold = benign[len(benign) - k - 1] if k < len(benign) else -np.inf
    threshold = np.nextafter(threshold, np.inf)
    flagged = scores >= threshold
    return float(threshold), float(flagged[labels == 1].mean()), float(flagged[labels == 0].mean())


def sigmoid(z):
    return 1 / (1 + np.exp(-np.clip(z, -40, 40)))


def forward(layers, x):
    for i, (w, b) in enumerate(layers):
        x = x @ w.T + b
        if i < len(layers) - 1:
            x = np.maximum(x, 0)
    return sigmoid(x[:, 0])


def train(x, y, hidden, val, epochs=60, lr=1e-3, l2=1e-4):
    """Adam on weighted cross-entropy; keeps the epoch best on validation."""
    sizes = [384] + ([hidden] if hidden else []) + [1]
    layers = [[rng.normal(0, np.sqrt(2 / a), (b, a)).astype(np.float32), np.zeros(b, np.float32)] for a, b in zip(sizes, sizes[1:])]
    moments = [[np.zeros_like(p) for p in l] for l in layers] * 2
    m = [[np.zeros_like(p) for p in l] for l in layers]
    v = [[np.zeros_like(p) for p in l] for l in layers]
    weight = np.where(y == 1, (y == 0).sum() / max((y == 1).sum(), 1), 1.0).astype(np.float32)
    best, best_layers, step = -1.0, None, 0
    for epoch in range(epochs):
        for batch in np.array_split(rng.permutation(len(x)), max(len(x) // 256, 1)):
            xb, yb, wb = x[batch], y[batch], weight[batch]
            acts = [xb]
            for i, (w, b) in enumerate(layers):
                z = acts[-1] @ w.T + b
                acts.append(np.maximum(z, 0) if i < len(layers) - 1 else z)
            grad = ((sigmoid(acts[-1][:, 0]) - yb) * wb / len(batch))[:, None]
            step += 1
            for i in reversed(range(len(layers))):
                w, b = layers[i]
                gw, gb = grad.T @ acts[i] + l2 * w, grad.sum(0)
                if i:
                    grad = (grad @ w) * (acts[i] > 0)
                for j, g in enumerate((gw, gb)):
                    m[i][j] = 0.9 * m[i][j] + 0.1 * g
                    v[i][j] = 0.999 * v[i][j] + 0.001 * g * g
                    mh, vh = m[i][j] / (1 - 0.9**step), v[i][j] / (1 - 0.999**step)
                    layers[i][j] -= lr * mh / (np.sqrt(vh) + 1e-8)
        _, tpr, _ = operating_point(val(layers), val_labels)
        if tpr > best:
            best, best_layers = tpr, [[w.copy(), b.copy()] for w, b in layers]
    del moments
    return best_layers


train_rows, val_rows = load("pi_train.jsonl"), load("pi_val.jsonl")
x_train, own_train = embed(train_rows, "train")
x_val, own_val = embed(val_rows, "val")
y_train = np.array([train_rows[i]["label"] for i in own_train], np.float32)
val_labels = np.array([r["label"] for r in val_rows])
sources = sorted({r["source"] for r in val_rows})


val_judged = np.array([judged(r["text"]) for r in val_rows])


def val_scores(layers):
    return np.where(val_judged, per_text(forward(layers, x_val), own_val, len(val_rows)), 0.0)


jg = json.loads(jailguard_path.read_text())
candidates = {
    "jailguard 0.1.2 MLP (as shipped)": [[np.array(jg["w_h1"], np.float32), np.array(jg["b_h1"], np.float32)],
                                          [np.array(jg["w_h2"], np.float32), np.array(jg["b_h2"], np.float32)],
                                          [np.array(jg["w_out"], np.float32), np.array(jg["b_out"], np.float32)]],
    "logistic regression": train(x_train, y_train, 0, val_scores),
    "MLP 384-256-1": train(x_train, y_train, 256, val_scores),
    "MLP 384-512-1": train(x_train, y_train, 512, val_scores),
}
results = {}
for name, layers in candidates.items():
    s = val_scores(layers)
    t, tpr, fpr = operating_point(s, val_labels)
    results[name] = (tpr, t, layers)
    per_source = ", ".join(f"{src}={(s[[r['source'] == src for r in val_rows]] >= t)[val_labels[[r['source'] == src for r in val_rows]] == 0].mean():.3f}" for src in sources)
    print(f"{name}: validation TPR {tpr:.3f} at FPR {fpr:.4f} (threshold {t:.4f}); benign flagged per source: {per_source}")
name = max(results, key=lambda k: results[k][0])
tpr, threshold, layers = results[name]
print(f"chosen: {name}")
out_path.write_text(json.dumps({
    "about": "prompt_injection head over mean-pooled, L2-normalised all-MiniLM-L6-v2 embeddings; made by bench/pi_train.py",
    "model": name,
    "window": WINDOW,
    "stride": STRIDE,
    "min_pieces": MIN_PIECES,
    "threshold": threshold,
    "validation": {"tpr": round(tpr, 4), "target_fpr": TARGET_FPR, "texts": len(val_rows)},
    "layers": [{"weight": np.round(w, 6).tolist(), "bias": np.round(b, 6).tolist()} for w, b in layers],
}, separators=(",", ":")) + "\n")
