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
    "chat_rate_limited": {
        "ko": "메시지를 너무 빨리 보내고 있어요. {wait} 후에 다시 보내 주세요.",
        "en": "You're sending messages too quickly. Please send again in {wait}.",
        "ja": "メッセージの送信が速すぎます。{wait}後にもう一度送ってください。",
    },
    "photo_rate_limited": {
        "ko": "사진을 너무 많이 보냈어요. {wait} 후에 다시 보내 주세요.",
        "en": "Too many photos for now. Please send again in {wait}.",
        "ja": "写真の送信が多すぎます。{wait}後にもう一度送ってください。",
    },
    "in_progress": {
        "ko": "이전 메시지를 처리하고 있어요. 잠시만 기다려 주세요.",
        "en": "Still working on your previous message, one moment please.",
        "ja": "前のメッセージを処理中です。少々お待ちください。",
    },
    "language_set": {
        "ko": "이제 한국어로 안내해 드릴게요. 무엇이 불편하신지, 어디인지 알려 주세요.",
        "en": "I'll talk to you in English from now on. Tell me what the problem is and where.",
        "ja": "これから日本語でご案内します。どんな問題が、どこで起きているか教えてください。",
    },
    "edited": {
        "ko": "보낸 메시지를 고치셔도 반영되지 않아요. 고칠 내용을 새 메시지로 보내 주세요.",
        "en": "I can't read edits to sent messages. Please send the correction as a new message.",
        "ja": "送信済みメッセージの編集は反映されません。訂正は新しいメッセージで送ってください。",
    },
    "voice_not_supported": {
        "ko": "음성 메시지는 아직 들을 수 없어요. 글로 적어 주시거나 120 다산콜재단에 전화해 주세요.",
        "en": "I can't listen to voice messages yet. Please type your message, or call the 120 line.",
        "ja": "音声メッセージはまだ聞けません。文字で送るか、120番に電話してください。",
    },
    "unsupported_message": {
        "ko": "스티커나 파일은 처리할 수 없어요. 글, 사진, 위치로 알려 주세요.",
        "en": "I can't handle stickers or files. Please send text, a photo or a location.",
        "ja": "スタンプやファイルは扱えません。文字、写真、位置情報で送ってください。",
    },
    "contact_not_yours": {
        "ko": "본인 전화번호만 인증할 수 있어요. 아래 '내 번호 인증' 버튼을 눌러 주세요.",
        "en": "Only your own phone number can be verified. Please use the 'Verify my number' button below.",
        "ja": "ご本人の電話番号のみ認証できます。下の「番号を認証」ボタンを押してください。",
    },
    "phone_verified": {
        "ko": "전화번호(끝자리 {last4})가 인증되었어요. 이 번호로 신고 내역을 이어서 볼 수 있어요.",
        "en": "Your phone number (ending {last4}) is verified. Your reports are now linked to it.",
        "ja": "電話番号（末尾{last4}）を認証しました。通報履歴がこの番号に紐づきます。",
    },
    "invalid_phone": {
        "ko": "이 전화번호는 확인할 수 없어요.",
        "en": "That phone number could not be read.",
        "ja": "この電話番号は確認できませんでした。",
    },
    # The web chat's "📞 Verify my number" (bot/webchat_phone.py); its refusals are the poll pages' texts.
    "phone_code_sms": {
        "ko": "[서울 민원 챗봇] 인증번호 {code} (5분 안에 입력, 다른 사람에게 알려 주지 마세요)",
        "en": "[Seoul Civic Assistant] Code {code} (enter within 5 minutes; do not share it)",
        "ja": "[ソウル市民相談チャットボット] 認証番号 {code}（5分以内に入力。他の人に教えないでください）",
    },
    "web_phone_verified": {
        "ko": "전화번호(끝자리 {last4})가 인증되었어요. 이제 이 채팅에서 투표할 수 있어요. "
        "투표하던 중이었다면 선택지를 다시 눌러 주세요.",
        "en": "Your phone number (ending {last4}) is verified, so you can vote in this chat. "
        "If you were voting, tap your choice again.",
        "ja": "電話番号（末尾{last4}）を認証しました。このチャットで投票できます。"
        "投票の途中だった場合は、もう一度選択肢をタップしてください。",
    },
}


def gateway_message(key: str, language: str, **values: object) -> str:
    texts = GATEWAY_MESSAGES[key]
    return texts.get(language, texts["ko"]).format(**values)
