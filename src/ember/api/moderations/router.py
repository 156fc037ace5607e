"""``POST /v1/moderations``: category scores for each input, in the OpenAI shape.

``input`` is a string, an array of strings, or OpenAI's multimodal array of
``{"type": "text", "text": ...}`` parts (image parts are refused with 400: Ember's
moderation reads text only). ``model`` is optional; OpenAI's names
(``omni-moderation-latest``, ``text-moderation-latest`` and dated variants) are accepted
and answered by Ember's local model, ``ember-moderation-1``, whose name the response echoes
unless an OpenAI name was asked for.

Ember extension: each result carries ``"ember": {"injection": {...}}``, the prompt-
injection verdict for that input (``flagged``, ``score``, ``threshold``, ``source``,
``detector_scores``, ``reasons``). OpenAI clients ignore the extra field.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends
from openai.types import ModerationCreateResponse
from pydantic import ConfigDict

from ember.api.deps import get_services
from ember.api.wire import WireModel
from ember.errors import InvalidRequestError, ModelNotFoundError, UnsupportedParameterError
from ember.guard.moderation import CATEGORIES
from ember.services.container import Services

router = APIRouter()

MODEL_NAME = "ember-moderation-1"
OPENAI_NAMES = ("omni-moderation", "text-moderation")
MAX_INPUTS = 256


class TextPart(WireModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class OtherPart(WireModel):
    model_config = ConfigDict(extra="allow")
    type: str


class ModerationRequest(WireModel):
    model_config = ConfigDict(extra="ignore")

    input: str | list[str] | list[TextPart | OtherPart]
    model: str | None = None

    def texts(self) -> list[str]:
        if isinstance(self.input, str):
            return [self.input]
        texts: list[str] = []
        for item in self.input:
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, TextPart):
                texts.append(item.text)
            else:
                raise UnsupportedParameterError(
                    f"Input parts of type '{item.type}' are not supported; Ember moderates "
                    "text only.",
                    param="input",
                )
        if not texts:
            raise InvalidRequestError("input must not be empty.", param="input")
        if len(texts) > MAX_INPUTS:
            raise InvalidRequestError(f"At most {MAX_INPUTS} inputs per request.", param="input")
        return texts

    def model_name(self) -> str:
        if self.model is None or self.model == MODEL_NAME:
            return MODEL_NAME
        if self.model.startswith(OPENAI_NAMES):
            return self.model
        raise ModelNotFoundError(
            f"The moderation model '{self.model}' does not exist; use '{MODEL_NAME}'.",
            param="model",
        )


def _result(text: str, guard: Services) -> dict[str, Any]:
    scored = guard.moderation.classify(text)
    return {
        "flagged": scored.flagged,
        "categories": scored.categories,
        "category_scores": scored.category_scores,
        "category_applied_input_types": {name: ["text"] for name in CATEGORIES},
        "ember": {"injection": guard.injection.scan(text, source="user").to_dict()},
    }


@router.post("/v1/moderations")
def create_moderation(
    body: ModerationRequest, guard: Services = Depends(get_services)
) -> dict[str, Any]:
    # A plain def: the scoring is CPU work, so FastAPI runs it in its thread pool.
    response = {
        "id": f"modr-{uuid.uuid4().hex}",
        "model": body.model_name(),
        "results": [_result(text, guard) for text in body.texts()],
    }
    ModerationCreateResponse.model_validate(response)
    return response
