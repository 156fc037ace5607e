"""The guard's spaCy loads without torch, and leaves torch and transformers usable after."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from ember.guard.analyzer import Analyzer

spans = Analyzer().analyze("Ada Lovelace wrote to John Smith.")
assert [s.text for s in spans if s.type == "PERSON"] == ["Ada Lovelace", "John Smith"], spans
assert "torch" not in sys.modules, "spaCy pulled torch in"
from thinc.compat import has_torch
assert not has_torch
import transformers
import torch
assert transformers.utils.is_torch_available() and torch.ones(2).sum().item() == 2
print("ok")
"""


def test_the_guard_loads_spacy_without_torch_and_torch_works_after() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
