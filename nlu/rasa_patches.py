"""Speed fixes for the Rasa 3.6 engine, applied when the project's components are loaded.

Found with py-spy on `rasa run` during complaint conversations:
- Rasa checks every action server response with `jsonschema.validate(result, schema)`, which
  re-validates the schema itself on each call; with jsonschema 4.17 that was ~65% of the CPU of a
  form turn. The same schema is checked here by a validator built once: responses are validated
  exactly as before, only the repeated schema check is gone.
- Deserialising each tracker event walks the whole Event class tree (`all_subclasses`), ~11% of a
  turn; the class tree does not change once Rasa is loaded, so the walk is cached.
"""

from __future__ import annotations

from typing import Any

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    from jsonschema import ValidationError
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    schema = RemoteAction.action_response_format_spec()
    validator = validator_for(schema)(schema)

    def validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        try:
            validator.validate(result)
            return True
        except ValidationError as error:
            error.message += (
                ". Failed to validate Action server response from API, make sure your response from the "
                f"Action endpoint is valid. For more information about the format visit {DOCS_BASE_URL}/custom-actions"
            )
            raise error

    RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]

    import functools

    import rasa.shared.utils.common

    walk = rasa.shared.utils.common.all_subclasses
    rasa.shared.utils.common.all_subclasses = functools.lru_cache(maxsize=None)(walk)
    _applied = True
