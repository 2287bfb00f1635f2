"""What a citizen's message means to the complaint form: which detail a correction names, vague places, accounts."""

from __future__ import annotations

import re
from functools import cache

from civic import geo
from civic.districts import district_names
from civic.i18n import CATEGORY_LABELS

DETAIL_SLOTS = ("category", "district", "place", "description")

# A correction that names the detail it corrects: "위치가 틀렸어요", "the district is wrong", "区が違います".
NAMED_SLOT = {
    "category": re.compile(
        r"유형|종류|분류|카테고리|\b(?:type|category|kind)\b|種類|種別|カテゴリ|分類", re.IGNORECASE
    ),
    "district": re.compile(
        r"(?<![가-힣])구(?:가|는|를|도|이름)?(?:\s|$)|자치구|\bdistrict\b|(?<![-\w])gu\b"
        r"|(?<![\u4e00-\u9fff\u30a0-\u30ff])区(?:が|は|を|も)",
        re.IGNORECASE,
    ),
    "place": re.compile(r"위치|장소|주소|\b(?:place|location|address|spot)\b|場所|位置|住所", re.IGNORECASE),
    "description": re.compile(r"내용|설명|\b(?:description|details?)\b|内容|説明", re.IGNORECASE),
}
# What is left of a correction once the detail's name and these words are gone is the new value.
CORRECTION_WORDS = re.compile(
    r"(?:이|가|은|는|을|를|도)?\s*(?:틀렸(?:어요|습니다|네요|어)?|틀려요|잘못(?:\s*(?:됐|되었|썼|적었|말했|입력했)\S*)?|"
    r"아니(?:에요|예요|고|라|요)?|아뇨|아님|말고|바꿀게요|바꿔(?:\s*주세요|요)?|바꾸(?:고\s*싶어요|려고요|겠습니다)|"
    r"고칠게요|고쳐(?:\s*주세요|요)?|수정(?:할게요|해\s*주세요|해요|요)?|정정(?:할게요|해\s*주세요|요)?|변경(?:할게요|해\s*주세요)?|"
    r"추가(?:할게요|해\s*주세요|요)?|다시(?:\s*말할게요)?|달라요|다릅니다|다르게)"
    r"|\b(?:no|nope|wrong|incorrect|is|isn't|are|am|was|were|not|change|correct|fix|update|the|a|an|it's|its|it|"
    r"please|should|be|actually|i|want|to|need|meant|mean|my|this|that|just|all|of|for|let|me)\b"
    r"|(?:が|は|を|も)?(?:違います|違う|間違って(?:います|いる|る)?|間違い|いいえ|じゃなくて|ではなく|でした|です)"
    r"|(?:に|へ)?(?:変更|修正|訂正)?(?:直し|直|変え|変更し|修正し|訂正し|し)(?:たい|ます|て(?:ください|ほしい|下さい)?)(?:です)?",
    re.IGNORECASE,
)
ANSWER_FILLERS = re.compile(
    r"^(?:(?:아니요|아뇨|아니|음+|저기요|no\b|it's\b|it is\b|that's\b|いいえ|ええと|えっと)[\s,.、]*)+"
    r"|[\s,.!?~、。！？]*(?:이에요|예요|에요|이요|입니다|인데요|이고요|요|です|でした|ですね)?[\s,.!?~、。！？]*$",
    re.IGNORECASE,
)
RIGHT = re.compile(
    r"\s*(?:은|는|이|가|도)?\s*(?:맞|괜찮|\b(?:is\s+)?(?:right|correct|fine|ok)\b|(?:は|が)?(?:合って|正しい|大丈夫))",
    re.IGNORECASE,
)
NEGATION_START = re.compile(r"^\s*(?:아\s+)?(?:아니|아뇨|틀렸|잘못|no\b|nope|wrong|not\b|いいえ|違)", re.IGNORECASE)
# "소음 말고 공사장으로", "change it to noise", "騒音に変えて": a category named as the new one.
CATEGORY_CUE = re.compile(
    r"말고|아니고|아니라|(?:으로|로)\s*(?:해|바꿔|바꿀|변경|수정|정정)|\b(?:change|switch|make)\b.*\bto\b|\bnot\b|"
    r"じゃなく|ではなく|に(?:変え|変更|して|直)",
    re.IGNORECASE,
)
NEGATED_AFTER = re.compile(r"^\s*(?:이|가|은|는)?\s*(?:말고|아니고|아니라|じゃなく|ではなく)")
# Something is wrong, without saying what: a "no" that asks what to change.
SAYS_WRONG = re.compile(r"틀렸|틀려|잘못|아니|\b(?:wrong|incorrect|not)\b|違|間違", re.IGNORECASE)
# "그리고 비 오면 넘쳐요": a detail added to the account at the read-back.
MORE_DETAIL = re.compile(
    r"^\s*(?:그리고|또|참고로|추가로|and\b|also\b|plus\b|それと|あと|それから|さらに)", re.IGNORECASE
)
DONT_KNOW = re.compile(
    r"몰라|모르겠|글쎄|don'?t know|not sure|no idea|わかりません|分かりません|知りません|わからない", re.IGNORECASE
)

