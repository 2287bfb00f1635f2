"""Seoul's 25 gu: canonical Korean names and their English, short and Japanese aliases."""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from civic.errors import UnknownDistrict

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class DistrictNames:
    """Every name of one gu. `short_ko` is empty where the bare form is a common word."""

    gu_ko: str
    gu_en: str
    short_ko: str
    ja_kanji: str
    ja_kana: str
    kostat_code: str


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@cache
def district_names() -> dict[str, DistrictNames]:
    """The 25 gu by Korean name, in the order of data/seoul/seoul_gu_25.csv."""
    aliases = {row["gu_ko"]: row for row in _read_csv(DATA_DIR / "district_aliases.csv")}
    names: dict[str, DistrictNames] = {}
    for row in _read_csv(DATA_DIR / "seoul" / "seoul_gu_25.csv"):
        alias = aliases[row["gu_ko"]]
        names[row["gu_ko"]] = DistrictNames(
            gu_ko=row["gu_ko"],
            gu_en=row["gu_en"],
            short_ko=alias["short_ko"],
            ja_kanji=alias["ja_kanji"],
            ja_kana=alias["ja_kana"],
            kostat_code=row["kostat_code_2013"],
        )
    return names


DISTRICTS: tuple[str, ...] = tuple(district_names())


def is_district(name: str) -> bool:
    """Whether `name` is the Korean name of one of the 25 gu."""
    return name in district_names()


def check_district(name: str) -> str:
    """Return `name` if it is a gu's Korean name, else raise UnknownDistrict."""
    if name not in district_names():
        raise UnknownDistrict(name)
    return name


def _fold(text: str) -> str:
    # NFKC folds full-width Latin and half-width kana the way citizens' keyboards produce them.
    return unicodedata.normalize("NFKC", text).strip().casefold().replace(" ", "")


@cache
def _alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for names in district_names().values():
        en = names.gu_en.casefold()
        forms = {names.gu_ko, names.short_ko, names.gu_en, en.removesuffix("-gu"), en.replace("-", "")}
        forms |= {names.ja_kanji, names.ja_kana, names.ja_kana.removesuffix("区")}
        for form in forms:
            if form:
                index[_fold(form)] = names.gu_ko
    return index


def resolve_district(text: str) -> str | None:
    """The gu's Korean name for 마포구, 마포, Mapo-gu, mapo, 麻浦区 or マポ区; None if unknown."""
    return _alias_index().get(_fold(text))


@dataclass(frozen=True)
class OutsideCity:
    """A city or province outside Seoul that citizens name, in the three languages of the bot."""

    ko: str
    en: str
    ja: str

    def label(self, language: str) -> str:
        return {"en": self.en, "ja": self.ja}.get(language, self.ko)


# A bare Korean city name counts only before a particle, a space or the end ("부천에", "부천 상동"),
# never inside a longer word ("고양이", "안양천" are in Seoul's own texts) nor as a destination ("부천 가는").
_KO_AFTER = (
    r"(?=시|역|에서|에|의|쪽|인데|이에요|예요|에요|이요|요|까지|부근|근처|[\s,.!?]|$)(?!\s*(?:가는|행|방향|방면))"
)


def _spelling_pattern(spelling: str) -> str:
    escaped = re.escape(spelling)
    if spelling.isascii():
        return rf"(?<![A-Za-z]){escaped}(?![A-Za-z])"
    if re.search(r"[가-힣]", spelling):
        return rf"(?<![가-힣]){escaped}" + ("" if spelling.endswith("시") else _KO_AFTER)
    return escaped


@cache
def _outside_cities() -> list[tuple[re.Pattern[str], OutsideCity, tuple[str, ...]]]:
    table = []
    for row in _read_csv(DATA_DIR / "outside_seoul.csv"):
        city = OutsideCity(row["city_ko"], row["city_en"], row["city_ja"])
        spellings = sorted(row["spellings"].split("|"), key=len, reverse=True)
        pattern = re.compile("|".join(map(_spelling_pattern, spellings)), re.IGNORECASE)
        exceptions = tuple(e.casefold() for e in (row["not_when_followed_by"] or "").split("|") if e)
        table.append((pattern, city, exceptions))
    return table


def city_outside_seoul(text: str) -> tuple[int, int, OutsideCity] | None:
    """The first city outside Seoul named in `text` (부천, Bucheon, 富川 …) with its span, or None."""
    found: list[tuple[int, int, OutsideCity]] = []
    for pattern, city, exceptions in _outside_cities():
        for match in pattern.finditer(text):
            if not any(text[match.start() :].casefold().startswith(e) for e in exceptions):
                found.append((match.start(), match.end(), city))
                break
    return min(found, key=lambda f: f[0]) if found else None
