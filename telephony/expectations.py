"""What the bot expects the caller to answer next, and how speech or keys map onto that answer."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from difflib import SequenceMatcher
from typing import Any, Literal

from civic.districts import district_names
from telephony.phone_texts import menu

Kind = Literal["grammar", "free"]
OPERATOR_KEY = "0"
OPERATOR_PHRASES = ("상담원", "상담원 연결", "상담사", "사람 바꿔 주세요", "직원 연결")
# Spoken forms of Rasa's button payloads: what a caller says instead of pressing the key.
PAYLOAD_PHRASES: dict[str, tuple[str, ...]] = {
    "/affirm": ("네", "내", "예", "응", "맞아요", "맞습니다", "좋아요", "그래요", "접수해 주세요"),
    "/deny": ("아니요", "아니오", "아뇨", "아니", "틀려요", "고칠 게 있어요"),
    "/request_human": OPERATOR_PHRASES,
    "/cancel_report": ("취소", "신고 취소", "취소해 주세요"),
}
PAYLOAD_LABELS = {"/affirm": "네", "/deny": "아니요", "/request_human": "상담원 연결", "/cancel_report": "신고 취소"}
CATEGORY_PHRASES: dict[str, tuple[str, ...]] = {
    "illegal_parking": ("불법 주정차", "불법 주차", "주정차", "주차"),
    "illegal_banner": ("불법 현수막", "현수막", "광고물", "전단지"),
    "illegal_dumping": ("쓰레기", "쓰레기 무단투기", "무단 투기"),
    "broken_sidewalk": ("보도블록", "보도블록 파손", "인도"),
    "broken_streetlight": ("가로등", "보안등", "가로등 고장"),
    "noise": ("소음", "시끄러워요"),
    "sewer": ("하수구", "하수도", "맨홀"),
    "urban_facility": ("도시 시설물", "시설물", "벤치", "버스 정류장"),
    "construction": ("공사장", "공사", "공사 현장"),
    "safety": ("안전 위험", "위험", "안전"),
}
MATCH_THRESHOLD = 0.6
_CATEGORY_PAYLOAD = re.compile(r'^/inform\{"category":\s*"([a-z_]+)"\}$')
_NOT_HANGUL_OR_DIGIT = re.compile(r"[^0-9a-z가-힣]")


@dataclass(frozen=True)
class Choice:
    """One answer the bot can take: by key, or by saying one of its phrases."""

    key: str | None
    label: str
    phrases: tuple[str, ...]
    payload: str | None = None  # a button Rasa offered
    command: str | None = None  # a gateway command (bot.gateway.COMMAND_PAYLOADS)
    text: str | None = None  # text for Rasa's NLU (a district name)


@dataclass(frozen=True)
class Expectation:
    """The next caller turn: a closed set of answers (grammar) or anything (free), and what was asked."""

    kind: Kind
    prompt: str
    choices: tuple[Choice, ...] = ()
    case_number_keys: bool = False  # digits + # are a case number
    response: str | None = None  # the domain response that asked, when known

    def by_key(self, key: str) -> Choice | None:
        return next((c for c in self.choices if c.key == key), None)

    @property
    def phrases(self) -> list[str]:
        """Every phrase of every choice, once each: the grammar, and Whisper's hot words."""
        seen: dict[str, None] = {}
        for choice in self.choices:
            seen.update(dict.fromkeys(choice.phrases))
        return list(seen)

    def match(self, heard: str, threshold: float = MATCH_THRESHOLD) -> Choice | None:
        """The choice whose phrase is closest to what was heard, if close enough (1.0: said whole)."""
        return best_choice(heard, self.choices, threshold)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Expectation:
        choices = tuple(Choice(**{**c, "phrases": tuple(c["phrases"])}) for c in data.get("choices") or [])
        return cls(
            kind=data["kind"],
            prompt=data["prompt"],
            choices=choices,
            case_number_keys=bool(data.get("case_number_keys")),
            response=data.get("response"),
        )


def fold(text: str) -> str:
    """Comparable form: NFKC, lower case, no spaces or punctuation ("마포구요." → "마포구요")."""
    return _NOT_HANGUL_OR_DIGIT.sub("", unicodedata.normalize("NFKC", text).lower())


