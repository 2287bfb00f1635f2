"""Intent classifier: logistic regression over TF-IDF character n-grams of the sentence.

Chosen over Rasa's LogisticRegressionClassifier (raw counts) and DIET by held-out accuracy; see
the README's NLU section and `make nlu-eval`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.components.sentence_model import SentenceModelComponent
from nlu.components.text_features import sentence_classifier

RANKING_LENGTH = 10


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class TfidfIntentClassifier(SentenceModelComponent, IntentClassifier):
    """Predicts the intent of the whole sentence with a linear model."""

    FILE = "intent.joblib"

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        # Each intent weighs (most examples / its examples) ** class_weight_power: 0 is plain, 1 "balanced".
        # A half-way weight keeps the many complaint reports from drowning the small intents (greetings,
        # help) without pulling short reports into `inform`; see the README's NLU section.
        return {"C": 50.0, "max_ngram": 4, "kiwi_morphemes": False, "class_weight_power": 0.0}

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples if m.get(TEXT)]
        labels = [m.get(INTENT) for m in examples]
        counts = Counter(labels)
        power = float(self.config["class_weight_power"])
        weights = {label: (max(counts.values()) / n) ** power for label, n in counts.items()} if power else None
        self.model = sentence_classifier(
            self.config["C"], self.config["max_ngram"], self.config["kiwi_morphemes"], weights
        )
        self.model.fit([m.get(TEXT) for m in examples], labels)
        self.persist()
        return self.resource

    def process(self, messages: List[Message]) -> List[Message]:
        assert self.model is not None, "TfidfIntentClassifier used before training"
        for message in messages:
            text = message.get(TEXT) or ""
            if not text:
                continue
            probabilities = self.model.predict_proba([text])[0]
            ranking = sorted(zip(self.model.classes_, probabilities), key=lambda pair: -pair[1])[:RANKING_LENGTH]
            message.set(INTENT, {"name": str(ranking[0][0]), "confidence": float(ranking[0][1])}, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [{"name": str(n), "confidence": float(p)} for n, p in ranking], add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
