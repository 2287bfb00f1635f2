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
    "/affirm": (
        "네",
        "내",
        "예",
        "응",
        "맞아요",
        "맞습니다",
        "좋아요",
        "그래요",
        "접수해 주세요",
        "그렇게 해 주세요",
        "알겠습니다",
        "넹",
        "yes",  # Whisper writes a short 네 as English now and then
    ),
    "/deny": ("아니요", "아니오", "아뇨", "아니", "아니에요", "아닙니다", "틀려요", "고칠 게 있어요"),
    "/request_human": OPERATOR_PHRASES,
    "/cancel_report": ("취소", "신고 취소", "취소해 주세요"),
}
# The words a yes or a no begins with, scored as the first word (telephony.first_word); none extends another
# of its answer ("아니" covers 아니요, 아니오, 아니에요), and none is a common word's start ("내" is 내일's).
FIRST_WORDS: dict[str, tuple[str, ...]] = {
    "/affirm": ("네", "예", "응", "yes"),
    "/deny": ("아니", "아뇨", "아닙니다", "no"),
}
# In a long answer only these begin a yes or a no: "그래요 요즘 병원에 다니거든요" is a sentence, not a yes.
CORE_ANSWER_WORDS = frozenset({*(w for ws in FIRST_WORDS.values() for w in ws), "아니요", "아니오"})
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
# The nearest option must beat the second nearest by this much: "마포구 말고 구로구요" or a word halfway between
# two district names is asked again, not guessed.
MATCH_MARGIN = 0.15
# What may follow an answer word said first ("네요", "아니고요", "맞습니다"); a yes/no word is taken only at the start.
START_ENDINGS = frozenset(
    {"", "요", "이요", "예요", "에요", "이에요", "죠", "지요", "고요", "구요", "입니다", "습니다"}
)
# Key numbers said as words: Sino-Korean before 번 ("일 번", "삼번이요"), native alone ("하나", "둘이요"),
# ordinals ("첫 번째", "두 번째").
SINO_NUMBERS = {"일": 1, "이": 2, "삼": 3, "사": 4, "오": 5, "육": 6, "칠": 7, "팔": 8, "구": 9, "십": 10}
NATIVE_NUMBERS = {
    "하나": 1, "둘": 2, "셋": 3, "넷": 4, "다섯": 5, "여섯": 6, "일곱": 7, "여덟": 8, "아홉": 9, "열": 10,
}  # fmt: skip
ORDINALS = {"첫": 1, "두": 2, "세": 3, "네": 4, "다섯": 5, "여섯": 6, "일곱": 7, "여덟": 8, "아홉": 9, "열": 10}
# 내 is 네 misheard only when another yes follows ("내 맞아요"); alone or before more words it is "my" or the
# start of 내일 ("내일이 어머니 생신인데" came out as a lone "내").
CONFIRMED_BY_NEXT_WORD = frozenset({"내"})
SAID_LATER = 0.9
SHORT_ANSWER_WORDS = 3  # "저 강서구에 사는데요"; longer is a sentence
SPECIFIC_CHARS = 4
FUZZY_EXTRA_CHARS = 2  # a near miss is at most this much longer than the option
MAX_KEY_WORDS = 3  # "일 번 주세요"
_WORD = re.compile(r"[0-9a-z가-힣]+")
_DIGITS_KEY = re.compile(r"^(\d{1,2})(번.*)?$")
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
    anywhere: bool = False  # said inside a sentence counts (a district, a category); else only said first


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
        """The choice whose phrase is closest to what was heard, if close enough and clear of the next one."""
        return best_choice(heard, self.choices, threshold)

    def owners(self) -> dict[str, str]:
        """Each folded phrase → its choice's label (the gate counts how many options a text names)."""
        return {fold(p): c.label for c in self.choices for p in c.phrases}

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


