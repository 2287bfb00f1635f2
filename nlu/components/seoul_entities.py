"""Gazetteer extractor for Seoul: district (canonical gu), dong, case_id and a place phrase.

Rasa's RegexEntityExtractor wraps patterns in word boundaries, which never match inside Hangul
words carrying particles ("마포구에서"), so matching here is substring-based with explicit guards.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Text, Tuple

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

CASE_ID = re.compile(r"(?<![A-Za-z0-9])SR[\s\-_]*(20\d\d)[\s\-_]*(\d{1,6})(?!\d)", re.IGNORECASE)
NEGATION_AFTER = re.compile(r"^\s*(?:가|이|는|은)?\s*(?:말고|아니고|아니라|아님|아닌|x\b)|^\s*(?:is\s+)?(?:wrong|not\b)|^\s*(?:じゃなく|ではなく|じゃない)", re.IGNORECASE)
NEGATION_BEFORE = re.compile(r"(?:not|isn't|not in)\s*$", re.IGNORECASE)
HANGUL = re.compile(r"[가-힣]")

# Korean place markers: station, road address, lot number, landmark + position word.
KO_PLACE_TOKEN = re.compile(
    r"(?:\d+번\s*출구|[가-힣0-9]+역|[가-힣0-9]+(?:대로|로|길)\s*\d+(?:-\d+)?|\d+(?:-\d+)?\s*번지|"
    r"[가-힣0-9]+(?:아파트|초등학교|중학교|고등학교|학교|공원|시장|병원|교회|빌라|마트|편의점|사거리|삼거리|교차로|육교|다리|대교|주민센터|빌딩|센터|상가|골목))"
)
KO_POSITION = re.compile(r"(앞|옆|근처|건너편|맞은편|뒤|쪽|입구|출구|사거리|골목)(?:에서|에|이요|요|인데|입니다)?$")
EN_PLACE = re.compile(
    r"\b(?:in front of|near|next to|outside|opposite|across from|behind|by|at|on)\s+"
    r"((?:the\s+)?[A-Za-z0-9][\w\-' ]{2,60}?(?:station(?:,?\s+exit\s*\d+)?|st\.?|street|road|rd\.?|avenue|ave|-ro|-gil|ro|gil|exit\s*\d+|park|school|market|apartments?|building|mart|gs25|cu|intersection|crossing|bridge|\d+))\b",
    re.IGNORECASE,
)
VAGUE_EN_PLACE = re.compile(r"^(?:my|our|this|that|the)\s+(?:street|road|block|area|neighbou?rhood|place)$", re.IGNORECASE)
# A station names a place better than anything else in the sentence, so it is tried first.
JA_PLACES = (
    re.compile(r"([^\s、。！？!?をがはに]{1,20}駅(?:\d+番出口)?(?:の)?(?:前|近く|付近|横|隣|向かい)?)"),
    re.compile(r"([^\s、。！？!?をがはに]{1,20}?(?:通り|交差点|出口|入口|公園|学校|市場|マンション|ビル|コンビニ)(?:の)?(?:前|近く|付近|横|隣|向かい)?)"),
)


def _load_alias_rows(path: Path) -> List[Dict[Text, Text]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def build_gazetteer(data_dir: Path) -> Dict[Text, Any]:
    """Compiles alias → canonical gu and dong → [gu] tables from the project's data files."""
    aliases: Dict[Text, Text] = {}
    short_ko: Dict[Text, Text] = {}
    for row in _load_alias_rows(data_dir / "district_aliases.csv"):
        gu = row["gu_ko"].strip()
        aliases[gu] = gu
        for key in ("ja_kanji", "ja_kana"):
            for alias in filter(None, (a.strip() for a in (row.get(key) or "").split("|"))):
                aliases[alias] = gu
                if alias.endswith("区"):
                    aliases.setdefault(alias[:-1] + "區", gu)
        for alias in filter(None, (a.strip() for a in (row.get("short_ko") or "").split("|"))):
            short_ko[alias] = gu
        english = row["gu_en"].strip()  # "Mapo-gu"
        base = english[: -len("-gu")] if english.lower().endswith("-gu") else english
        aliases[english.lower()] = gu
        aliases[f"{base} gu".lower()] = gu
        aliases[f"{base}gu".lower()] = gu
        if base.lower() != "jung":  # "Jung" alone is a common syllable, not the district.
            aliases[base.lower()] = gu
    dongs: Dict[Text, List[Text]] = {}
    for name in ("seoul_admin_dong_kostat2013.csv", "seoul_legal_dong_juso2015.csv"):
        for row in _load_alias_rows(data_dir / "seoul" / name):
            gu = row["gu_ko"].strip()
            dong = row["dong_ko"].strip()
            if gu not in dongs.setdefault(dong, []):
                dongs[dong].append(gu)
    return {"aliases": aliases, "short_ko": short_ko, "dongs": dongs}


