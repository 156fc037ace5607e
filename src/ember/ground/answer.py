"""What a grounded answer is: the check policy it is held to, the draft it starts from, the
checked answer with its citations, and the ``ember`` object a grounded response carries.
``ember.services.grounding`` makes them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ember.core.request_context import ANONYMOUS, Caller
from ember.ground.coverage import Coverage
from ember.ground.retrieval import Hit
from ember.ground.support import SentenceSupport

Mode = Literal["generative", "extractive"]
ABSTAIN = {
    "zh": "根据现有资料无法回答。",
    "en": "I can't answer that from the provided documents.",
}
_CJK = re.compile(r"[\u4e00-\u9fff]")


def language_of(text: str) -> Literal["zh", "en"]:
    return "zh" if _CJK.search(text) else "en"


@dataclass
class Citation:
    number: int
    file_id: str
    filename: str
    page: int | None
    quote: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.number,
            "file_id": self.file_id,
            "filename": self.filename,
            "page": self.page,
            "quote": self.quote,
        }


@dataclass
class GroundedAnswer:
    text: str
    abstained: bool
    groundedness: float
    citations: list[Citation]
    sources: list[Hit]
    sentences: list[SentenceSupport] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    screened: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    mode: Mode = "generative"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    # Where each citation sits in ``text`` (character offset after its sentence).
    citation_offsets: list[tuple[int, Citation]] = field(default_factory=list)
    # The judge's verdict and P(yes) when ``ground_self_check`` is on (None when it did not run).
    self_check: Literal["yes", "no"] | None = None
    self_check_score: float | None = None
    # The generation's request id (its audit record); empty when nothing was generated.
    request_id: str = ""
    caller: Caller = ANONYMOUS  # who asked: the generation and the judge run on their behalf
    # How the best answer sentence's evidence covers the question (None when not checked).
    coverage: Coverage | None = None
    # The numbers a question asserted that the sources contradict, when the answer is the
    # sources' correction (``ember.ground.premise``); None otherwise.
    premise: list[str] | None = None

    def ember(self) -> dict[str, Any]:
        """The ``ember`` object of a grounded response."""
        return {
            "abstained": self.abstained,
            "abstain_reason": self.reason,
            "groundedness": round(self.groundedness, 4),
            "mode": self.mode,
            "citations": [c.to_dict() for c in self.citations],
            "sentences": [
                {
                    "text": s.sentence,
                    "supported": s.supported,
                    "source": s.best_source,
                    "lexical": round(s.lexical, 3),
                    "embedding": round(s.embedding, 3),
                    "cross_lingual": s.cross_lingual,
                    "unmatched": list(s.unmatched),
                }
                for s in self.sentences
            ],
            "removed_sentences": self.removed,
            "self_check": self.self_check,
            "self_check_score": None
            if self.self_check_score is None
            else round(self.self_check_score, 4),
            "question_coverage": None
            if self.coverage is None
            else {
                "coverage": round(self.coverage.coverage, 4),
                "missing_numbers": list(self.coverage.missing_numbers),
                "other_years": list(self.coverage.other_years),
                "missing_terms": list(self.coverage.missing_terms),
                "missing_names": list(self.coverage.missing_names),
                "other_relation": list(self.coverage.other_relation),
                "similarity": round(self.coverage.similarity, 4),
                "method": self.coverage.method,
                "absent_terms": list(self.coverage.absent),
                "evidence": self.coverage.evidence,
            },
            "premise_contradicted": self.premise,
            "screened_sources": self.screened,
            "retrieval": [
                {"source": i, "file_id": h.file_id, "score": round(h.score, 4)}
                for i, h in enumerate(self.sources, start=1)
            ],
        }


@dataclass(frozen=True)
class CheckPolicy:
    """How strictly a draft is held to its sources: one operating point between answering
    and abstaining (the ``ground_*`` settings; ``bench/rag.py`` measures several)."""

    min_groundedness: float = 0.5
    min_question_coverage: float = 0.8
    coverage_window: int = 1
    self_check: bool = False
    self_check_threshold: float = 0.5
    # The model that judges (None: the model that answered).
    judge_model: str | None = None


@dataclass
class Draft:
    """Everything before the checks: the screened sources and the model's raw answer (empty
    when it abstained before generating, with ``reason`` set)."""

    question: str
    store_ids: list[str]
    language: Literal["zh", "en"]
    mode: Mode
    sources: list[Hit]
    screened: list[dict[str, Any]]
    model: str
    text: str = ""
    reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    request_id: str = ""
    caller: Caller = ANONYMOUS  # who asked: the generation and the judge run on their behalf
