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
NEGATION_AFTER = re.compile(
    r"^\s*(?:가|이|는|은)?\s*(?:말고|아니고|아니라|아님|아닌|틀렸|잘못|x\b)|^\s*(?:is\s+)?(?:wrong|not\b)"
    r"|^\s*(?:じゃなく|ではなく|じゃない|(?:が|は)?\s*(?:違|間違))",
    re.IGNORECASE,
)
NEGATION_BEFORE = re.compile(r"(?:not|isn't|not in)\s*$", re.IGNORECASE)
HANGUL = re.compile(r"[가-힣]")

# Korean place markers: station, road address, lot number, landmark + position word.
KO_LANDMARK = (
    r"아파트|초등학교|중학교|고등학교|학교|공원|시장|병원|교회|빌라|마트|편의점|사거리|삼거리|교차로|육교|다리|대교|주민센터|"
    r"빌딩|센터|상가|골목|횡단보도|정류장|주차장|놀이터|정문|후문|광장|터널|지하도|거리|먹자골목|원룸촌|카페|은행|약국|파출소|구청"
)
KO_PLACE_TOKEN = re.compile(
    rf"(?:\d+번\s*출구|[가-힣0-9]+역|[가-힣0-9]+(?:대로|로|길)\s*\d+(?:-\d+)?|\d+(?:-\d+)?\s*번지|[가-힣0-9]+(?:{KO_LANDMARK}))"
)
KO_POSITION = re.compile(r"(앞|옆|근처|건너편|맞은편|뒤|뒤쪽|뒤편|쪽|입구|출구|사거리|골목|부근|주변|방향)(?:에서|에|이요|요|인데|입니다)?$")
# Words that continue a place phrase after its first marker ("망원시장 뒤쪽 골목, 망원로 8길 입구").
KO_PLACE_MORE = re.compile(
    rf"^(?:\d+(?:-\d+)?(?:번지|번|호|동|길|가|단지)?|[가-힣0-9]*(?:대로|로|길|{KO_LANDMARK})|[가-힣0-9]+역|"
    r"앞|옆|근처|건너편|맞은편|뒤|뒤쪽|뒤편|쪽|입구|출구|부근|주변|바로|인도|도로|차도|골목길|방향|나와서|안쪽|모퉁이)"
    r"(?:에서|에|이요|요|인데|입니다|이에요|예요|에요|이고|,)?$"
)
KO_PHRASE_END = re.compile(r"(에서|에|이요|요|인데|입니다|이에요|예요|에요|이고)$")
# "위치는 …이에요", "場所は…です", "the place is …": the citizen says outright where it is.
EXPLICIT_PLACE = re.compile(
    r"(?:위치는|장소는|주소는|場所は|住所は|\b(?:the )?(?:place|location|address) is\s+)(.+?)(?:이에요|예요|에요|입니다|이요|です|[.。!！?？\n]|$)",
    re.IGNORECASE,
)
EN_PLACE = re.compile(
    r"\b(?:in front of|near|next to|outside|opposite|across from|behind|by|at|on)\s+"
    r"((?:the\s+)?[A-Za-z0-9][\w\-' ]{2,60}?(?:\bstation(?:,?\s+exit\s*\d+)?|\bst\.?|\bstreet|\broad|\brd\.?|\bavenue|"
    r"\bave|-ro|-gil|\bro|\bgil|\bexit\s*\d+|\bpark|\bschool|\bmarket|\bapartments?|\bbuilding|\bmart|\bgs25|\bcu|"
    r"\bintersection|\bcrossing|\bbridge|\b\d+)(?:\s*\d+(?:-\d+)?(?:-gil\s*\d+)?)?)\b",
    re.IGNORECASE,
)
# "outside my building", "on our street": nothing a field officer could find.
VAGUE_EN_PLACE = re.compile(
    r"^(?:my|our|your|his|her|their)\b|^(?:this|that|the)\s+(?:street|road|block|area|neighbou?rhood|place)$", re.IGNORECASE
)
# Japanese: landmarks chained with の ("駅三駅の3番出口の前"), a station first when there is one.
JA_NAME = r"[^\s、。！？!?をがはにでへとのも「」]"
JA_LANDMARK = (
    rf"{JA_NAME}{{0,20}}?(?:駅|通り|交差点|出口|入口|公園|学校|市場|マンション|ビル|コンビニ|病院|ホテル|路地|横断歩道|バス停|"
    rf"広場|商店街|区役所|センター|アパート|歩道橋)|{JA_NAME}{{1,12}}?(?:路|ギル)\d+(?:-\d+)?|\d+番出口|{JA_NAME}{{1,4}}洞"
)
JA_POSITION = r"前|近く|付近|横|隣|向かい|裏|そば|側|周辺|あたり|辺り|入口|出口"
JA_PLACE = re.compile(rf"((?:{JA_LANDMARK})(?:の?(?:{JA_LANDMARK}|{JA_POSITION}))*)")
JA_STATION = re.compile(rf"({JA_NAME}{{1,20}}?駅(?:の?(?:{JA_LANDMARK}|{JA_POSITION}))*)")


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


def _korean_place(text: Text, gazetteer: Gazetteer) -> Optional[Tuple[int, int, Text]]:
    """From the first place marker on, every token that still names the place, up to "…에"."""
    tokens = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", text)]
    dong = gazetteer.dong(text)
    for i, (start, end, token) in enumerate(tokens):
        if not (KO_PLACE_TOKEN.search(token) or (dong is not None and start <= dong[0] < end)):
            continue
        last = i
        for j in range(i, min(i + 10, len(tokens))):
            word = tokens[j][2]
            if j > i and not KO_PLACE_MORE.match(word) and not KO_PLACE_TOKEN.search(word):
                break
            last = j
            if KO_PHRASE_END.search(word.rstrip(",")) and not word.endswith(","):
                break
        phrase = text[start : tokens[last][1]].rstrip(",")
        # Written without spaces ("마포구망원동망원시장앞에쓰래기…"), the place ends at its first "에".
        glued = re.search(r"(?:에서|에)(?=[가-힣])", phrase)
        if glued and " " not in phrase[: glued.start()]:
            phrase = phrase[: glued.start()]
        phrase = KO_PHRASE_END.sub("", phrase)
        return start, start + len(phrase), phrase
    return None


def find_place(text: Text, gazetteer: Gazetteer) -> Optional[Tuple[int, int, Text]]:
    """A phrase naming where the problem is, kept whole ("망원시장 뒤쪽 골목, 망원로 8길 입구"), or None."""
    explicit = EXPLICIT_PLACE.search(text)
    if explicit and len(explicit.group(1).strip()) >= 2:
        value = explicit.group(1).strip()
        return explicit.start(1), explicit.start(1) + len(value), value
    korean = _korean_place(text, gazetteer)
    if korean:
        return korean
    found = [m for m in EN_PLACE.finditer(text) if not VAGUE_EN_PLACE.match(m.group(1))]
    # "on every lamp post in front of X station exit 2": the phrase with a station or a number wins.
    found.sort(key=lambda m: not re.search(r"station|exit|\d", m.group(1), re.IGNORECASE))
    if found:
        return found[0].start(1), found[0].end(1), found[0].group(1)
    for pattern in (JA_STATION, JA_PLACE):
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
