"""Seoul's 25 gu: canonical Korean names and their English, short and Japanese aliases."""

from __future__ import annotations

import csv
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
