"""`POST /telegram/webhook`: secret checked first, update stored, 200 at once; the dialogue runs behind."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response

from bot.channels.telegram.front_door import WEBHOOK_PATH, TelegramFrontDoor

router = APIRouter()
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@router.post(WEBHOOK_PATH, include_in_schema=False)
async def telegram_webhook(request: Request) -> Response:
    front_door: TelegramFrontDoor | None = getattr(request.app.state, "telegram", None)
    if front_door is None:
        return Response(status_code=404)
    if not front_door.secret_matches(request.headers.get(SECRET_HEADER, "")):
        return Response(status_code=403)
    try:
        data = json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return Response(status_code=400)
    if not isinstance(data, dict) or type(data.get("update_id")) is not int:
        return Response(status_code=400)
    await front_door.accept(data)
    return Response(status_code=200)
