"""What the gateway itself says (before or instead of Rasa), in ko / en / ja."""

from __future__ import annotations

GATEWAY_MESSAGES: dict[str, dict[str, str]] = {
    "too_long": {
        "ko": "메시지가 너무 길어요 ({limit}자까지 보낼 수 있어요). 나눠서 보내 주세요.",
        "en": "That message is too long (up to {limit} characters). Please send it in parts.",
        "ja": "メッセージが長すぎます（{limit}文字まで）。分けて送ってください。",
    },
    "empty": {
        "ko": "내용이 비어 있어요. 어떤 불편이 있는지 글로 알려주세요.",
        "en": "That message was empty. Please tell me in words what the problem is.",
        "ja": "メッセージが空でした。どのような問題か文字で教えてください。",
    },
    "unavailable": {
        "ko": "지금 잠시 서비스가 원활하지 않아요. 보내신 메시지는 기록되어 있으니 잠시 후 다시 보내 주세요.",
        "en": "The service is briefly unavailable. Your message has been kept; please send it again in a moment.",
        "ja": "現在サービスが一時的に利用できません。メッセージは保存されています。"
        "しばらくしてからもう一度送ってください。",
    },
    "photo_received": {
        "ko": "사진을 받았어요.",
        "en": "Photo received.",
        "ja": "写真を受け取りました。",
    },
    "unsupported_file": {
        "ko": "JPEG, PNG, WebP 사진만 {limit_mb}MB까지 받을 수 있어요.",
        "en": "Only JPEG, PNG or WebP photos up to {limit_mb} MB can be attached.",
        "ja": "添付できるのは{limit_mb}MBまでのJPEG・PNG・WebP写真のみです。",
    },
    "in_progress": {
        "ko": "이전 메시지를 처리하고 있어요. 잠시만 기다려 주세요.",
        "en": "Still working on your previous message, one moment please.",
        "ja": "前のメッセージを処理中です。少々お待ちください。",
    },
}


def gateway_message(key: str, language: str, **values: object) -> str:
    texts = GATEWAY_MESSAGES[key]
    return texts.get(language, texts["ko"]).format(**values)
