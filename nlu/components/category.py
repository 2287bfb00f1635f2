"""Sentence-level complaint category classifier, emitted as entity `category`.

Citizens describe situations ("소화전 앞에 차를 세워놨어요") more often than they name the
category, so the category is a label of the whole sentence, learnt from the `category` metadata
of the `report_complaint` training blocks. It speaks on complaint reports, and on form answers
(inform, deny) only when it is confident, so "마포구요" never changes the category.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, INTENT, METADATA, METADATA_INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.components.sentence_model import SentenceModelComponent
from nlu.components.text_features import sentence_classifier

logger = logging.getLogger(__name__)


def category_of(message: Message) -> Optional[Text]:
    metadata = message.get(METADATA) or {}
    intent_metadata = metadata.get(METADATA_INTENT) or {}
    category = intent_metadata.get("category")
    return str(category) if category else None


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class CategoryClassifier(SentenceModelComponent, EntityExtractorMixin):
    """Adds `{"entity": "category", "value": <canonical>}` to complaint-like messages."""

    FILE = "category.joblib"

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "C": 10.0,
            "kiwi_morphemes": False,
            # Minimum probability of the best category, per intent of the message.
            "thresholds": {"report_complaint": 0.25, "inform": 0.8, "deny": 0.8},
        }

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples if m.get(TEXT) and category_of(m)]
        texts = [m.get(TEXT) for m in examples]
        labels = [category_of(m) for m in examples]
        if len(set(labels)) < 2:
            logger.warning("CategoryClassifier: no category metadata in training data; not trained")
            return self.resource
        self.model = sentence_classifier(self.config["C"], kiwi_morphemes=self.config["kiwi_morphemes"]).fit(texts, labels)
        self.persist()
        return self.resource

    def process(self, messages: List[Message]) -> List[Message]:
        if self.model is None:
            return messages
        for message in messages:
            text = message.get(TEXT) or ""
            intent = (message.get(INTENT) or {}).get("name")
            threshold = self.config["thresholds"].get(intent)
            if not text or text.startswith("/") or threshold is None:
                continue
            probabilities = self.model.predict_proba([text])[0]
            best = int(probabilities.argmax())
            label = self.model.classes_[best]
            if probabilities[best] < threshold:
                continue
            entity = {"entity": "category", "value": str(label), "start": 0, "end": len(text), "confidence": float(probabilities[best])}
            message.set(ENTITIES, message.get(ENTITIES, []) + self.add_extractor_name([entity]), add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
