"""Grammar-constrained decoding shared by every engine, built on llguidance.

:func:`grammar_for` turns an :class:`OutputConstraint` into one llguidance grammar; an engine
wraps its tokenizer once (``llguidance.hf.from_tokenizer`` or
``llguidance.llamacpp.lltokenizer_from_vocab``) and, for each request, asks a
:class:`TokenMask` which tokens may come next. Because every sampled token is drawn from the
allowed set, JSON and tool-call output is valid by construction, on both engines alike.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import llguidance
import numpy as np
from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask

from ember.core.chat_template import TOOL_CALL_CLOSE, TOOL_CALL_OPEN
from ember.core.types import OutputConstraint
from ember.errors import EngineError, InvalidRequestError

if TYPE_CHECKING:
    from llguidance._lib import JsonCompileOptions


# Compact, conventional JSON ("a": 1, "b": 2) is what small models were trained on; flexible
# whitespace lets them wander into runs of newlines and spaces.
JSON_OPTIONS: JsonCompileOptions = {
    "item_separator": ", ",
    "key_separator": ": ",
    "whitespace_flexible": False,
    "lenient": True,
}


def closed_schema(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` wherever an object leaves it unsaid.

    Small models invent extra keys when allowed to; OpenAI's strict mode closes objects the
    same way. A schema that wants open objects says ``additionalProperties: true``.
    """
    if isinstance(schema, list):
        return [closed_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed_schema(value) for key, value in schema.items()}
    if result.get("type") == "object" or "properties" in result:
        result.setdefault("additionalProperties", False)
    return result


def grammar_for(constraint: OutputConstraint) -> str:
    """The llguidance grammar (JSON text) enforcing ``constraint``."""
    if constraint.kind == "json_object":
        return str(llguidance.LLMatcher.grammar_from_json_schema({"type": "object"}, JSON_OPTIONS))
    if constraint.kind == "json_schema":
        schema = closed_schema(constraint.schema or {})
        return str(llguidance.LLMatcher.grammar_from_json_schema(schema, JSON_OPTIONS))
    call = closed_schema(constraint.tool_call_schema())
    call["x-guidance"] = JSON_OPTIONS
    one = json.dumps(call, ensure_ascii=False)
    # With parallel calls a bare or fenced form may also be a JSON list of calls.
    listed = {"type": "array", "items": call, "minItems": 1}
    either = {"anyOf": [call, listed], "x-guidance": JSON_OPTIONS}
    some = json.dumps(either, ensure_ascii=False) if constraint.parallel else one
    repeat = "+" if constraint.parallel else ""
    # A call is one of the forms small models write (``ember.core.tool_calls``): tagged
    # blocks, a bare JSON object (or list), or the same in a fenced ```json block. In "auto"
    # mode the model may answer in text instead; text may not begin the way a call does
    # ("<", "{", "[", a ```json fence, blank space) so that a call is never half-written as
    # prose: whatever call the model starts is valid by construction.
    # In "text" mode (the decision step after a repeated call) only that text is allowed.
    start = {"auto": "calls | bare | fenced | TEXT", "required": "calls | bare | fenced"}.get(
        constraint.tool_mode, "TEXT"
    )
    lark = "\n".join(
        [
            "%llguidance {}",
            f"start: {start}",
            f"calls: call{repeat}",
            f"call: {json.dumps(TOOL_CALL_OPEN + chr(10))} %json {one} "
            f'{json.dumps(chr(10) + TOOL_CALL_CLOSE)} "\\n"?',
            f"bare: %json {some}",
            f"fenced: fence{repeat}",
            f'fence: ("```json\\n" | "```\\n") %json {some} "\\n```" "\\n"*',
            r"TEXT: /[^<{\[`\s](.|\n)*/ | /`[^`](.|\n)*/ | /``[^`](.|\n)*/"
            r" | /```[a-ik-zA-Z+#](.|\n)*/ | /```j[a-rt-z](.|\n)*/",
        ]
    )
    return str(llguidance.LLMatcher.grammar_from_lark(lark))


def _check(grammar: str) -> None:
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    if is_error:
        raise InvalidRequestError(
            f"The schema cannot be enforced: {'; '.join(messages)}", param="response_format"
        )


class TokenMask:
    """Tracks one generation against a grammar and masks disallowed tokens out of logits."""

    def __init__(self, tokenizer: llguidance.LLTokenizer, constraint: OutputConstraint) -> None:
        grammar = grammar_for(constraint)
        _check(grammar)
        self._matcher = llguidance.LLMatcher(tokenizer, grammar)
        if self._matcher.is_error():
            raise InvalidRequestError(
                f"The schema cannot be enforced: {self._matcher.get_error()}",
                param="response_format",
            )
        self._bitmask = allocate_token_bitmask(1, tokenizer.vocab_size)

    def allowed(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Boolean vector over the vocabulary: which tokens may be sampled next."""
        fill_next_token_bitmask(self._matcher, self._bitmask)
        bits = np.unpackbits(self._bitmask[0].view(np.uint8), bitorder="little")
        return bits.astype(bool)

    def apply(self, logits: np.ndarray[Any, np.dtype[np.float32]]) -> None:
        """Set the logits of disallowed tokens to -inf, in place."""
        allowed = self.allowed()[: logits.shape[-1]]
        logits[..., ~allowed] = -np.inf
        if logits.shape[-1] > allowed.shape[0]:
            logits[..., allowed.shape[0] :] = -np.inf

    def consume(self, token: int) -> None:
        if not self._matcher.consume_token(token):
            raise EngineError("The engine sampled a token outside the grammar.")

    @property
    def is_accepting(self) -> bool:
        """The output so far is complete under the grammar (EOS would be allowed)."""
        return bool(self._matcher.is_accepting())

    @property
    def is_stopped(self) -> bool:
        """No token but end-of-sequence can follow."""
        return bool(self._matcher.is_stopped())
