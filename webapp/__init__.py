"""The one ASGI web app: web chat today; Telegram, Twilio and the console plug in as routers."""
