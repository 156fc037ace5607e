"""Pulling models from a Hugging Face-compatible hub, and removing them again.

This module owns the steps between a repo name and a registered :class:`ModelRecord`:
choosing what to fetch (one GGUF file for llama.cpp, or the config, tokenizer and
safetensors of a transformers or sentence-transformers model), fetching each file verified
through :class:`~ember.models.hub_client.HubClient`, and the single ``Store.add_model`` call,
made only once every file has checked out, so a half-downloaded model is never registered.

On disk a pull lives under ``$EMBER_HOME/models/hub/<owner>--<name>/<revision>/``, laid out
as in the repo. An interrupted pull leaves ``.part`` files that the next pull resumes.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from rich.progress import Progress

from ember.errors import (
    ConflictError,
    HubError,
    InvalidRequestError,
    ModelNotFoundError,
    NotFoundError,
)
from ember.models.hub_client import HubClient, HubFile, safe_path
from ember.models.registry import ModelRegistry
from ember.settings import Settings
from ember.store import ModelRecord, Store

_REPO_PART = re.compile(r"^[A-Za-z0-9_.-]+$")
_SPLIT_GGUF = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")
# What a transformers model needs besides its safetensors. Everything else in a repo (other
# formats, ONNX exports, pickled .bin weights that can run code when loaded) stays on the hub.
_TRANSFORMERS_FILES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "tokenizer.model",
        "spiece.model",
        "sentencepiece.bpe.model",
        "chat_template.jinja",
        "chat_template.json",
        "model.safetensors.index.json",
        "README.md",  # the model card: its front matter carries the licence
        "modules.json",
        "config_sentence_transformers.json",
        "sentence_bert_config.json",
    }
)
_SENTENCE_TRANSFORMERS_MARKERS = frozenset({"modules.json", "config_sentence_transformers.json"})
_SENTENCE_TRANSFORMERS_MODULE = re.compile(r"^\d+_[A-Za-z]+$")  # 1_Pooling, 2_Normalize, ...


@dataclass(frozen=True)
class PullPlan:
    """What a pull fetches, and how the result is served."""

    files: tuple[HubFile, ...]
    engine: str
    kind: str
    default_id: str
    entry: str | None = None  # the GGUF file llama.cpp opens; None for a directory model


def _check_names(repo: str, revision: str) -> None:
    """Refuse names that would not make one directory each under ``models/hub``."""
    parts = repo.split("/")
    if len(parts) != 2 or not all(_REPO_PART.match(p) and p not in (".", "..") for p in parts):
        raise InvalidRequestError(
            f"'{repo}' is not a hub repo name; write it as owner/name, e.g. "
            "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF.",
            param="repo",
        )
    if revision in ("", ".", ".."):
        raise InvalidRequestError(f"'{revision}' is not a revision.", param="revision")


def hub_dir(settings: Settings, repo: str, revision: str) -> Path:
    """Where the files of ``repo`` at ``revision`` are kept."""
    # '--' cannot occur in a hub repo name, and quoting keeps 'refs/pr/1' one directory.
    return settings.models_dir / "hub" / repo.replace("/", "--") / quote(revision, safe="")


def plan_pull(repo: str, available: list[HubFile], wanted: list[str] | None) -> PullPlan:
    """Choose the files to fetch: the GGUF named or the only one, else a transformers model."""
    by_path = {f.path: f for f in available}
    name = repo.split("/")[-1].lower()
    if wanted:
        wanted = list(dict.fromkeys(wanted))  # a file named twice is fetched once
        missing = [p for p in wanted if p not in by_path]
        if missing:
            raise NotFoundError(f"The repo '{repo}' has no file {', '.join(missing)}.")
        ggufs = sorted({_first_split(p) for p in wanted if p.endswith(".gguf")})
        if len(ggufs) > 1 or (ggufs and any(not p.endswith(".gguf") for p in wanted)):
            raise InvalidRequestError(
                "Name one GGUF file (with --file), or only the files of a transformers model.",
                param="files",
            )
        if ggufs:
            return _gguf_plan(repo, by_path, ggufs[0])
        return _transformers_plan(name, [by_path[p] for p in wanted])
    ggufs = sorted({_first_split(f.path) for f in available if f.path.endswith(".gguf")})
    if len(ggufs) == 1:
        return _gguf_plan(repo, by_path, ggufs[0])
    chosen = [f for f in available if _needed_by_transformers(f.path)]
    if any(f.path.endswith(".safetensors") for f in chosen) and "config.json" in by_path:
        return _transformers_plan(name, chosen)
    if ggufs:
        raise InvalidRequestError(
            f"The repo '{repo}' has {len(ggufs)} GGUF files; choose one with --file: "
            + ", ".join(ggufs),
            param="files",
        )
    raise InvalidRequestError(
        f"The repo '{repo}' has neither a GGUF file nor a config.json with safetensors "
        "weights, so Ember has nothing it can serve from it.",
        param="repo",
    )


def _first_split(path: str) -> str:
    match = _SPLIT_GGUF.match(path)
    return f"{match['stem']}-00001-of-{match['count']}.gguf" if match else path


def _gguf_plan(repo: str, by_path: dict[str, HubFile], first: str) -> PullPlan:
    paths, stem = [first], PurePosixPath(first).name.removesuffix(".gguf")
    if match := _SPLIT_GGUF.match(first):
        # llama.cpp opens part 1 and finds the other parts beside it.
        count, stem = int(match["count"]), PurePosixPath(match["stem"]).name
        paths = [f"{match['stem']}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1)]
        missing = [p for p in paths if p not in by_path]
        if missing:
            raise HubError(f"The repo '{repo}' lacks parts of a split GGUF: {', '.join(missing)}.")
    return PullPlan(
        files=tuple(by_path[p] for p in paths),
        engine="llamacpp",
        kind="chat",
        default_id=stem.lower(),
        entry=first,
    )


def _needed_by_transformers(path: str) -> bool:
    parts = path.split("/")
    if len(parts) == 1:
        # Mistral repos also ship consolidated.safetensors for mistral-inference: the same
        # weights again in another layout.
        return path in _TRANSFORMERS_FILES or (
            path.endswith(".safetensors") and not path.startswith("consolidated")
        )
    return (
        len(parts) == 2
        and _SENTENCE_TRANSFORMERS_MODULE.match(parts[0]) is not None
        and parts[1].endswith((".json", ".safetensors"))
    )


def _transformers_plan(name: str, files: list[HubFile]) -> PullPlan:
    embedding = any(f.path in _SENTENCE_TRANSFORMERS_MARKERS for f in files)
    return PullPlan(
        files=tuple(files),
        engine="sentence-transformers" if embedding else "transformers",
        kind="embedding" if embedding else "chat",
        default_id=name,
    )


@dataclass(frozen=True)
class PreparedPull:
    """A pull that is planned and whose id is free: what remains is to fetch its files."""

    repo: str
    revision: str
    model_id: str
    plan: PullPlan
    root: Path
    previous: ModelRecord | None  # the record of an earlier pull of the repo this replaces

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.plan.files)


def prepare_pull(
    repo: str,
    *,
    settings: Settings,
    store: Store,
    hub: HubClient,
    files: list[str] | None = None,
    revision: str = "main",
    model_id: str | None = None,
) -> PreparedPull:
    """Check the names, list the repo and choose its files, and check the id is free: every
    refusal (a bad name, an unknown repo, several GGUFs, a taken id) comes before a byte of
    weights is fetched."""
    _check_names(repo, revision)
    plan = plan_pull(repo, hub.list_files(repo, revision), files)
    model_id = model_id or plan.default_id
    previous = _check_id_free(model_id, repo, settings, store)
    return PreparedPull(repo, revision, model_id, plan, hub_dir(settings, repo, revision), previous)


def finish_pull(
    prepared: PreparedPull,
    *,
    settings: Settings,
    store: Store,
    hub: HubClient,
    on_progress: Callable[[str, int], None] | None = None,
) -> ModelRecord:
    """Fetch and verify every file, then register the model. ``on_progress(file, done)``
    gets the bytes done so far over the whole pull, and the file being fetched."""
    done = 0
    for file in prepared.plan.files:

        def report(current: int, base: int = done, name: str = file.path) -> None:
            if on_progress is not None:
                on_progress(name, base + current)

        hub.download(prepared.repo, prepared.revision, file, prepared.root / file.path, report)
        done += file.size
    plan, root = prepared.plan, prepared.root
    record = ModelRecord(
        id=prepared.model_id,
        engine=plan.engine,
        kind=plan.kind,
        path=str(root / plan.entry if plan.entry else root),
        source=prepared.repo,
        revision=prepared.revision,
        files=[
            {"path": f.path, "size": f.size, f.algorithm.replace(" ", "_"): f.expected_digest}
            for f in plan.files
        ],
        size_bytes=prepared.total_bytes,
    )
    store.add_model(record)
    if prepared.previous is not None:
        _delete_unreferenced(prepared.previous, settings, store)
    return record


def pull_model(
    repo: str,
    *,
    settings: Settings,
    store: Store,
    files: list[str] | None = None,
    revision: str = "main",
    model_id: str | None = None,
    progress: Progress | None = None,
    client: HubClient | None = None,
) -> ModelRecord:
    """Download a model from the hub, verify every file, then register it in the store."""
    token = settings.hub_token.get_secret_value() if settings.hub_token else None
    hub = client or HubClient(settings.hub_url, token)
    try:
        prepared = prepare_pull(
            repo,
            settings=settings,
            store=store,
            hub=hub,
            files=files,
            revision=revision,
            model_id=model_id,
        )
        report: Callable[[str, int], None] | None = None
        if progress is not None:
            task = progress.add_task(repo, total=prepared.total_bytes)

            def report(name: str, done: int) -> None:
                progress.update(task, completed=done, description=name)

        return finish_pull(prepared, settings=settings, store=store, hub=hub, on_progress=report)
    finally:
        if client is None:
            hub.close()


def _check_id_free(
    model_id: str, repo: str, settings: Settings, store: Store
) -> ModelRecord | None:
    """Refuse an id another model owns; return the record a re-pull of ``repo`` replaces."""
    if not model_id.strip() or any(c.isspace() for c in model_id):
        raise InvalidRequestError(f"'{model_id}' cannot be a model id.", param="model_id")
    previous = store.get_model(model_id)
    spec = ModelRegistry(settings, store).specs().get(model_id)
    if spec is not None and spec.source != "hub":
        raise ConflictError(
            f"The id '{model_id}' already names a model ({spec.source}); choose another with --id.",
            param="model_id",
        )
    if previous is not None and previous.source != repo:
        raise ConflictError(
            f"The id '{model_id}' already names a model pulled from '{previous.source}'; "
            f"remove it with `ember models rm {model_id}` or choose another id with --id.",
            param="model_id",
        )
    return previous


def remove_model(model_id: str, settings: Settings, store: Store) -> ModelRecord:
    """Delete a pulled model's row, then its files that no other pulled model uses."""
    record = store.get_model(model_id)
    if record is None:
        spec = ModelRegistry(settings, store).specs().get(model_id)
        if spec is not None and spec.source == "embedded":
            raise InvalidRequestError(
                f"'{model_id}' is an embedded model: it ships inside an installed package "
                "and cannot be removed. Only models added with `ember models pull` can.",
                param="model",
            )
        if spec is not None:
            raise InvalidRequestError(
                f"'{model_id}' is declared in ember.toml under [models.{model_id}]; remove "
                "it there.",
                param="model",
            )
        raise ModelNotFoundError(model_id)
    # The row goes first: files without a row are litter, a row without files is a lie.
    store.remove_model(model_id)
    _delete_unreferenced(record, settings, store)
    return record