# Words that leave a place unfindable: "우리 집 앞", "near my house", "家の前", a bare gu or dong.
_VAGUE = """
우리집 저희집 우리 저희 제 내 집 동네 여기 거기 저기 이쪽 근처 부근 주변 일대 앞 옆 뒤 쪽 골목 길 도로 그냥 안
아파트 빌라 건물 단지 가게 회사 대문 현관 버스정류장 정류장 놀이터 횡단보도 인도 공원 주차장 교차로 사거리 삼거리 건널목
near my our the house home place street road block area neighbourhood neighborhood here around outside
in front of at by this that somewhere building apartment flat office door gate shop store bus stop crosswalk
playground park corner intersection parking lot sidewalk
自宅 うち 私 僕 家 近所 ここ この あたり 辺り 辺 周り 周辺 付近 近く 前 横 隣 道 の で に マンション アパート 玄関
バス停 公園 交差点 横断歩道 歩道 駐車場
"""
VAGUE_WORDS = sorted(_VAGUE.split(), key=len, reverse=True)
PARTICLE_END = re.compile(r"(?:에서|에|이에요|예요|에요|이요|요|입니다|인데요|인데|이고|쪽)(?=\s|$)")
FOREIGN_DONG = re.compile(r"[\u4e00-\u9fff]{1,4}洞|\b[A-Za-z]+-dong\b", re.IGNORECASE)


def named_slots(text: str) -> list[str]:
    """The details a correction names as wrong, in the form's order ("위치는 맞는데…" names none)."""
    named = []
    for slot in DETAIL_SLOTS:
        match = NAMED_SLOT[slot].search(text)
        if match and not RIGHT.match(text[match.end() :]):
            named.append(slot)
    return named


def corrected_value(text: str, slot: str) -> str | None:
    """The new value carried beside the detail's name ("장소는 망원시장 뒤쪽이에요"), or None."""
    name = "(?:" + NAMED_SLOT[slot].pattern + r")\s*(?:이|가|은|는|을|를|도|は|が|を|も)?"
    match = re.search(name, text, re.IGNORECASE)
    if match is None:
        return None
    for part in (text[match.end() :], text[: match.start()]):
        if any(pattern.search(part) for pattern in NAMED_SLOT.values()) or RIGHT.search(part):
            continue  # another detail's name, or "…is right": not this detail's value
        rest = CORRECTION_WORDS.sub(" ", part)
        rest = ANSWER_FILLERS.sub("", rest.strip(" ,.、。:：")).strip(" ,.、。:：")
        if len(re.sub(r"\W", "", rest)) >= 2:
            return rest
    return None


def is_negation(text: str) -> bool:
    return bool(NEGATION_START.match(text))


def place_answer(text: str) -> str:
    """A place as the citizen answered it, without "아니", "이에요", "です" around it."""
    return ANSWER_FILLERS.sub("", text.strip()).strip(" ,.、。") or text.strip()


def more_than_yes_no(text: str) -> bool:
    """Whether a message says more than "네"/"no"/"いいえ" (and so answers a question too)."""
    return len(re.sub(r"[\W_]", "", ANSWER_FILLERS.sub("", text.strip()))) >= 4


def does_not_know(text: str) -> bool:
    return bool(DONT_KNOW.search(text))


