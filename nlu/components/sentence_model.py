"""What the two sentence classifiers share: construction, and persisting their sklearn model."""

from __future__ import annotations

from typing import Any, Dict, Optional, Text, Type, TypeVar

import joblib
from sklearn.pipeline import Pipeline

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage

T = TypeVar("T", bound="SentenceModelComponent")


class SentenceModelComponent(GraphComponent):
    """A graph component holding one fitted sklearn pipeline, stored in the model as FILE."""

    FILE = "model.joblib"

    def __init__(self, config: Dict[Text, Any], storage: ModelStorage, resource: Resource, model: Optional[Pipeline] = None) -> None:
        self.config = config
        self.storage = storage
        self.resource = resource
        self.model = model

    @classmethod
    def create(cls: Type[T], config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext) -> T:
        return cls(config, model_storage, resource)

    def persist(self) -> None:
        with self.storage.write_to(self.resource) as directory:
            joblib.dump(self.model, directory / self.FILE)

    @classmethod
    def load(cls: Type[T], config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext, **kwargs: Any) -> T:
        try:
            with model_storage.read_from(resource) as directory:
                model = joblib.load(directory / cls.FILE)
        except (ValueError, FileNotFoundError):
            model = None  # trained without data for it: the component then does nothing
        return cls(config, model_storage, resource, model)
