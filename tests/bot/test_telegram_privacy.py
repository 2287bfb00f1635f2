"""A shared contact's number is encrypted in the inbox row and blanked in python-telegram-bot's DEBUG logs."""

from __future__ import annotations

import json
import logging

import pytest
from telegram import Update

from bot.channels.telegram.privacy import PTB_LOGGERS, SEALED_FIELD, redact_telegram_logs, seal, unseal
from tests.fakes import telegram_api as tg

NUMBER = "+82 10-2345-6789"


def test_a_sealed_update_holds_no_number_and_unseals_to_the_original() -> None:
    update = tg.contact_update(4242, NUMBER, contact_user_id=4242)
    # A reply to a contact carries the contact again, one level down.
    update["message"]["reply_to_message"] = {"message_id": 1, "date": 0, "chat": update["message"]["chat"]}
    update["message"]["reply_to_message"]["contact"] = dict(update["message"]["contact"])

    sealed = seal(update)

    stored = json.dumps(sealed)
    assert "2345" not in stored and "6789" not in stored and 'phone_number"' not in stored
    assert SEALED_FIELD in sealed["message"]["contact"] and SEALED_FIELD in stored.split("reply_to_message")[1]
    assert unseal(sealed) == update
    assert Update.de_json(unseal(sealed), None).message.contact.phone_number == NUMBER  # type: ignore[union-attr]
    plain = tg.text_update(4242, "안녕하세요")
    assert seal(plain) == plain and unseal(plain) == plain


def test_a_damaged_sealed_number_becomes_empty_not_an_error() -> None:
    sealed = seal(tg.contact_update(4242, NUMBER, contact_user_id=4242))
    sealed["message"]["contact"][SEALED_FIELD] = "AAAA" + sealed["message"]["contact"][SEALED_FIELD][4:]
    assert unseal(sealed)["message"]["contact"]["phone_number"] == ""


@pytest.mark.parametrize("logger_name", PTB_LOGGERS)
def test_debug_records_of_whole_updates_are_redacted(logger_name: str, caplog: pytest.LogCaptureFixture) -> None:
    redact_telegram_logs()
    redact_telegram_logs()  # idempotent: one filter per logger
    logger = logging.getLogger(logger_name)
    assert len([f for f in logger.filters if type(f).__name__ == "RedactPhoneNumbers"]) == 1
    update = Update.de_json(tg.contact_update(4242, NUMBER, contact_user_id=4242), None)
    with caplog.at_level(logging.DEBUG, logger=logger_name):
        logger.debug("Processing update %s", update)
        logger.debug("Call to Bot API endpoint `%s` finished with return value `%s`", "getUpdates", [update.to_dict()])
    assert len(caplog.records) == 2
    for record in caplog.records:
        assert "2345" not in record.getMessage() and "[redacted]" in record.getMessage()
        assert "update_id" in record.getMessage()  # the rest of the record is kept
