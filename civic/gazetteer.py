"""Seoul's place names (gu, dong, subway stations) and the correction of near misses in a heard place."""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from civic.districts import DATA_DIR, city_outside_seoul, district_names
from civic.geo import dong_names

STATIONS_FILE = DATA_DIR / "seoul_stations.csv"
OUTSIDE_STATIONS_FILE = DATA_DIR / "stations_outside_seoul.csv"
COMMON_WORDS_FILE = DATA_DIR / "gazetteer_common_words.txt"

# A name is corrected to only from three syllables up: a 1-jamo slip on a two-syllable word lands on
# ordinary words (중국 → 중구, 정도 → 정동). Five syllables and more allow two slips.
MIN_SYLLABLES = 3
LONG_SYLLABLES = 5
# The nearest name must beat every other name by this many jamo edits, or the heard word is left alone.
MARGIN = 1
_SEARCH_DEPTH = 2  # the most edits the index looks for (the long names' allowance)

# What follows a place in an answer: particles, copulas and "near/in front of". The longest first, so
# that "앞에서" goes before "에서". Not 로 alone: "합정도로" is a road, not 합정동 + 로.
_ENDING_WORDS = """
에서요 에서는 에서 이에요 이예요 예요 에요 이요 이고요 인데요 인데 입니다 이고 으로 까지 부근 근처
쪽으로 쪽에 쪽 앞에서 앞에 앞 옆에 옆 뒤에 뒤 에는 에 의 은 는 을 를 이 가 요
"""
_ENDINGS = sorted(_ENDING_WORDS.split(), key=len, reverse=True)
# A number with its counter: exits, lines, floors ("2번", "삼번", "3호선", "5층") are never names.
_NUMBERED = re.compile(r"(?:\d+|[일이삼사오육륙칠팔구십백]+)(?:번|호선|호|층|번지|출구|번출구|번째)|\d+")
# A heard last syllable that means something of its own next to a gu's stem: 용산고 is a high school,
# 광진교 a bridge, never 용산구 or 광진구 misheard.
_NOT_SLIPS = {"구": ("고", "교")}
_HANGUL = re.compile(r"[가-힣]")
_PUNCTUATION = "\"'“”‘’()[]{}<>.,!?~…·:;。、"


@dataclass(frozen=True)
class Change:
    """One place name put in place of what was heard: text[start:end] of the original was `heard`."""

    start: int
    end: int
    heard: str
    name: str
    distance: int  # edits between their jamo: one for a letter heard for a like one, two for another


@dataclass(frozen=True)
class Correction:
    """A heard place answer and the same answer with its near-miss place names corrected."""

    original: str
    text: str
    changes: tuple[Change, ...] = ()


def jamo(text: str) -> str:
    """Hangul syllables split into their letters (합 → ᄒ ᅡ ᆸ), initial and final consonants kept apart."""
    return unicodedata.normalize("NFD", text)