@cache
def _area_names() -> list[str]:
    """Every gu in every script, and every dong, longest first: what a vague place may name."""
    names: set[str] = set()
    for gu in district_names().values():
        names |= {gu.gu_ko, gu.gu_en, gu.ja_kanji, gu.ja_kana, gu.gu_en.removesuffix("-gu")}
    names |= geo.dong_names()
    return sorted(filter(None, names), key=len, reverse=True)


def is_vague_place(place: str) -> bool:
    """Whether an inspector could not find it: only a gu or dong, or "우리 집 앞"-like words."""
    rest = f" {place.casefold()} "
    for name in _area_names():
        rest = rest.replace(name.casefold(), " ")
    rest = FOREIGN_DONG.sub(" ", rest)
    rest = PARTICLE_END.sub(" ", rest)
    for word in VAGUE_WORDS:
        rest = re.sub(rf"\b{re.escape(word)}\b", " ", rest) if word.isascii() else rest.replace(word, " ")
    return len(re.sub(r"[\W_]", "", rest)) < 2


def vague_core(place: str) -> str:
    """The findable part of a vague place ("노원구 상계동" → "상계동"), to be kept beside the detail."""
    core = place
    for gu in district_names().values():
        for name in (gu.gu_ko, gu.gu_en, gu.ja_kanji, gu.ja_kana):
            core = core.replace(name, " ")
    core = re.sub(r"^[\s,の、]+|[\s,の、]+$", "", core)
    return place_answer(core)


def place_with_detail(vague: str, answer: str) -> str:
    """The vague place completed by the answer to "where in it?"; the answer alone when it says it all."""
    core = vague_core(vague)
    if does_not_know(answer) or len(re.sub(r"\W", "", answer)) < 2:
        return vague
    names_an_area = any(name in core for name in _area_names()) or FOREIGN_DONG.search(core)
    if not core or core in answer or not names_an_area:
        return answer
    return f"{core} {answer}"


@cache
def _category_words() -> list[tuple[str, str]]:
    """Category names as citizens type them back (labels and their parts), folded, longest first."""
    words: dict[str, str] = {}
    extra = {
        "illegal_parking": "주차 주정차 parking 駐車",
        "illegal_banner": "현수막 광고물 banner バナー 横断幕",
        "illegal_dumping": "쓰레기 무단투기 garbage trash dumping ごみ ゴミ",
        "broken_sidewalk": "보도블록 보도 sidewalk 歩道",
        "broken_streetlight": "가로등 보안등 streetlight 街灯 街路灯 防犯灯",
        "noise": "소음 noise 騒音",
        "sewer": "하수구 하수도 악취 sewer 下水",
        "urban_facility": "시설물 facility 施設",
        "construction": "공사 construction 工事",
        "safety": "안전 위험 safety hazard 危険",
    }
    for category, labels in CATEGORY_LABELS.items():
        for label in labels.values():
            for part in [*re.split(r"[·/]", label), label]:
                words[_fold(part)] = category
        for word in extra[category].split():
            words[_fold(word)] = category
    return sorted(words.items(), key=lambda item: len(item[0]), reverse=True)


def _fold(text: str) -> str:
    return re.sub(r"\s+", "", text.casefold())


def category_in_words(text: str) -> str | None:
    """The category a message names by its name, the last one not negated ("소음 말고 공사장" → construction)."""
    folded = _fold(text)
    found: list[tuple[int, int, str]] = []
    for word, category in _category_words():
        for match in re.finditer(re.escape(word), folded) if word else ():
            if not any(start <= match.start() < end for start, end, _ in found):
                found.append((match.start(), match.end(), category))
    kept = [f for f in sorted(found) if not NEGATED_AFTER.match(folded[f[1] :])]
    return kept[-1][2] if kept else None


def is_account(text: str, spans: list[tuple[int, int]], minimum: int = 5) -> bool:
    """Whether a message says something about the problem once its place and district are taken out."""
    kept = "".join(ch for i, ch in enumerate(text) if not any(start <= i < end for start, end in spans))
    kept = PARTICLE_END.sub(" ", kept)
    kept = ANSWER_FILLERS.sub("", kept.strip())
    return len(re.sub(r"[\W_\d]", "", kept)) >= minimum