def words(text: str) -> list[str]:
    """The words of a transcript, folded ("네, 맞아요." → ["네", "맞아요"])."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def said_in_answer(heard_words: Sequence[str], phrase: str, choice: Choice) -> bool:
    """`said`, with more rules for a long answer: only a specific phrase counts inside it, a yes or no only by its word.

    Measured on real out-of-set sentences: short words inside them ("봉사" heard as 공사, "카드로" as 가로등,
    "위기" as 위험) made a sentence at a closed question an option. A full district name or a phrase of four
    letters or more ("불법 주차", "쓰레기 무단투기") still counts anywhere.
    """
    if not said(heard_words, phrase, anywhere=choice.anywhere):
        return False
    if phrase in CONFIRMED_BY_NEXT_WORD:
        rest = heard_words[1:]
        return len(rest) == 1 and any(said(rest, p, anywhere=False) for p in choice.phrases if p != phrase)
    long_answer = len(heard_words) > SHORT_ANSWER_WORDS
    if long_answer and choice.payload in FIRST_WORDS and fold(phrase) not in CORE_ANSWER_WORDS:
        return False
    return not (choice.anywhere and long_answer) or phrase == choice.text or len(fold(phrase)) >= SPECIFIC_CHARS


def said(heard_words: Sequence[str], phrase: str, *, anywhere: bool) -> bool:
    """Whether the words say `phrase` as whole words (spacing aside): first, or anywhere as a word start.

    Said first, only a short ending may follow ("마포구요", "아니고요"); inside a sentence any ending may
    ("구로구에서", "주차된"), but the phrase must begin a word, so 집중구역 does not say 중구.
    """
    target = fold(phrase)
    if not target:
        return False
    for start in range(len(heard_words) if anywhere else min(len(heard_words), 1)):
        joined = ""
        for word in heard_words[start : start + 4]:
            joined += word
            if joined.startswith(target):
                return anywhere or joined[len(target) :] in START_ENDINGS
            if not target.startswith(joined):
                break
    return False


def spoken_key(heard_words: Sequence[str]) -> str | None:
    """The key a caller says instead of pressing it: "1번", "일 번이요", "하나", "두 번째"."""
    if not heard_words or len(heard_words) > MAX_KEY_WORDS:
        return None  # "2번 출구 앞에 차가 있어요" is a place, not key 2
    first, rest = heard_words[0], heard_words[1:]
    if any(word[0].isdigit() or word in SINO_NUMBERS or word in NATIVE_NUMBERS for word in rest):
        return None  # "1, 2, 2": Whisper counting on noise, not a key
    following = rest[0] if rest else ""
    digits = _DIGITS_KEY.match(first)
    if digits:
        return str(int(digits.group(1)))
    for number, value in SINO_NUMBERS.items():
        if first.startswith(number + "번") or (first == number and following.startswith("번")):
            return str(value)
    for number, value in NATIVE_NUMBERS.items():
        if first in (number, number + "요", number + "이요", number + "번") and not following.startswith("번"):
            return str(value)
    for number, value in ORDINALS.items():
        if first.startswith(number + "번째") or (first == number and following.startswith("번째")):
            return str(value)
    return None


def similarity(heard: str, phrase: str) -> float:
    """1.0 when the phrase is said whole (as a word start: "마포구요" says 마포구), else a character ratio."""
    a, b = fold(heard), fold(phrase)
    if not a or not b:
        return 0.0
    if a == b or (len(b) >= 2 and b in a):
        return 1.0
    return SequenceMatcher(None, a, b).ratio()


def choice_score(heard: str, choice: Choice, heard_words: Sequence[str] | None = None) -> float:
    """1.0 when the choice is said (a phrase as words, or its key), else the nearest phrase's character ratio."""
    heard_words = words(heard) if heard_words is None else heard_words
    if any(said_in_answer(heard_words, p, choice) for p in choice.phrases):
        return 1.0
    # A near miss ("마포도", "강남부") is a short answer: a sentence is not close to an option by its letters.
    # Yes and no are short words said first, never guessed by their letters ("그래" is no 그래요, "now" no "no").
    if not choice.anywhere:
        # Said right after the first word ("네 아니요"): a second answer close behind, so no margin for either.
        later = any(said(heard_words[i:], p, anywhere=False) for p in choice.phrases for i in (1, 2))
        return SAID_LATER if later else 0.0
    a = fold(heard)
    near = [fold(p) for p in choice.phrases if a and fold(p) and len(a) <= len(fold(p)) + FUZZY_EXTRA_CHARS]
    return max((SequenceMatcher(None, a, p).ratio() for p in near), default=0.0)


def ranked(heard: str, choices: Sequence[Choice]) -> list[tuple[float, Choice]]:
    """Every choice with its score, nearest first; a spoken key scores its choice 1.0."""
    heard_words = words(heard)
    key = spoken_key(heard_words)
    scored = [(1.0 if key is not None and c.key == key else choice_score(heard, c, heard_words), c) for c in choices]
    return sorted(scored, key=lambda item: item[0], reverse=True)


def best_choice(
    heard: str, choices: Sequence[Choice], threshold: float = MATCH_THRESHOLD, margin: float = MATCH_MARGIN
) -> Choice | None:
    """The nearest choice, if close enough and `margin` nearer than the second nearest (else nothing)."""
    scored = ranked(heard, choices)
    if not scored or scored[0][0] < (threshold if scored[0][1].anywhere else 1.0):
        return None  # a yes or no must be said (or its key), not come close
    second = scored[1][0] if len(scored) > 1 else 0.0
    return scored[0][1] if scored[0][0] - second >= margin else None


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
        choices.append(
            Choice(
                key=str(number),
                label=label,
                phrases=tuple(dict.fromkeys(phrases)),
                payload=payload,
                anywhere=category is not None,  # "불법 주차된 차가 있어요" names its category; 네 counts only first
            )
        )
    return tuple(choices)


def district_choices() -> tuple[Choice, ...]:
    """The 25 gu, said whole ("마포구") or short ("마포") where the short form is not a common word."""
    return tuple(
        Choice(key=None, label=gu, phrases=tuple(p for p in (gu, names.short_ko) if p), text=gu, anywhere=True)
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
