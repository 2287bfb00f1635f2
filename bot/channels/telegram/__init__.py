"""The Telegram front door: a thin adapter from python-telegram-bot to the gateway and the outbox."""
