"""The base of every request body model: types as strict as OpenAI's API.

* **Strict types**: ``"10"`` is not an integer and ``"true"`` is not a boolean; a client
  that sends them has a bug, and answering 200 would hide it (an integer still counts as a
  number). pydantic's strict mode, for every field of every request model.
* **Text that can be encoded**: JSON may carry a lone UTF-16 surrogate (``"\\ud800"``, or raw
  bytes that decode to one), which no UTF-8 text can hold; such a string is refused with a
  400 naming where it is, before anything reads or stores it.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from ember.errors import InvalidRequestError

_SURROGATE = re.compile("[\ud800-\udfff]")


def _path(parts: list[str | int]) -> str:
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else part)
    return name


def find_unencodable(value: Any, where: list[str | int] | None = None) -> str | None:
    """The path (``messages[0].content``) of the first string or key in ``value`` holding a
    lone surrogate; ``""`` for ``value`` itself; None when every string can be encoded."""
    where = where or []
    if isinstance(value, str):
        return _path(where) if not value.isascii() and _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not key.isascii() and _SURROGATE.search(key):
                return _path([*where, key.encode("utf-8", "replace").decode()])
            found = find_unencodable(item, [*where, str(key)])
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_unencodable(item, [*where, index])
            if found is not None:
                return found
    return None


class WireModel(BaseModel):
    """A request body (or part of one): strict types, encodable text, unknown keys ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _encodable(cls, data: Any) -> Any:
        if isinstance(data, dict):
            path = find_unencodable(data)
            if path is not None:
                raise InvalidRequestError(
                    "The text holds a lone UTF-16 surrogate, which cannot be encoded as "
                    "UTF-8; send valid Unicode.",
                    param=path or None,
                    code="invalid_unicode",
                )
        return data
