"""English dictionary words: the WordNet lemma index that ships in ``en_core_web_sm``.

The pipeline's rule lemmatizer carries WordNet's index of nouns, verbs, adjectives and adverbs
(about 90,000 base forms) in ``lemmatizer/lookups``. The name recognizer uses it to drop NER
guesses made only of ordinary words ("Cautionary Tales", "Salesperson"), unless a word is also
a listed given name or surname.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def dictionary_words(model: str) -> frozenset[str]:
    """Every lowercase base form in the model package's lemma index (empty if it has none)."""
    from spacy.lookups import Lookups

    package = Path(importlib.import_module(model).__file__ or "").parent
    found: set[str] = set()
    for folder in package.glob("*/lemmatizer/lookups"):
        lookups = Lookups().from_disk(folder)
        if lookups.has_table("lemma_index"):
            for words in lookups.get_table("lemma_index").values():
                found.update(word for word in words if "_" not in word)
    return frozenset(found)


def is_dictionary_word(word: str, words: frozenset[str]) -> bool:
    """``word`` or its singular ("tales" -> "tale", "stories" -> "story") is listed."""
    lower = word.lower()
    if lower in words:
        return True
    if lower.endswith("ies") and lower[:-3] + "y" in words:
        return True
    if lower.endswith("es") and lower[:-2] in words:
        return True
    return lower.endswith("s") and lower[:-1] in words
