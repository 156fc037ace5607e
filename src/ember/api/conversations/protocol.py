"""Wire models of ``/v1/conversations`` requests (the spec's ``CreateConversationBody``,
``UpdateConversationBody`` and the items body); items are the Responses input items."""

from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator

from ember.api.responses.protocol import InputItem, _Other
from ember.api.wire import WireModel
from ember.errors import UnsupportedParameterError
from ember.services.responses import Item


def _check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return value
    if len(value) > 16:
        raise ValueError("at most 16 metadata keys are allowed")
    if any(len(k) > 64 or len(v) > 512 for k, v in value.items()):
        raise ValueError("metadata keys are at most 64 characters, values at most 512")
    return value


def items_of(entries: list[InputItem], *, param: str = "items") -> list[Item]:
    items: list[Item] = []
    for index, entry in enumerate(entries):
        if isinstance(entry, _Other):
            raise UnsupportedParameterError(
                f"Items of type '{entry.type}' are not supported.", param=f"{param}[{index}].type"
            )
        items.append(entry.to_item(index))
    return items


class CreateConversationRequest(WireModel):
    model_config = ConfigDict(extra="ignore")
    items: list[InputItem] | None = Field(default=None, max_length=20)
    metadata: dict[str, str] | None = None

    _metadata = field_validator("metadata")(_check_metadata)


class UpdateConversationRequest(WireModel):
    model_config = ConfigDict(extra="ignore")
    metadata: dict[str, str]

    _metadata = field_validator("metadata")(_check_metadata)


class AddItemsRequest(WireModel):
    model_config = ConfigDict(extra="ignore")
    items: list[InputItem] = Field(min_length=1, max_length=20)
