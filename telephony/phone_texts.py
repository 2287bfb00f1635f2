"""What the 120 line says in its own words: greeting, re-prompts, hand-off, and phone forms of chat texts."""

from __future__ import annotations

import re

GREETING = (
    "안녕하세요, 서울시 120 민원 안내입니다. 불편 신고는 1번, 처리 상황 확인은 2번, 상담원 연결은 0번을 "
    "누르시거나, 무엇을 도와드릴지 말씀해 주세요."
)
NOT_HEARD = "말씀이 잘 들리지 않았어요. 다시 한 번 말씀해 주세요."
NOT_UNDERSTOOD = "죄송해요, 잘 알아듣지 못했어요. 다시 말씀해 주시거나 번호를 눌러 주세요."
OFFER_OPERATOR_SILENCE = (
    "말씀이 들리지 않아요. 상담원과 통화하시려면 0번을 누르시거나 상담원이라고 말씀해 주세요. 계속 말씀하셔도 돼요."
)
GOODBYE_SILENCE = (
    "연결 상태가 좋지 않아 통화를 마칠게요. 말씀하신 내용은 상담원이 확인할 수 있도록 보관했어요. 다시 걸어 주세요."
)
HANDING_OFF = "상담원에게 연결해 드릴게요. 지금까지 말씀하신 내용은 상담원이 바로 볼 수 있어요. 잠시만 기다려 주세요."
TOO_LONG = "통화가 길어져 상담원에게 연결해 드릴게요. 말씀하신 내용은 그대로 전달돼요. 잠시만 기다려 주세요."
FOREIGN_LANGUAGE_KO = "외국어 상담이 필요하시면 0번을 눌러 주세요. 상담원에게 연결해 드릴게요."
FOREIGN_LANGUAGE = {
    "en": "This line's assistant speaks Korean only. To talk to an operator, press 0 or say 'operator'.",
    "ja": "この自動案内は韓国語のみです。オペレーターにおつなぎするには0を押してください。",
    "zh": "本自动服务仅支持韩语。如需人工服务，请按0。",
}
KEYS_NOT_EXPECTED = "지금은 번호 대신 말씀으로 알려 주세요. 상담원 연결은 0번이에요."
UNAVAILABLE = "죄송해요, 지금 시스템이 원활하지 않아 상담원에게 연결해 드릴게요. 잠시만 기다려 주세요."
CONNECTING_OPERATOR = "상담원을 연결합니다."
OPERATOR_DONE = "상담이 끝났습니다. 120 다산콜센터를 이용해 주셔서 감사합니다."
ALREADY_ENDED = "통화가 이미 종료되었어요."
# The confidence gate did not believe a closed answer: asked once more, with the keys.
NOT_CAUGHT = "죄송해요, 잘 못 들었어요."
NOT_CAUGHT_DISTRICT = "구 이름만 짧게 말씀해 주세요."
HANDING_OFF_NOT_UNDERSTOOD = (
    "말씀을 알아듣기 어려워 상담원에게 연결해 드릴게요. 녹음하신 말씀도 함께 전달돼요. 잠시만 기다려 주세요."
)
# …nor a place or description: nothing of it is read back; the recording waits for an operator to type it.
KEPT_FOR_OPERATOR = "말씀하신 내용은 녹음으로 보관해서 상담원이 직접 듣고 적어 둘게요."
# What reaches the bot (and the case) instead of words the line did not believe, by the question's field. The
# operator's transcript replaces it in the case (telephony/transcripts.py); read aloud it says what it is. The
# bot's NLU reads these as a report (0.76 / 0.77 when chosen), so the form takes them like any spoken answer; a
# place marker also fills an empty description, as a spoken place that reads like a report does.
UNHEARD_MARKERS = {"place": "녹음 파일에 남긴 위치", "description": "녹음 파일에 남긴 내용"}
UNHEARD_SPOKEN = {"place": "녹음으로 남기신 위치", "description": "녹음으로 남기신 내용"}
MENU_HINT = "{label} {key}번"
# Spoken forms of chat texts that talk about screens and buttons, by domain response name.
PHONE_FORMS = {
    "utter_greet": GREETING,
    "utter_ask_district": "서울 어느 구인가요? 마포구, 강남구처럼 구 이름을 말씀해 주세요.",
    "utter_ask_place": "정확한 위치를 말씀해 주세요. 주소나 역 출구, 큰 건물 이름을 말씀해 주시면 좋아요.",
    "utter_ask_case_number": (
        "접수번호 끝 여섯 자리를 누르고 우물정자를 눌러 주세요. 예를 들어 SR 2026, 000123번이면 1 2 3 "
        "우물정자를 누르시면 돼요. 상담원 연결은 0번이에요."
    ),
    "utter_help": (
        "불법 주정차, 쓰레기, 가로등 고장 같은 불편을 신고하시거나, 접수번호로 처리 상황을 확인하실 수 있어요. "
        "신고는 1번, 처리 상황은 2번, 상담원은 0번이에요."
    ),
    "utter_ask_place_detail": (
        "현장을 찾을 수 있게 조금 더 자세히 말씀해 주세요. 가까운 건물이나 가게 이름, 주소, 역 출구를 말씀해 "
        "주시면 돼요."
    ),
    "utter_handoff_declined": "알겠어요. 무엇이 어디에서 문제인지 말씀해 주세요.",
    "utter_location_outside_seoul": "서울 밖은 서울시에서 처리할 수 없어요. 문제가 있는 서울의 구를 말씀해 주세요.",
}
# Said after a chat text on the phone.
PHONE_SUFFIXES = {
    "utter_case_filed": (
        " 접수번호는 문자 메시지로도 보내 드릴게요. 더 도와드릴 일이 있으면 말씀해 주시고, 없으면 끊으셔도 돼요."
    ),
    "utter_following_case": " 처리 소식은 문자 메시지로 보내 드릴게요.",
}
# Chat-only texts the phone leaves out (they speak of photos, screens and links).
UNSPOKEN = frozenset({"utter_photo_received", "utter_location_received"})