def _syllables(text: str) -> int:
    return len(_HANGUL.findall(text))


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _station_names(path: Path) -> frozenset[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return frozenset(row["station_ko"] for row in csv.DictReader(f))


@cache
def station_names() -> frozenset[str]:
    """Seoul's subway stations as named on the map, without 역 (합정, 서울대입구)."""
    return _station_names(STATIONS_FILE)


def _station_forms(station: str) -> set[str]:
    # 효창공원앞 is also said 효창공원; a name ending in 역 (서울역) is not doubled.
    return {station, station.removesuffix("앞"), station if station.endswith("역") else station + "역"}


@cache
def common_words() -> frozenset[str]:
    """Words near a place name that a transcript means as themselves: ordinary words and landmarks."""
    lines = COMMON_WORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(word for line in lines for word in line.split("#")[0].split())


def _dong_as_said(name: str) -> str:
    """The dong as people say it, without its official numbers: 성수1가1동 and 성수동1가 → 성수동."""
    return re.sub(r"[\d·]+가?", "", name)


@cache
def place_names() -> frozenset[str]:
    """Every Korean place name known: gu (마포구, 마포), dong (서교동, 상계1동, 성수동), stations (합정, 합정역)."""
    names: set[str] = set()
    for gu in district_names().values():
        names |= {gu.gu_ko, gu.short_ko}
    for dong in dong_names():
        if _HANGUL.search(dong):
            names |= {dong, _dong_as_said(dong)}
    for station in station_names():
        names |= _station_forms(station)
    return frozenset(filter(None, names))


@cache
def names_outside_seoul() -> frozenset[str]:
    """Stations of the capital region outside Seoul (부천, 상동역): kept as heard, never corrected to."""
    forms = set().union(*map(_station_forms, _station_names(OUTSIDE_STATIONS_FILE)))
    return frozenset(forms - place_names())


def _deletions(word: str, depth: int) -> set[str]:
    """The word and every string made of it by deleting up to `depth` of its letters."""
    found = frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found = found | frontier
    return found


# Letters a recogniser hears for one another, which cost one edit; any other change costs two. Initials:
# lax, tense and aspirated (합정/합쩡), ㄷ/ㅈ and ㅌ/ㅊ (palatalised), and the liaison ㄴ/ㄹ/ㅇ (합정녁,
# 서울력). Vowels merged in Seoul speech (ㅐ/ㅔ, 계 said 게) or near (ㅓ/ㅗ/ㅜ, ㅡ/ㅜ, ㅢ/ㅣ). Finals as
# they are pronounced (ㄱ/ㅋ, ㄷ/ㅅ/ㅈ …) and the nasals ㄴ/ㅁ/ㅇ.
_CLOSE_GROUPS = [
    "ᄀᄁᄏ", "ᄃᄄᄐ", "ᄇᄈᄑ", "ᄌᄍᄎ", "ᄉᄊ", "ᄃᄌ", "ᄐᄎ", "ᄄᄍ", "ᄂᄅᄋ",
    "ᅢᅤᅦᅨ", "ᅬᅫᅰ", "ᅡᅥ", "ᅥᅩ", "ᅩᅮ", "ᅧᅭ", "ᅳᅮ", "ᅴᅵᅳ", "ᅱᅵ", "ᅯᅥ", "ᅪᅡ",
    "ᆨᆩᆿ", "ᆮᆺᆻᆽᆾᇀᇂ", "ᆸᇁ", "ᆫᆷᆼ", "ᆯᆫ",
]  # fmt: skip
_CLOSE = {(a, b) for group in _CLOSE_GROUPS for a in group for b in group if a != b}
_FINALS = frozenset(chr(code) for code in range(0x11A8, 0x11C3))


def _substitution(a: str, b: str) -> int:
    return 0 if a == b else 1 if (a, b) in _CLOSE else 2


def _insertion(letter: str) -> int:
    # A final consonant dropped or added (망원도/망원동) is one slip; a whole initial or vowel is two.
    return 1 if letter in _FINALS else 2


def _distance(a: str, b: str, limit: int) -> int:
    """Edits from jamo a to jamo b, each costing one or two as above; limit + 1 once it must exceed limit.
    Never less than their Levenshtein distance, so the deletion index finds every name within `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    row = [0]
    for letter in b:
        row.append(row[-1] + _insertion(letter))
    for char in a:
        previous, row = row, [row[0] + _insertion(char)]
        for j, other in enumerate(b, start=1):
            row.append(
                min(
                    previous[j] + _insertion(char),
                    row[j - 1] + _insertion(other),
                    previous[j - 1] + _substitution(char, other),
                )
            )
        if min(row) > limit:
            return limit + 1
    return min(row[-1], limit + 1)


class Gazetteer:
    """Place names indexed by their jamo with up to two letters deleted (a symmetric-deletion index):
    a heard word looks up its own deletions, so only names within two edits are ever compared."""

    def __init__(self, names: frozenset[str], common: frozenset[str], outside: frozenset[str]) -> None:
        # Names outside Seoul are looked up too: 상동역 heard is Bucheon's, not a slip for 상도역.
        self.targets = names
        self.names = names | outside
        self.common = common
        self.spelling = {name: jamo(name) for name in self.names}
        self.longest = max(map(len, self.spelling.values()))
        self.by_deletion: dict[str, set[str]] = {}
        for name, spelling in self.spelling.items():
            for variant in _deletions(spelling, _SEARCH_DEPTH):
                self.by_deletion.setdefault(variant, set()).add(name)

    def allowance(self, name: str) -> int:
        """How many jamo edits a heard word may be from `name` to be corrected to it (0: never)."""
        syllables = _syllables(name)
        if name not in self.targets or syllables < MIN_SYLLABLES:
            return 0
        return 2 if syllables >= LONG_SYLLABLES else 1

    def nearest(self, word: str) -> tuple[str, int] | None:
        """The one name `word` is a near miss of, with the distance; None when none or not one clearly."""
        if _syllables(word) < MIN_SYLLABLES:
            return None  # no name of three syllables is one or two jamo from it
        heard = jamo(word)
        if len(heard) > self.longest + _SEARCH_DEPTH:
            return None  # longer than any name can be heard, and its deletions would be many thousands
        # One edit first: most slips are one jamo, and one-deletion lookups are a tenth of two-deletion ones.
        # Every name within `depth` edits shares a deletion of at most `depth` letters with the word, so the
        # names tied with the nearest (MARGIN 1) are all found at the nearest's depth.
        ranked = self._within(heard, 1)
        if (not ranked or ranked[0][0] > 1) and _syllables(word) >= LONG_SYLLABLES - 1:
            ranked = self._within(heard, _SEARCH_DEPTH)  # a long name, which may be two slips away
        if not ranked:
            return None
        distance, name = ranked[0]
        if distance > self.allowance(name) or _digits(name) != _digits(word):
            return None
        if word.endswith(_NOT_SLIPS.get(name[-1], ())):
            return None
        if len(ranked) > 1 and ranked[1][0] - distance < MARGIN:
            return None  # two names as near: the caller's word is not ours to choose
        return name, distance

    def _within(self, heard: str, depth: int) -> list[tuple[int, str]]:
        """The names sharing with the heard jamo a deletion of up to `depth` letters each, with their
        distance where it is at most two, nearest first."""
        found: dict[str, int] = {}
        for variant in _deletions(heard, depth):
            for name in self.by_deletion.get(variant, ()):
                if name not in found:
                    found[name] = _distance(heard, self.spelling[name], _SEARCH_DEPTH)
        return sorted((distance, name) for name, distance in found.items() if distance <= _SEARCH_DEPTH)

    def is_kept(self, word: str) -> bool:
        """Whether a word is never corrected: a name already, an ordinary word, a number or an exit."""
        return word in self.names or word in self.common or bool(_NUMBERED.fullmatch(word))


@cache
def gazetteer() -> Gazetteer:
    """The gazetteer, built once (a few hundred milliseconds); load() builds it ahead of the first call."""
    return Gazetteer(place_names(), common_words(), names_outside_seoul())


def load() -> None:
    """Build the gazetteer (and compile the cities outside Seoul) now rather than on the first place corrected."""
    gazetteer()
    city_outside_seoul("")


def _cores(word: str, least: int = 1) -> list[tuple[str, str]]:
    """The word as heard and without each ending it may carry ("합정녁에서" → "합정녁" + "에서"),
    keeping at least `least` characters in the core."""
    cores = [(word, "")]
    for ending in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= least:
            cores.append((word[: -len(ending)], ending))
    return cores


@dataclass(frozen=True)
class _Word:
    start: int  # where the word starts in the text, past any opening punctuation
    text: str  # the word without punctuation around it
    bare: bool  # no punctuation around it, so it may be joined to its neighbour


def _words(text: str) -> list[_Word]:
    words = []
    for match in re.finditer(r"\S+", text):
        token = match.group()
        inner = token.strip(_PUNCTUATION)
        if inner:
            words.append(_Word(match.start() + token.index(inner), inner, inner == token))
    return words


def _nearest_reading(gaz: Gazetteer, cores: list[tuple[str, str]]) -> tuple[str, str, int] | None:
    """(core, name, distance) for the reading of a word nearest a name: the whole word or its core."""
    found = []
    for core, _ in cores:
        near = gaz.nearest(core)
        if near:
            found.append((near[1], -len(core), core, near[0]))
    if not found:
        return None
    distance, _, core, name = min(found)  # the nearest, then the longest core
    return core, name, distance


def correct_place(text: str) -> Correction:
    """Correct near-miss Seoul place names in a transcribed place answer ("합정녁 2번 출구" → "합정역 2번 출구").

    Each word, and each word joined to the next (spacing varies: "합정 녁"), is compared with and without
    its ending (에서, 앞, 이요 …) to the gazetteer by jamo edits, a letter heard for a like one (녁/역,
    도/동) costing one and any other change two. It is corrected only when one Seoul name is clearly
    nearest, within one (two for names of five syllables or more); names, ordinary words, numbers and
    exits are never changed, nor are the digits in a name, nor anything in an answer naming a city
    outside Seoul.
    """
    if city_outside_seoul(text):
        return Correction(original=text, text=text)  # "부천 상동역": not a Seoul name misheard
    gaz = gazetteer()
    words = _words(text)
    changes: list[Change] = []
    i = 0
    while i < len(words):
        word, following = words[i], words[i + 1] if i + 1 < len(words) else None
        cores = _cores(word.text)
        is_name = any(core in gaz.names for core, _ in cores)
        if not is_name and any(gaz.is_kept(core) for core, _ in cores):
            i += 1  # an ordinary word, a number or an exit: neither corrected nor joined to the next
            continue
        if following and word.bare and following.bare and not gaz.is_kept(following.text):
            # Joined, the core must reach into the second word, or it would be the first word alone.
            pair_cores = _cores(word.text + following.text, least=len(word.text) + 1)
            if any(gaz.is_kept(core) for core, _ in pair_cores):
                i += 2  # "서교 동", "신촌 역에서": a name said in two words, kept as said
                continue
            pair = _nearest_reading(gaz, pair_cores)
            if pair:
                core, name, distance = pair
                end = following.start + len(core) - len(word.text)
                changes.append(Change(word.start, end, text[word.start : end], name, distance))
                i += 2
                continue
        single = None if is_name else _nearest_reading(gaz, cores)
        if single:
            core, name, distance = single
            changes.append(Change(word.start, word.start + len(core), core, name, distance))
        i += 1
    corrected = text
    for change in reversed(changes):
        corrected = corrected[: change.start] + change.name + corrected[change.end :]
    return Correction(original=text, text=corrected, changes=tuple(changes))
