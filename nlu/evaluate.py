"""Scores a trained model on held-out NLU files; prints one JSON line (run with .venv-rasa).

Usage: python -m nlu.evaluate --model models --tests nlu/tests [--out bench/results/nlu_eval.json]
Each test file is scored separately ("heldout" = everything but unseen.yml, "unseen" = unseen.yml).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from rasa.core.agent import Agent
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message
from rasa.utils.log_utils import configure_structlog

ENTITY_KINDS = ("district", "case_id")


def newest_model(path: Path) -> Path:
    if path.is_file():
        return path
    models = sorted(path.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        sys.exit(f"no model in {path}; run `make train`")
    return models[-1]


def gold_of(message: Message) -> dict[str, Any]:
    metadata = (message.get("metadata") or {}).get("intent") or {}
    entities = message.get("entities") or []
    return {
        "text": message.get("text"),
        "intent": message.get("intent"),
        "lang": metadata.get("lang", "ko"),
        "category": metadata.get("category"),
        **{kind: sorted({str(e["value"]) for e in entities if e["entity"] == kind}) for kind in ENTITY_KINDS},
    }


def load_splits(tests: Path) -> dict[str, list[dict[str, Any]]]:
    """Gold examples of the held-out files ("heldout") and of the blind-written unseen.yml ("unseen")."""
    files = sorted(tests.glob("*.yml"))
    return {
        "heldout": [gold_of(m) for f in files if f.name != "unseen.yml" for m in load_data(str(f)).intent_examples],
        "unseen": [gold_of(m) for f in files if f.name == "unseen.yml" for m in load_data(str(f)).intent_examples],
    }


async def score(agent: Agent, examples: list[dict[str, Any]]) -> dict[str, Any]:
    by_lang: dict[str, list[bool]] = defaultdict(list)
    hits: dict[str, list[bool]] = defaultdict(list)
    latencies: list[float] = []
    errors: list[dict[str, Any]] = []
    for gold in examples:
        started = time.perf_counter()
        parsed = await agent.parse_message(gold["text"])
        latencies.append((time.perf_counter() - started) * 1000)
        intent = (parsed.get("intent") or {}).get("name")
        entities = parsed.get("entities") or []
        by_lang[gold["lang"]].append(intent == gold["intent"])
        predicted = {kind: sorted({str(e["value"]) for e in entities if e["entity"] == kind}) for kind in ENTITY_KINDS}
        for kind in ENTITY_KINDS:
            hits[kind].append(predicted[kind] == gold[kind])
        if gold["category"]:
            categories = [e["value"] for e in entities if e["entity"] == "category"]
            hits["category"].append(categories[-1:] == [gold["category"]])
        wrong = (
            intent != gold["intent"]
            or any(predicted[k] != gold[k] for k in ENTITY_KINDS)
            or (
                gold["category"]
                and [e["value"] for e in entities if e["entity"] == "category"][-1:] != [gold["category"]]
            )
        )
        if wrong:
            errors.append(
                {
                    "text": gold["text"],
                    "gold": {k: gold[k] for k in ("intent", "category", *ENTITY_KINDS)},
                    "got": {
                        "intent": intent,
                        "category": [e["value"] for e in entities if e["entity"] == "category"],
                        **predicted,
                    },
                }
            )
    return {
        "examples": len(examples),
        "intent_accuracy": {lang: round(sum(v) / len(v), 4) for lang, v in sorted(by_lang.items())},
        **{f"{kind}_accuracy": round(sum(v) / len(v), 4) for kind, v in hits.items() if v},
        "parse_ms_p50": round(statistics.median(latencies), 2),
        "errors": errors,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="models")
    parser.add_argument("--tests", default="nlu/tests")
    parser.add_argument("--out", default=None, help="also write the full report (with errors) to this JSON file")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    configure_structlog(logging.WARNING)
    agent = Agent.load(str(newest_model(Path(args.model))))
    splits = load_splits(Path(args.tests))
    report = {name: await score(agent, examples) for name, examples in splits.items() if examples}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    print(
        json.dumps(
            {name: {k: v for k, v in r.items() if k != "errors"} for name, r in report.items()}, ensure_ascii=False
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