_CASE_NUMBER = re.compile(r"SR-(\d{4})-(\d{6})")
# A link is not read out: "국민신문고(www.epeople.go.kr)에" is said "국민신문고에".
_URL = re.compile(r"\(?(?:https?://|www\.)[^\s)]+\)?")
_BULLET = re.compile(r"^\s*[•\-]\s*", re.MULTILINE)
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f]")


def spoken(text: str) -> str:
    """A chat text made fit to be read aloud: no bullets, emoji or links; case numbers digit by digit."""
    text = _URL.sub("", text)
    text = _EMOJI.sub("", text)
    text = _BULLET.sub("", text)
    text = _CASE_NUMBER.sub(lambda m: f"SR {m.group(1)}, {' '.join(m.group(2))}", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    joined = " ".join(line if line[-1] in ".?!:," else line + "." for line in lines)
    return re.sub(r"\s+", " ", joined).strip()


def unheard_read_back(text: str) -> str:
    """A bot text with the markers of unbelieved answers said as what they are (the recording kept)."""
    for field, marker in UNHEARD_MARKERS.items():
        text = text.replace(marker, UNHEARD_SPOKEN[field])
    return text


def has_final_consonant(word: str) -> bool:
    """Whether the last Hangul syllable of `word` ends in a consonant (picks 은/는, 이/가, 을/를)."""
    for char in reversed(word):
        if "가" <= char <= "힣":
            return (ord(char) - ord("가")) % 28 != 0
        if char.isdigit():
            return char in "013678"  # 영, 일, 삼, 육, 칠, 팔
    return False


def menu(labels_and_keys: list[tuple[str, str]]) -> str:
    """ "불법 주정차는 1번, 소음은 6번…": the keys of a menu, each label with its right particle."""
    parts = [f"{label}{'은' if has_final_consonant(label) else '는'} {key}번" for label, key in labels_and_keys]
    return ", ".join(parts) + "을 누르시거나 말씀해 주세요."
