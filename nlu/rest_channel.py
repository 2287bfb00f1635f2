"""Rasa's REST channel with each reply named by its domain response (`utter_action`), for the channels.

Rasa names every templated message itself: a rule's or form's `utter_…` action, and a custom action's
`dispatcher.utter_message(response=…)`, put `utter_action` in the message. The stock REST channel's collector
drops it (it keeps only text, buttons, image, attachment and custom), so the gateway could only guess a reply
from its wording. This channel is the stock one, same URL (`/webhooks/rest/webhook`), with the name kept on
every message a response becomes (Rasa splits a text at blank lines). credentials.yml names it.
"""

from __future__ import annotations

from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint

# The key Rasa itself gives a message's response name; the gateway reads it from each REST reply.
NAME_KEY = "utter_action"


class NamedCollectingOutputChannel(CollectingOutputChannel):
    """Collects into the stock collector's list, adding each message's response name."""

    def __init__(self, collector: CollectingOutputChannel) -> None:
        super().__init__()
        self.messages = collector.messages  # the very list the webhook answers with

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        name = message.get(NAME_KEY)
        first = len(self.messages)
        await super().send_response(recipient_id, message)
        if name:
            for sent in self.messages[first:]:
                sent[NAME_KEY] = name


class NamedRestInput(RestInput):
    """The REST channel (named "rest", so its URL stays), whose replies carry their response names."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: Any) -> Blueprint:
        async def named(message: UserMessage) -> None:
            # Only the plain collector: the streaming variant's messages are a queue, not a list.
            if type(message.output_channel) is CollectingOutputChannel:
                message.output_channel = NamedCollectingOutputChannel(message.output_channel)
            await on_new_message(message)

        return super().blueprint(named)