class Gazetteer:
    """Finds Seoul entities in free text with substring matching and Hangul-aware guards."""

    def __init__(self, tables: Dict[Text, Any]) -> None:
        self.tables = tables
        self.latin = {k: v for k, v in tables["aliases"].items() if k.isascii()}
        self.other = {k: v for k, v in tables["aliases"].items() if not k.isascii()}
        # One alternation per kind, longest alias first, so a message is scanned once per kind.
        self.latin_pattern = self._alternation(self.latin, r"(?<![a-z])(", r")(?![a-z])")
        self.other_pattern = self._alternation(self.other, "(", ")")
        self.short_pattern = self._alternation(tables["short_ko"], "(", ")")
        self.dong_pattern = self._alternation(tables["dongs"], "(", ")")

    @staticmethod
    def _alternation(names: Dict[Text, Any], before: Text, after: Text) -> Optional["re.Pattern[str]"]:
        if not names:
            return None
        return re.compile(before + "|".join(map(re.escape, sorted(names, key=len, reverse=True))) + after)

    def districts(self, text: Text) -> List[Tuple[int, int, Text]]:
        """(start, end, canonical gu) for every district mention, longest alias first, no overlaps."""
        found: List[Tuple[int, int, Text]] = []
        taken = [False] * len(text)

        def claim(start: int, end: int, gu: Text) -> None:
            if not any(taken[start:end]):
                found.append((start, end, gu))
                for i in range(start, end):
                    taken[i] = True

        if self.other_pattern is not None:
            for match in self.other_pattern.finditer(text):
                claim(match.start(), match.end(), self.other[match.group(1)])
        if self.latin_pattern is not None:
            for match in self.latin_pattern.finditer(text.lower()):
                claim(match.start(), match.end(), self.latin[match.group(1)])
        if self.short_pattern is not None:
            for match in self.short_pattern.finditer(text):
                before = text[: match.start()]
                # A short form glued to a preceding Hangul word is part of another word, except after 서울.
                if before and HANGUL.match(before[-1]) and not before.endswith("서울"):
                    continue
                claim(match.start(), match.end(), self.tables["short_ko"][match.group(1)])
        return sorted(found)

    def district(self, text: Text) -> Optional[Tuple[int, int, Text]]:
        """The district the citizen means: the last one not negated ("마포구 말고 구로구")."""
        mentions = self.districts(text)
        kept = [
            m for m in mentions
            if not NEGATION_AFTER.match(text[m[1]:]) and not NEGATION_BEFORE.search(text[: m[0]])
        ]
        if kept:
            return kept[-1] if len({m[2] for m in kept}) > 1 else kept[0]
        return None

    def dong(self, text: Text) -> Optional[Tuple[int, int, Text]]:
        if self.dong_pattern is None:
            return None
        for match in self.dong_pattern.finditer(text):
            index, name = match.start(), match.group(1)
            if not (index and HANGUL.match(text[index - 1]) and len(name) <= 2):
                return index, match.end(), name
        return None

    def gus_of_dong(self, dong: Text) -> List[Text]:
        return list(self.tables["dongs"].get(dong, []))


def find_case_ids(text: Text) -> Iterable[Tuple[int, int, Text]]:
    for match in CASE_ID.finditer(text):
        yield match.start(), match.end(), f"SR-{match.group(1)}-{int(match.group(2)):06d}"


def find_place(text: Text, gazetteer: Gazetteer) -> Optional[Tuple[int, int, Text]]:
    """A short phrase naming where the problem is, or None when the text names no place."""
    tokens = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", text)]
    dong = gazetteer.dong(text)
    for i, (start, end, token) in enumerate(tokens):
        marker = KO_PLACE_TOKEN.search(token) or (dong is not None and start <= dong[0] < end)
        if not marker:
            continue
        last = i
        for j in range(i, min(i + 6, len(tokens))):
            last = j
            if KO_POSITION.search(tokens[j][2]) or re.search(r"(에서|에)$", tokens[j][2]):
                break
        else:
            last = i
        phrase = text[start : tokens[last][1]]
        phrase = re.sub(r"(에서|에|이요|요|인데|입니다)$", "", phrase)
        return start, tokens[last][1], phrase
    for match in EN_PLACE.finditer(text):
        # "on my street" says nothing a field officer could find.
        if not VAGUE_EN_PLACE.match(match.group(1)):
            return match.start(1), match.end(1), match.group(1)
    for pattern in JA_PLACES:
        match = pattern.search(text)
        if match:
            return match.start(1), match.end(1), match.group(1)
    return None


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class SeoulEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Emits `district` (canonical Korean gu), `dong`, `case_id` (SR-YYYY-NNNNNN) and `place`."""

    FILE = "gazetteer.json"

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"data_dir": "civic/data"}

    def __init__(self, config: Dict[Text, Any], storage: ModelStorage, resource: Resource, tables: Optional[Dict[Text, Any]] = None) -> None:
        self.config = config
        self.storage = storage
        self.resource = resource
        self.gazetteer = Gazetteer(tables) if tables else None

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext) -> SeoulEntityExtractor:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        # The tables travel inside the model so a model never depends on the files it was built from.
        tables = build_gazetteer(Path(self.config["data_dir"]))
        self.gazetteer = Gazetteer(tables)
        with self.storage.write_to(self.resource) as directory:
            (directory / self.FILE).write_text(json.dumps(tables, ensure_ascii=False), encoding="utf-8")
        return self.resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext, **kwargs: Any) -> SeoulEntityExtractor:
        with model_storage.read_from(resource) as directory:
            tables = json.loads((directory / cls.FILE).read_text(encoding="utf-8"))
        return cls(config, model_storage, resource, tables)

    def extract(self, text: Text) -> List[Dict[Text, Any]]:
        assert self.gazetteer is not None, "SeoulEntityExtractor used before training"
        entities: List[Dict[Text, Any]] = []

        def add(kind: Text, span: Tuple[int, int, Text], text_value: Optional[Text] = None) -> None:
            start, end, value = span
            entities.append({"entity": kind, "start": start, "end": end, "value": value, "confidence": 1.0})

        for span in find_case_ids(text):
            add("case_id", span)
        district = self.gazetteer.district(text)
        if district:
            add("district", district)
        dong = self.gazetteer.dong(text)
        if dong:
            add("dong", dong)
        place = find_place(text, self.gazetteer)
        if place:
            add("place", place)
        return self.add_extractor_name(entities)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            if not text or text.startswith("/"):
                continue
            message.set(ENTITIES, message.get(ENTITIES, []) + self.extract(text), add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
