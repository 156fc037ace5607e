"""``ember models pull``/``rm`` against a real HTTP hub on 127.0.0.1 that misbehaves on purpose.

The hub (``tests/fake_hub.py``) serves the embedded models' real files: the SmolLM2 GGUF
(98 MB) and the all-MiniLM-L6-v2 sentence-transformers directory.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_hub import (
    MINILM_REPO,
    SMOL_FILE,
    SMOL_REPO,
    TINY_BYTES,
    TINY_FILE,
    TINY_REPO,
    TWO_QUANTS_REPO,
    FakeHub,
    minilm_dir,
    smollm2_gguf,
    standard_hub,
)
from pydantic import SecretStr
from rich.console import Console
from rich.progress import Progress
from typer.testing import CliRunner

from ember.cli.models import app
from ember.errors import (
    ConflictError,
    DownloadVerificationError,
    HubError,
    InvalidRequestError,
    ModelNotFoundError,
    NotFoundError,
)
from ember.models.hub import hub_dir, local_details, plan_pull, pull_model, remove_model
from ember.models.hub_client import HubClient, HubFile
from ember.models.registry import ModelRegistry
from ember.settings import Settings
from ember.store import Store

SMOL_ID = "smollm2-135m-instruct.q4_1"
TINY_ID = "tiny.q8_0"


@pytest.fixture(scope="module")
def hub_server() -> Iterator[FakeHub]:
    hub = standard_hub().start()
    yield hub
    hub.stop()


@pytest.fixture
def hub(hub_server: FakeHub) -> FakeHub:
    hub_server.reset()
    return hub_server


@pytest.fixture
def settings(tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [n for n in os.environ if n.startswith("EMBER_")]:
        monkeypatch.delenv(name)
    return Settings(home=tmp_path / "home", hub_url=hub.url)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = Store(settings.database_path)
    yield store
    store.close()


@pytest.fixture
def hub_client(settings: Settings) -> Iterator[HubClient]:
    """A client that gives up after two fruitless retries and does not sleep between them."""
    with HubClient(settings.hub_url, retries=2, backoff_s=0) as client:
        yield client


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_pull_gguf_registers_the_verified_file(
    hub: FakeHub, settings: Settings, store: Store
) -> None:
    progress = Progress(console=Console(file=io.StringIO()))
    record = pull_model(SMOL_REPO, settings=settings, store=store, progress=progress)

    path = hub_dir(settings, SMOL_REPO, "main") / SMOL_FILE
    assert (record.id, record.engine, record.kind, record.source) == (
        SMOL_ID,
        "llamacpp",
        "chat",
        SMOL_REPO,
    )
    assert record.path == str(path)
    assert sha256_of(path) == sha256_of(smollm2_gguf())
    assert record.size_bytes == path.stat().st_size == smollm2_gguf().stat().st_size
    assert record.files == [
        {"path": SMOL_FILE, "size": record.size_bytes, "sha256": sha256_of(path)}
    ]
    # Only the GGUF came down (not the card, not .gitattributes), through the CDN redirect.
    assert files_under(settings.models_dir / "hub") == [
        f"{SMOL_REPO.replace('/', '--')}/main/{SMOL_FILE}"
    ]
    assert any(r.path.startswith("/cdn/") for r in hub.requests)
    assert store.get_model(SMOL_ID) == record
    spec = ModelRegistry(settings, store).resolve(SMOL_ID)
    assert (spec.source, spec.engine, spec.path) == ("hub", "llamacpp", path)
    task = progress.tasks[0]
    assert task.completed == task.total == record.size_bytes
    assert local_details(path).context_length == 8192


def test_resume_after_a_dropped_connection(
    hub: FakeHub, settings: Settings, store: Store, hub_client: HubClient
) -> None:
    hub.drop_after, hub.drop_times = 10_000_000, 1

    record = pull_model(SMOL_REPO, settings=settings, store=store, client=hub_client)

    assert hub.ranges_served(SMOL_FILE) == [None, "bytes=10000000-"]
    assert sha256_of(Path(record.path)) == sha256_of(smollm2_gguf())


def test_server_that_ignores_range_is_read_again_from_the_start(
    hub: FakeHub, settings: Settings, store: Store, hub_client: HubClient
) -> None:
    hub.drop_after, hub.ignore_range = 1_000_000, True

    record = pull_model(TINY_REPO, settings=settings, store=store, client=hub_client)

    assert hub.ranges_served(TINY_FILE) == [None, "bytes=1000000-"]
    assert Path(record.path).read_bytes() == TINY_BYTES


def test_drops_that_make_progress_are_not_failures(
    hub: FakeHub, settings: Settings, store: Store, hub_client: HubClient
) -> None:
    hub.drop_after, hub.drop_times = 1_000_000, None  # every answer breaks after 1 MB

    record = pull_model(TINY_REPO, settings=settings, store=store, client=hub_client)

    assert hub.ranges_served(TINY_FILE) == [None, *(f"bytes={n}000000-" for n in (1, 2, 3))]
    assert Path(record.path).read_bytes() == TINY_BYTES


def test_a_pull_that_keeps_failing_leaves_no_model_and_resumes_later(
    hub: FakeHub, settings: Settings, store: Store, hub_client: HubClient
) -> None:
    hub.drop_after, hub.drop_times = 0, None  # now every answer breaks before its first byte
    # A part file from an earlier, interrupted pull.
    part = hub_dir(settings, TINY_REPO, "main") / f"{TINY_FILE}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(TINY_BYTES[:1_500_000])

    with pytest.raises(HubError, match="kept failing") as caught:
        pull_model(TINY_REPO, settings=settings, store=store, client=hub_client)

    assert "resume from byte 1500000" in caught.value.message
    assert store.list_models() == []
    assert part.stat().st_size == 1_500_000
    hub.reset()
    record = pull_model(TINY_REPO, settings=settings, store=store, client=hub_client)
    assert hub.ranges_served(TINY_FILE) == ["bytes=1500000-"]
    assert Path(record.path).read_bytes() == TINY_BYTES
    assert not part.exists()


@pytest.mark.parametrize(
    ("repo", "files", "bad_path", "switch", "algorithm"),
    [
        (TINY_REPO, None, TINY_FILE, "corrupt", "sha256"),
        (TINY_REPO, None, TINY_FILE, "wrong_sha256", "sha256"),
        # A small (non-LFS) file is checked against its git blob sha1.
        (MINILM_REPO, ["config.json", "vocab.txt"], "vocab.txt", "corrupt", "git blob sha1"),
    ],
)
def test_a_file_that_fails_verification_is_deleted_and_nothing_registered(
    hub: FakeHub,
    settings: Settings,
    store: Store,
    repo: str,
    files: list[str] | None,
    bad_path: str,
    switch: str,
    algorithm: str,
) -> None:
    getattr(hub, switch).add(bad_path)
    expected = hub.file(repo, bad_path)

    with pytest.raises(DownloadVerificationError) as caught:
        pull_model(repo, settings=settings, store=store, files=files, model_id="checked")

    message = caught.value.message
    assert f"'{bad_path}'" in message and algorithm in message
    if switch == "corrupt":  # the hub announced the right hash; Ember computed another
        good = expected.sha256 if algorithm == "sha256" else expected.blob_sha1
        assert good in message
    else:  # the hub announced a wrong hash; Ember computed the right one
        assert "0" * 64 in message and expected.sha256 in message
    assert store.list_models() == []
    root = hub_dir(settings, repo, "main")
    assert not (root / bad_path).exists()
    assert not (root / f"{bad_path}.part").exists()


@pytest.mark.parametrize(
    ("repo", "revision", "files", "error", "message"),
    [
        ("nobody/nothing", "main", None, NotFoundError, "The repo 'nobody/nothing' does not exist"),
        (TINY_REPO, "v9", None, NotFoundError, f"The repo '{TINY_REPO}' has no revision 'v9'"),
        (TINY_REPO, "main", ["absent.gguf"], NotFoundError, "has no file absent.gguf"),
        (TWO_QUANTS_REPO, "main", None, InvalidRequestError, "choose one with --file"),
        ("not-a-repo", "main", None, InvalidRequestError, "owner/name"),
        ("evil/escape", "main", None, HubError, "unsafe path"),
    ],
)
def test_pull_errors(
    hub: FakeHub,
    settings: Settings,
    store: Store,
    repo: str,
    revision: str,
    files: list[str] | None,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        pull_model(repo, settings=settings, store=store, revision=revision, files=files)
    assert store.list_models() == []
    assert not (settings.models_dir / "hub").exists()


def test_a_private_hub_needs_the_token(hub: FakeHub, settings: Settings, store: Store) -> None:
    hub.token = "s3cret"
    with pytest.raises(HubError, match="set EMBER_HUB_TOKEN") as caught:
        pull_model(TINY_REPO, settings=settings, store=store)
    assert caught.value.status_code == 502

    with_token = Settings(
        home=settings.home, hub_url=settings.hub_url, hub_token=SecretStr("s3cret")
    )
    record = pull_model(TINY_REPO, settings=with_token, store=store)
    assert Path(record.path).read_bytes() == TINY_BYTES
    assert {r.authorization for r in hub.requests[1:]} == {"Bearer s3cret"}


def test_a_revision_with_a_slash(hub: FakeHub, settings: Settings, store: Store) -> None:
    record = pull_model(TINY_REPO, settings=settings, store=store, revision="refs/pr/1")

    assert Path(record.path) == hub_dir(settings, TINY_REPO, "refs/pr/1") / TINY_FILE
    assert Path(record.path).parent.name == "refs%2Fpr%2F1"
    assert Path(record.path).read_bytes() == TINY_BYTES[::-1]


def test_pull_sentence_transformers_directory(
    hub: FakeHub, settings: Settings, store: Store
) -> None:
    hub.page_size = 4  # the tree API answers in pages
    with pytest.raises(ConflictError, match="choose another with --id"):
        pull_model(MINILM_REPO, settings=settings, store=store)  # the embedded model's id

    record = pull_model(MINILM_REPO, settings=settings, store=store, model_id="minilm-hub")

    root = hub_dir(settings, MINILM_REPO, "main")
    assert (record.engine, record.kind, record.path) == (
        "sentence-transformers",
        "embedding",
        str(root),
    )
    assert files_under(root) == [
        "1_Pooling/config.json",
        "README.md",
        "config.json",
        "config_sentence_transformers.json",
        "model.safetensors",
        "modules.json",
        "sentence_bert_config.json",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
    ]
    for name in files_under(root):
        assert (root / name).read_bytes() == (minilm_dir() / name).read_bytes(), name
    assert record.size_bytes == sum((root / n).stat().st_size for n in files_under(root))
    spec = ModelRegistry(settings, store).resolve("minilm-hub")
    assert (spec.kind, spec.engine, spec.path) == ("embedding", "sentence-transformers", root)
    details = local_details(root)
    assert (details.context_length, details.licence) == (256, "apache-2.0")


def test_a_second_pull_reuses_verified_files(
    hub: FakeHub, settings: Settings, store: Store
) -> None:
    pull_model(TINY_REPO, settings=settings, store=store)
    hub.reset()

    pull_model(TINY_REPO, settings=settings, store=store)

    assert hub.served == []
    assert [r.id for r in store.list_models()] == [TINY_ID]


def test_remove_deletes_files_no_other_model_uses(
    hub: FakeHub, settings: Settings, store: Store
) -> None:
    pull_model(TINY_REPO, settings=settings, store=store)
    pull_model(TINY_REPO, settings=settings, store=store, model_id="tiny-again")
    path = hub_dir(settings, TINY_REPO, "main") / TINY_FILE

    remove_model(TINY_ID, settings, store)
    assert path.exists()  # 'tiny-again' still uses it
    remove_model("tiny-again", settings, store)

    assert store.list_models() == []
    assert not path.exists()
    assert list((settings.models_dir / "hub").iterdir()) == []
    with pytest.raises(InvalidRequestError, match="embedded model"):
        remove_model("smollm2-135m-instruct", settings, store)
    with pytest.raises(ModelNotFoundError):
        remove_model("tiny-again", settings, store)


def file(path: str) -> HubFile:
    return HubFile(path=path, size=1, blob_sha1="0" * 40)


@pytest.mark.parametrize(
    ("paths", "wanted", "chosen", "engine", "model_id"),
    [
        (["a.Q4.gguf", "README.md"], None, ["a.Q4.gguf"], "llamacpp", "a.q4"),
        (["a.Q4.gguf", "b.Q8.gguf"], ["b.Q8.gguf"], ["b.Q8.gguf"], "llamacpp", "b.q8"),
        (
            ["q/M-00002-of-00002.gguf", "q/M-00001-of-00002.gguf"],
            None,
            ["q/M-00001-of-00002.gguf", "q/M-00002-of-00002.gguf"],
            "llamacpp",
            "m",
        ),
        (
            ["config.json", "model.safetensors", "consolidated.safetensors", "model.bin"],
            None,
            ["config.json", "model.safetensors"],
            "transformers",
            "repo",
        ),
        (
            ["config.json", "modules.json", "2_Dense/model.safetensors", "x.safetensors"],
            None,
            ["config.json", "modules.json", "2_Dense/model.safetensors", "x.safetensors"],
            "sentence-transformers",
            "repo",
        ),
        (
            ["config.json", "x.safetensors", "onnx/x.safetensors"],
            None,
            ["config.json", "x.safetensors"],
            "transformers",
            "repo",
        ),
    ],
)
def test_plan_pull(
    paths: list[str], wanted: list[str] | None, chosen: list[str], engine: str, model_id: str
) -> None:
    plan = plan_pull("owner/Repo", [file(p) for p in paths], wanted)
    assert sorted(f.path for f in plan.files) == sorted(chosen)
    assert (plan.engine, plan.default_id) == (engine, model_id)


@pytest.mark.parametrize(
    ("paths", "wanted", "message"),
    [
        (["a.gguf", "b.gguf"], None, "has 2 GGUF files"),
        (["a.gguf", "b.gguf"], ["a.gguf", "b.gguf"], "Name one GGUF file"),
        (["config.json", "model.bin"], None, "nothing it can serve"),
        (["M-00001-of-00002.gguf"], None, "lacks parts of a split GGUF"),
    ],
)
def test_plan_pull_refuses(paths: list[str], wanted: list[str] | None, message: str) -> None:
    with pytest.raises((InvalidRequestError, HubError), match=message):
        plan_pull("owner/repo", [file(p) for p in paths], wanted)


def test_cli_pull_list_show_rm(hub: FakeHub, settings: Settings) -> None:
    runner = CliRunner()
    env = {"EMBER_HOME": str(settings.home), "EMBER_HUB_URL": hub.url, "COLUMNS": "200"}

    pulled = runner.invoke(app, ["pull", SMOL_REPO, "--file", SMOL_FILE, "--id", "smol"], env=env)
    assert pulled.exit_code == 0, pulled.output
    assert "Pulled" in pulled.stdout and "smol" in pulled.stdout

    listed = runner.invoke(app, ["list"], env=env)
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if " smol " in line)
    assert "llamacpp" in row and "hub" in row and "98.4 MB" in row

    shown = runner.invoke(app, ["show", "smol"], env=env)
    assert shown.exit_code == 0, shown.output
    for expected in (SMOL_REPO, SMOL_FILE, "8,192 tokens", "apache-2.0", "llamacpp"):
        assert expected in shown.stdout

    kept = runner.invoke(app, ["rm", "smol"], env=env, input="n\n")
    assert kept.exit_code == 1
    assert "smol" in runner.invoke(app, ["list"], env=env).stdout

    removed = runner.invoke(app, ["rm", "smol", "--yes"], env=env)
    assert removed.exit_code == 0, removed.output
    assert " smol " not in runner.invoke(app, ["list"], env=env).stdout
    assert not (hub_dir(settings, SMOL_REPO, "main") / SMOL_FILE).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rm", "smollm2-135m-instruct", "--yes"], "is an embedded model"),
        (["show", "nope"], "The model 'nope' does not exist"),
        (["pull", "nobody/nothing"], "does not exist"),
    ],
)
def test_cli_errors_are_one_red_line(
    hub: FakeHub, settings: Settings, args: list[str], message: str
) -> None:
    env = {"EMBER_HOME": str(settings.home), "EMBER_HUB_URL": hub.url}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
