"""Trains each candidate NLU pipeline on the training data and scores it on the held-out files.

Usage (in .venv-rasa): python -m nlu.compare [config.yml nlu/experiments/*.yml]
Writes bench/results/nlu_compare.json; the README's pipeline table comes from it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rasa.core.agent import Agent
from rasa.model_training import train_nlu
from rasa.utils.log_utils import configure_structlog

from nlu.evaluate import load_splits, score

ROOT = Path(__file__).resolve().parent.parent


def training_dir(target: Path) -> Path:
    for path in sorted((ROOT / "nlu").glob("*.yml")):
        if path.name != "rules.yml":
            shutil.copy(path, target / path.name)
    return target


async def compare(configs: list[Path]) -> dict[str, dict]:
    splits = load_splits(ROOT / "nlu" / "tests")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as work:
        data = Path(work) / "data"
        data.mkdir()
        training_dir(data)
        for config in configs:
            started = time.perf_counter()
            model = train_nlu(str(config), str(data), str(Path(work) / "models"), fixed_model_name=config.stem)
            trained = time.perf_counter() - started
            agent = Agent.load(model)
            results[str(config.relative_to(ROOT))] = {
                "train_seconds": round(trained, 1),
                **{
                    name: {k: v for k, v in (await score(agent, examples)).items() if k != "errors"}
                    for name, examples in splits.items()
                },
            }
            print(
                json.dumps({str(config.relative_to(ROOT)): results[str(config.relative_to(ROOT))]}, ensure_ascii=False),
                flush=True,
            )
    return results


def main() -> None:
    logging.disable(logging.WARNING)
    configure_structlog(logging.WARNING)
    configs = [Path(p).resolve() for p in sys.argv[1:]] or [
        ROOT / "config.yml",
        *sorted((ROOT / "nlu" / "experiments").glob("*.yml")),
    ]
    results = asyncio.run(compare(configs))
    out = ROOT / "bench" / "results" / "nlu_compare.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