def _delete_unreferenced(record: ModelRecord, settings: Settings, store: Store) -> None:
    def paths(r: ModelRecord) -> set[Path]:
        root = hub_dir(settings, r.source, r.revision)
        return {root / safe_path(str(f["path"])) for f in r.files}

    in_use: set[Path] = set()
    for other in store.list_models():
        in_use |= paths(other)
    hub_root = (settings.models_dir / "hub").resolve()
    for path in paths(record) - in_use:
        for leftover in (path, path.with_name(path.name + ".part")):
            leftover.unlink(missing_ok=True)
        # Prune directories the files leave empty, up to (not including) models/hub.
        parent = path.parent
        while parent.resolve() != hub_root and hub_root in parent.resolve().parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent


@dataclass(frozen=True)
class LocalDetails:
    """What a model's own files say about it, for ``ember models show``."""

    context_length: int | None = None
    licence: str | None = None


def local_details(path: Path) -> LocalDetails:
    """Context window and licence, read from a GGUF header or a model directory's files."""
    try:
        if path.is_file() and path.suffix == ".gguf":
            meta = _gguf_metadata(path)
            arch = meta.get("general.architecture")
            context = meta.get(f"{arch}.context_length")
            licence = meta.get("general.license")
            return LocalDetails(
                int(context) if isinstance(context, int) else None,
                str(licence) if licence else None,
            )
        if path.is_dir():
            return LocalDetails(_directory_context(path), _card_licence(path / "README.md"))
    except (OSError, ValueError, struct.error):
        pass  # details are a courtesy: a file Ember cannot read leaves them unknown
    return LocalDetails()


