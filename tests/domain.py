"""The response names domain.yml declares, for tests that check a name in code against it."""

from __future__ import annotations

from pathlib import Path

import yaml

DOMAIN = Path(__file__).resolve().parents[1] / "domain.yml"


def domain_responses() -> set[str]:
    return set(yaml.safe_load(DOMAIN.read_text(encoding="utf-8"))["responses"])
