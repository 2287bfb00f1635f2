"""The multi-turn conversation set: its YAML schema, loading, and judging filed cases against expectations.

Each file `tests/dialogues/<lang>.yml` holds `language: ko|en|ja` and `conversations:`, a list of

    - id: ko-place-correction          # unique across the set
      note: what the conversation exercises
      turns:                           # the citizen's turns, in order
        - 가로등이 나갔어요              # typed text, always sent
        - {text: 마포구요, when_asked: district}   # sent only if the bot is asking for that slot now
        - {tap: /affirm, when_asked: confirm_report}  # taps the offered button with this payload
        - {gps: [37.5663, 126.9779]}   # shares the phone's position (no text)
        - "{case} 어떻게 됐어요?"        # {case}: the last case number the bot gave in this conversation
      filed:                           # `none`, one case, or a list of cases in filing order
        category: broken_streetlight
        district: 마포구
        place: …                       # optional, exact
        place_contains: [망원시장, 망원로 8길]
        place_not_contains: [틀렸]
        description_contains: [가로등]
        description_not_contains: [위치가 틀렸어요]
      handoff: true                    # optional: a 120 operator was (true) or was not (false) asked for

`when_asked` is a slot name or a list of them, compared with the `requested_slot` of Rasa's tracker while the
complaint form is active; a turn whose condition does not hold is skipped. That keeps the set independent of
the bot's wording and of which slots the first message already filled. A tap sends the offered button's title
with its payload, as the web page does; a button the bot did not offer fails the conversation.

Text matching ignores case and whitespace ("망원로8길" contains "망원로 8길"), so spacing neither passes nor
fails a case by itself. Whatever a case's expectation says, a description equal to its place or to an answer
given to the place question fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from civic.categories import CATEGORIES
from civic.districts import DISTRICTS

SET_DIR = Path(__file__).resolve().parent
LANGUAGES = ("ko", "en", "ja")
SLOTS = frozenset({"category", "district", "place", "description", "confirm_report"})
CASE_PLACEHOLDER = "{case}"
TURN_KEYS = frozenset({"text", "tap", "gps", "when_asked"})
CASE_KEYS = frozenset(
    {
        "category",
        "district",
        "place",
        "place_contains",
        "place_not_contains",
        "description_contains",
        "description_not_contains",
    }
)
CONVERSATION_KEYS = frozenset({"id", "note", "turns", "filed", "handoff"})


class SetError(ValueError):
    """A conversation file that does not follow the schema (named with the conversation's id)."""


@dataclass(frozen=True)
class Turn:
    """One citizen turn: typed text, a tapped button, or a shared position; maybe only when a slot is asked."""

    text: str = ""
    tap: str | None = None
    gps: tuple[float, float] | None = None
    when_asked: frozenset[str] = frozenset()

    def wanted(self, asked: str | None) -> bool:
        return not self.when_asked or asked in self.when_asked


@dataclass(frozen=True)
class ExpectedCase:
    """What one filed case must look like."""

    category: str
    district: str
    place: str | None = None
    place_contains: tuple[str, ...] = ()
    place_not_contains: tuple[str, ...] = ()
    description_contains: tuple[str, ...] = ()
    description_not_contains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Conversation:
    id: str
    language: str
    note: str
    turns: tuple[Turn, ...]
    filed: tuple[ExpectedCase, ...]  # empty: nothing may be filed
    handoff: bool | None = None


@dataclass(frozen=True)
class FiledCase:
    """The fields of a filed case the set judges (read from the database by the runner)."""

    number: str
    category: str
    district: str
    place: str
    description: str


@dataclass
class Observed:
    """What a conversation left behind: its cases, whether it asked for a human, the place answers it gave."""

    cases: list[FiledCase]
    handoff: bool = False
    place_answers: list[str] = field(default_factory=list)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise SetError(f"{where}: expected a string or a non-empty list of strings, got {value!r}")


def _unknown(keys: Any, allowed: frozenset[str], where: str) -> None:
    extra = set(keys) - allowed
    if extra:
        raise SetError(f"{where}: unknown keys {sorted(extra)} (allowed: {sorted(allowed)})")


def parse_turn(raw: Any, where: str) -> Turn:
    if isinstance(raw, str):
        return Turn(text=raw)
    if not isinstance(raw, dict):
        raise SetError(f"{where}: a turn is a string or a mapping, got {raw!r}")
    _unknown(raw, TURN_KEYS, where)
    kinds = [k for k in ("text", "tap", "gps") if k in raw]
    if len(kinds) != 1:
        raise SetError(f"{where}: a turn has exactly one of text, tap, gps (got {kinds})")
    asked = frozenset(_strings(raw["when_asked"], f"{where}.when_asked")) if "when_asked" in raw else frozenset()
    if asked - SLOTS:
        raise SetError(f"{where}: when_asked names unknown slots {sorted(asked - SLOTS)}")
    if "gps" in raw:
        point = raw["gps"]
        if not (isinstance(point, list) and len(point) == 2 and all(isinstance(v, int | float) for v in point)):
            raise SetError(f"{where}: gps is [latitude, longitude], got {point!r}")
        return Turn(gps=(float(point[0]), float(point[1])), when_asked=asked)
    if "tap" in raw:
        if not (isinstance(raw["tap"], str) and raw["tap"].startswith("/")):
            raise SetError(f"{where}: tap is a button payload such as /affirm, got {raw['tap']!r}")
        return Turn(tap=raw["tap"], when_asked=asked)
    if not (isinstance(raw["text"], str) and raw["text"].strip()):
        raise SetError(f"{where}: text must be a non-empty string")
    return Turn(text=raw["text"], when_asked=asked)


def parse_case(raw: Any, where: str) -> ExpectedCase:
    if not isinstance(raw, dict):
        raise SetError(f"{where}: a filed case is a mapping, got {raw!r}")
    _unknown(raw, CASE_KEYS, where)
    if raw.get("category") not in CATEGORIES:
        raise SetError(f"{where}: category must be one of {sorted(CATEGORIES)}, got {raw.get('category')!r}")
    if raw.get("district") not in DISTRICTS:
        raise SetError(f"{where}: district must be a Seoul gu in Korean (마포구), got {raw.get('district')!r}")
    if not ({"place", "place_contains"} & set(raw)) or "description_contains" not in raw:
        raise SetError(f"{where}: say what the place (place or place_contains) and description must contain")
    lists = {
        key: _strings(raw[key], f"{where}.{key}") for key in CASE_KEYS - {"category", "district", "place"} if key in raw
    }
    place = raw.get("place")
    if place is not None and not isinstance(place, str):
        raise SetError(f"{where}: place must be a string")
    return ExpectedCase(category=raw["category"], district=raw["district"], place=place, **lists)


def parse_conversation(raw: Any, language: str, where: str) -> Conversation:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise SetError(f"{where}: a conversation is a mapping with an id")
    where = f"{where} ({raw['id']})"
    _unknown(raw, CONVERSATION_KEYS, where)
    if not isinstance(raw.get("note"), str) or not raw["note"].strip():
        raise SetError(f"{where}: every conversation says what it exercises (note)")
    turns_raw = raw.get("turns")
    if not isinstance(turns_raw, list) or not turns_raw:
        raise SetError(f"{where}: turns must be a non-empty list")
    turns = tuple(parse_turn(t, f"{where}.turns[{i}]") for i, t in enumerate(turns_raw))
    if turns[0].when_asked:
        raise SetError(f"{where}: the first turn cannot wait for a question")
    filed_raw = raw.get("filed")
    if filed_raw == "none":
        filed: tuple[ExpectedCase, ...] = ()
    elif isinstance(filed_raw, list) and filed_raw:
        filed = tuple(parse_case(c, f"{where}.filed[{i}]") for i, c in enumerate(filed_raw))
    elif isinstance(filed_raw, dict):
        filed = (parse_case(filed_raw, f"{where}.filed"),)
    else:
        raise SetError(f"{where}: filed is `none`, a case, or a list of cases")
    handoff = raw.get("handoff")
    if handoff is not None and not isinstance(handoff, bool):
        raise SetError(f"{where}: handoff is true or false")
    return Conversation(raw["id"], language, raw["note"].strip(), turns, filed, handoff)


def load_file(path: Path) -> list[Conversation]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("language") not in LANGUAGES:
        raise SetError(f"{path.name}: needs `language:` ({', '.join(LANGUAGES)}) and `conversations:`")
    conversations = data.get("conversations")
    if not isinstance(conversations, list):
        raise SetError(f"{path.name}: conversations must be a list")
    return [parse_conversation(c, data["language"], f"{path.name}[{i}]") for i, c in enumerate(conversations)]


def load_set(
    directory: Path = SET_DIR, languages: tuple[str, ...] = LANGUAGES, only: str | None = None
) -> list[Conversation]:
    """Every conversation of the chosen languages (or the one with id `only`); ids are unique across files."""
    conversations = [c for lang in LANGUAGES for c in load_file(directory / f"{lang}.yml")]
    ids = [c.id for c in conversations]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise SetError(f"conversation ids used twice: {repeated}")
    if only is not None:
        if only not in ids:
            raise SetError(f"no conversation with id {only!r}")
        return [c for c in conversations if c.id == only]
    return [c for c in conversations if c.language in languages]


def squashed(text: str) -> str:
    """Case- and whitespace-insensitive form for matching."""
    return re.sub(r"\s+", "", text).casefold()


def _contains(haystack: str, needle: str) -> bool:
    return squashed(needle) in squashed(haystack)


def judge_case(expected: ExpectedCase, case: FiledCase, place_answers: list[str]) -> list[str]:
    """What differs between a filed case and its expectation (empty: the case is right)."""
    problems = []
    if case.category != expected.category:
        problems.append(f"category {case.category!r}, expected {expected.category!r}")
    if case.district != expected.district:
        problems.append(f"district {case.district!r}, expected {expected.district!r}")
    if expected.place is not None and squashed(case.place) != squashed(expected.place):
        problems.append(f"place {case.place!r}, expected {expected.place!r}")
    problems += [f"place {case.place!r} lacks {w!r}" for w in expected.place_contains if not _contains(case.place, w)]
    problems += [f"place {case.place!r} has {w!r}" for w in expected.place_not_contains if _contains(case.place, w)]
    description = case.description
    problems += [
        f"description {description!r} lacks {w!r}"
        for w in expected.description_contains
        if not _contains(description, w)
    ]
    problems += [
        f"description {description!r} has {w!r}" for w in expected.description_not_contains if _contains(description, w)
    ]
    # Whatever the expectation says, a description that is the place is the bug this set exists for.
    if squashed(description) and (
        squashed(description) == squashed(case.place)
        or any(squashed(description) == squashed(a) for a in place_answers)
    ):
        problems.append(f"description {description!r} is the place answer")
    return problems


def judge(conversation: Conversation, observed: Observed) -> list[str]:
    """What differs between the conversation's outcome and its expectation (empty: success)."""
    problems = []
    expected, cases = conversation.filed, observed.cases
    if len(cases) != len(expected):
        filed = ", ".join(f"{c.number} {c.category}/{c.district} place={c.place!r}" for c in cases) or "nothing"
        problems.append(f"{len(cases)} case(s) filed, expected {len(expected)}: {filed}")
    else:
        for index, (want, case) in enumerate(zip(expected, cases, strict=True)):
            prefix = f"{case.number}: " if len(expected) == 1 else f"case {index + 1} {case.number}: "
            problems += [prefix + p for p in judge_case(want, case, observed.place_answers)]
    if conversation.handoff is not None and observed.handoff != conversation.handoff:
        problems.append("no operator was asked for" if conversation.handoff else "an operator was asked for")
    return problems
