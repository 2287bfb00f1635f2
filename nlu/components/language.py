"""Detects the message language (ko, ja, en) from its script and emits it as entity `language`.

When the text tells nothing (a case number, a button, a shared location) the gateway's metadata
carries the conversation's language, so the `language` slot follows the conversation instead.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from civic.language import LANGUAGES, detect_language


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class LanguageDetector(GraphComponent, EntityExtractorMixin):
    """Adds `{"entity": "language", "value": "ko"|"en"|"ja"}` so the `language` slot follows each message."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LanguageDetector:
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            language = detect_language(message.get(TEXT) or "") or _metadata_language(message)
            if language is None:
                continue
            entity = {"entity": "language", "value": language, "start": 0, "end": 0, "confidence": 1.0}
            message.set(ENTITIES, message.get(ENTITIES, []) + self.add_extractor_name([entity]), add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data


def _metadata_language(message: Message) -> str | None:
    metadata = message.get("metadata") or {}
    language = metadata.get("language") if isinstance(metadata, dict) else None
    return language if language in LANGUAGES else None