def similarity(heard: str, phrase: str) -> float:
    """1.0 when the phrase is said whole (as a word start: "마포구요" says 마포구), else a character ratio."""
    a, b = fold(heard), fold(phrase)
    if not a or not b:
        return 0.0
    if a == b or (len(b) >= 2 and b in a):
        return 1.0
    return SequenceMatcher(None, a, b).ratio()


def best_choice(heard: str, choices: Sequence[Choice], threshold: float = MATCH_THRESHOLD) -> Choice | None:
    scored = [(max((similarity(heard, p) for p in c.phrases), default=0.0), len(c.phrases), c) for c in choices]
    if not scored:
        return None
    score, _, choice = max(scored, key=lambda item: (item[0], -item[1]))
    return choice if score >= threshold else None


def asks_for_operator(heard: str) -> bool:
    return any(similarity(heard, phrase) == 1.0 for phrase in OPERATOR_PHRASES)


def button_choices(buttons: Sequence[dict[str, str]]) -> tuple[Choice, ...]:
    """Rasa's buttons as keys 1, 2, … (0 stays the operator's) with their spoken forms."""
    choices = []
    for number, button in enumerate(buttons, start=1):
        payload, title = button.get("payload", ""), button.get("title", "")
        category = _CATEGORY_PAYLOAD.match(payload)
        synonyms = CATEGORY_PHRASES.get(category.group(1), ()) if category else PAYLOAD_PHRASES.get(payload, ())
        phrases = (title, *synonyms)
        label = PAYLOAD_LABELS.get(payload, title)
        choices.append(Choice(key=str(number), label=label, phrases=tuple(dict.fromkeys(phrases)), payload=payload))
    return tuple(choices)


def district_choices() -> tuple[Choice, ...]:
    """The 25 gu, said whole ("마포구") or short ("마포") where the short form is not a common word."""
    return tuple(
        Choice(key=None, label=gu, phrases=tuple(p for p in (gu, names.short_ko) if p), text=gu)
        for gu, names in district_names().items()
    )


# After these the caller is back at the start: the main menu's keys work again.
MENU_RESPONSES = frozenset(
    {"utter_greet", "utter_help", "utter_anything_else", "utter_case_filed", "utter_draft_discarded", "utter_thank"}
)
MAIN_MENU = (
    Choice(key="1", label="불편 신고", phrases=("신고", "불편 신고", "민원 신고"), command="report"),
    Choice(key="2", label="처리 상황 확인", phrases=("처리 상황", "처리 상황 확인", "접수번호"), command="status"),
)


def main_menu(prompt: str) -> Expectation:
    """After the greeting: keys for the menu, and anything said goes to Rasa as it is."""
    return Expectation(kind="free", prompt=prompt, choices=MAIN_MENU)


def after_reply(prompt: str, buttons: Sequence[dict[str, str]], response: str | None) -> Expectation:
    """What to expect after the bot said `prompt` (already in its phone form) with Rasa's `buttons`."""
    if buttons:
        return Expectation(kind="grammar", prompt=prompt, choices=button_choices(buttons), response=response)
    if response == "utter_ask_district":
        return Expectation(kind="grammar", prompt=prompt, choices=district_choices(), response=response)
    if response in ("utter_ask_case_number", "utter_case_not_found"):
        return Expectation(kind="free", prompt=prompt, case_number_keys=True, response=response)
    choices = MAIN_MENU if response in MENU_RESPONSES else ()
    return Expectation(kind="free", prompt=prompt, choices=choices, response=response)


def menu_text(expectation: Expectation) -> str:
    """The keys to say after the prompt, for the choices that have keys."""
    keyed = [(c.label, c.key) for c in expectation.choices if c.key]
    return menu(keyed) if keyed else ""


def case_number_from_keys(digits: str, today: date) -> str:
    """Keys to a case number: 6 or fewer digits are this year's number, 10 are year + number."""
    if len(digits) == 10:
        return f"SR-{digits[:4]}-{digits[4:]}"
    return f"SR-{today.year}-{digits[-6:].zfill(6)}"