def _directory_context(path: Path) -> int | None:
    # sentence-transformers truncates at max_seq_length, often below the position table.
    for name, key in (
        ("sentence_bert_config.json", "max_seq_length"),
        ("config.json", "max_position_embeddings"),
    ):
        if (path / name).is_file():
            value = json.loads((path / name).read_text()).get(key)
            if isinstance(value, int):
                return value
    return None


def _card_licence(readme: Path) -> str | None:
    if not readme.is_file():
        return None
    text = readme.read_text(errors="replace")
    front = text.split("---", 2)[1] if text.startswith("---") else ""
    match = re.search(r"^license:\s*(\S+)", front, re.MULTILINE)
    return match[1] if match else None


_GGUF_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
    10: "<Q", 11: "<q", 12: "<d",
}  # fmt: skip
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def _gguf_metadata(path: Path) -> dict[str, Any]:
    """The scalar key/values of a GGUF (v2+) header; arrays such as the vocabulary skipped."""
    meta: dict[str, Any] = {}
    with path.open("rb") as f:

        def unpack(fmt: str) -> Any:
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def string() -> str:
            length = unpack("<Q")
            if length > 1 << 20:
                raise ValueError("implausible GGUF string")
            return str(f.read(length).decode("utf-8", "replace"))

        def value(kind: int) -> Any:
            if kind == _GGUF_STRING:
                return string()
            if kind == _GGUF_ARRAY:
                item, count = unpack("<I"), unpack("<Q")
                if item in _GGUF_SCALARS:
                    f.seek(count * struct.calcsize(_GGUF_SCALARS[item]), os.SEEK_CUR)
                else:
                    for _ in range(count):
                        value(item)
                return None
            return unpack(_GGUF_SCALARS[kind])

        if f.read(4) != b"GGUF" or unpack("<I") < 2:
            return meta
        unpack("<Q")  # tensor count
        for _ in range(unpack("<Q")):
            key = string()
            meta[key] = value(unpack("<I"))
    return meta
