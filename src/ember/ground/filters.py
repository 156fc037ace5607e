"""OpenAI attribute filters (``ComparisonFilter``, ``CompoundFilter``) over file attributes.

``{"type": "eq", "key": "lang", "value": "zh"}`` compares one attribute;
``{"type": "and" | "or", "filters": [...]}`` combines filters. ``in``/``nin`` take a list.
:func:`validate` refuses a malformed filter with 400 before any search runs.
"""

from __future__ import annotations

from typing import Any

from ember.errors import InvalidRequestError

_COMPARISONS = {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"}
_COMPOUNDS = {"and", "or"}


def validate(spec: Any, param: str = "filters") -> None:
    if not isinstance(spec, dict) or "type" not in spec:
        raise InvalidRequestError("A filter is an object with a 'type'.", param=param)
    kind = spec["type"]
    if kind in _COMPOUNDS:
        filters = spec.get("filters")
        if not isinstance(filters, list) or not filters:
            raise InvalidRequestError(
                f"A '{kind}' filter needs a non-empty 'filters' list.", param=f"{param}.filters"
            )
        for index, item in enumerate(filters):
            validate(item, f"{param}.filters[{index}]")
        return
    if kind not in _COMPARISONS:
        raise InvalidRequestError(
            f"Unknown filter type '{kind}'; use one of "
            f"{', '.join(sorted(_COMPARISONS | _COMPOUNDS))}.",
            param=f"{param}.type",
        )
    if not isinstance(spec.get("key"), str):
        raise InvalidRequestError("A comparison filter needs a string 'key'.", param=f"{param}.key")
    value = spec.get("value")
    if kind in ("in", "nin"):
        if not isinstance(value, list):
            raise InvalidRequestError(f"'{kind}' compares with a list.", param=f"{param}.value")
    elif not isinstance(value, str | int | float | bool):
        raise InvalidRequestError(
            "A comparison value is a string, number or boolean.", param=f"{param}.value"
        )


def _compare(kind: str, actual: Any, expected: Any) -> bool:
    if kind == "eq":
        return bool(actual == expected)
    if kind == "ne":
        return bool(actual != expected)
    if kind == "in":
        return actual in expected
    if kind == "nin":
        return actual not in expected
    if actual is None or isinstance(actual, bool) != isinstance(expected, bool):
        return False
    numeric = isinstance(actual, int | float) and isinstance(expected, int | float)
    if not numeric and not (isinstance(actual, str) and isinstance(expected, str)):
        return False
    if kind == "gt":
        return bool(actual > expected)
    if kind == "gte":
        return bool(actual >= expected)
    if kind == "lt":
        return bool(actual < expected)
    return bool(actual <= expected)  # lte


def matches(spec: dict[str, Any], attributes: dict[str, Any]) -> bool:
    """Whether a file with ``attributes`` passes the (validated) filter ``spec``."""
    kind = spec["type"]
    if kind == "and":
        return all(matches(item, attributes) for item in spec["filters"])
    if kind == "or":
        return any(matches(item, attributes) for item in spec["filters"])
    key = spec["key"]
    if key not in attributes and kind not in ("ne", "nin"):
        return False
    return _compare(kind, attributes.get(key), spec["value"])
