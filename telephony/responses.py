"""Which domain response a Rasa reply is, told from its Korean text (Rasa's REST output does not name it)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

DOMAIN = Path(__file__).resolve().parent.parent / "domain.yml"
_PLACEHOLDER = re.compile(r"\\\{[a-z_]+\\\}")


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    """(pattern of the Korean text, response name); Korean is each response's variant without a condition."""
    domain = yaml.safe_load(DOMAIN.read_text(encoding="utf-8"))
    templates = []
    for name, variants in (domain.get("responses") or {}).items():
        for variant in variants:
            text = variant.get("text")
            if text and not variant.get("condition"):
                pattern = _PLACEHOLDER.sub("(.*?)", re.escape(text.strip()))
                templates.append((re.compile(f"^{pattern}$", re.DOTALL), name))
    # Longest template first: a short one with placeholders must not claim a longer text.
    templates.sort(key=lambda item: len(item[0].pattern), reverse=True)
    return templates


def response_name(text: str) -> str | None:
    """The `utter_…` response whose Korean text this is, or None (a gateway or custom text)."""
    stripped = text.strip()
    for pattern, name in _templates():
        if pattern.match(stripped):
            return name
    return None
