"""Intent classifier: logistic regression over TF-IDF character n-grams and words of the sentence.

Chosen over Rasa's LogisticRegressionClassifier (raw counts) and DIET by held-out accuracy; see
the README's NLU section and `make nlu-eval`.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

import joblib
from sklearn.pipeline import Pipeline

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.components.text_features import sentence_classifier

RANKING_LENGTH = 10


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class TfidfIntentClassifier(GraphComponent, IntentClassifier):
    """Predicts the intent of the whole sentence with a calibrated linear model."""

    FILE = "intent.joblib"

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"C": 50.0, "max_ngram": 4, "kiwi_morphemes": False}

    def __init__(self, config: Dict[Text, Any], storage: ModelStorage, resource: Resource, model: Optional[Pipeline] = None) -> None:
        self.config = config
        self.storage = storage
        self.resource = resource
        self.model = model

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext) -> TfidfIntentClassifier:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples if m.get(TEXT)]
        self.model = sentence_classifier(self.config["C"], self.config["max_ngram"], self.config["kiwi_morphemes"])
        self.model.fit([m.get(TEXT) for m in examples], [m.get(INTENT) for m in examples])
        with self.storage.write_to(self.resource) as directory:
            joblib.dump(self.model, directory / self.FILE)
        return self.resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext, **kwargs: Any) -> TfidfIntentClassifier:
        with model_storage.read_from(resource) as directory:
            model = joblib.load(directory / cls.FILE)
        return cls(config, model_storage, resource, model)

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
