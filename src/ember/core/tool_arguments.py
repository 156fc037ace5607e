"""Check a tool call's arguments against the tool's JSON schema, repairing what is safe to.

Small models get the shape of a call right more often than the types inside it: ``"5"`` for
an integer, ``3`` for a string, one value where the schema wants a list, a key the schema does
not have. :func:`repair_arguments` returns the arguments fixed where the intent is
unambiguous, or ``None`` when they cannot be made valid (a required key missing, a value of
the wrong type that does not convert). It understands the JSON schema that tool definitions
use (``type``, ``properties``, ``required``, ``items``, ``enum``, ``additionalProperties``,
``anyOf``/``oneOf``); anything it does not understand it leaves alone.
"""

from __future__ import annotations

import math
from typing import Any

_MISSING = object()


def repair_arguments(arguments: Any, parameters: dict[str, Any] | None) -> dict[str, Any] | None:
    """``arguments`` valid against ``parameters`` (an object schema), or None."""
    if isinstance(arguments, list) and not arguments:
        arguments = {}
    if not isinstance(arguments, dict):
        return None
    schema = dict(parameters) if parameters else {}
    schema.setdefault("type", "object")
    repaired = _repair(arguments, schema)
    return repaired if isinstance(repaired, dict) else None


def _repair(value: Any, schema: Any) -> Any:
    """The value made valid against ``schema``, or _MISSING."""
    if not isinstance(schema, dict):
        return value
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            for option in schema[key]:
                fixed = _repair(value, option)
                if fixed is not _MISSING:
                    return fixed
            return _MISSING
    if "enum" in schema and isinstance(schema["enum"], list):
        return _enum(value, schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        for option in kind:
            fixed = _repair(value, {**schema, "type": option})
            if fixed is not _MISSING:
                return fixed
        return _MISSING
    repair = _BY_TYPE.get(kind) if isinstance(kind, str) else None
    return value if repair is None else repair(value, schema)


def _enum(value: Any, allowed: list[Any]) -> Any:
    if value in allowed:
        return value
    for option in allowed:  # "5" for 5, 5 for "5", "Celsius" for "celsius"
        if str(option) == str(value) or (
            isinstance(option, str) and isinstance(value, str) and option.lower() == value.lower()
        ):
            return option
    return _MISSING


def _object(value: Any, schema: dict[str, Any]) -> Any:
    if not isinstance(value, dict):
        return _MISSING
    properties = schema.get("properties") or {}
    extra = schema.get("additionalProperties", True)
    result: dict[str, Any] = {}
    for key, item in value.items():
        if key in properties:
            fixed = _repair(item, properties[key])
            if fixed is _MISSING:
                if key in (schema.get("required") or []):
                    return _MISSING
                continue  # an optional value that cannot be right: leave it to the default
            result[key] = fixed
        elif extra is False:
            continue  # a key the tool does not take
        elif isinstance(extra, dict):
            fixed = _repair(item, extra)
            if fixed is _MISSING:
                return _MISSING
            result[key] = fixed
        else:
            result[key] = item
    if any(key not in result for key in schema.get("required") or []):
        return _MISSING
    return result


def _array(value: Any, schema: dict[str, Any]) -> Any:
    if not isinstance(value, list):
        value = [value]  # one value where the tool takes a list of them
    items = schema.get("items")
    fixed = [_repair(item, items) for item in value]
    return _MISSING if any(item is _MISSING for item in fixed) else fixed


def _string(value: Any, schema: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        return _MISSING
    return str(value)


def _integer(value: Any, schema: dict[str, Any]) -> Any:
    if isinstance(value, bool):
        return _MISSING
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            number = _number(value, schema)
            if isinstance(number, float) and number.is_integer():
                return int(number)
    return _MISSING


def _number(value: Any, schema: dict[str, Any]) -> Any:
    if isinstance(value, bool):
        return _MISSING
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return _MISSING
        return number if math.isfinite(number) else _MISSING
    return _MISSING


def _boolean(value: Any, schema: dict[str, Any]) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return _MISSING


def _null(value: Any, schema: dict[str, Any]) -> Any:
    return None if value is None else _MISSING


_BY_TYPE = {
    "object": _object,
    "array": _array,
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "null": _null,
}
