"""NLU figures: held-out and unseen accuracy and in-process parse latency (runs nlu.evaluate in .venv-rasa)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.common import RESULTS, write_result

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    report = RESULTS / "nlu_eval_full.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [str(ROOT / ".venv-rasa/bin/python"), "-m", "nlu.evaluate", "--model", "models", "--out", str(report)]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        sys.exit(f"nlu.evaluate failed:\n{completed.stderr[-2000:]}")
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    targets = {
        "intent_ko": 0.95,
        "intent_en": 0.92,
        "intent_ja": 0.92,
        "category": 0.92,
        "district": 0.97,
        "case_id": 0.99,
    }
    write_result("nlu", {**summary, "targets": targets, "parse_ms_p50_target": 20})


if __name__ == "__main__":
    main()
