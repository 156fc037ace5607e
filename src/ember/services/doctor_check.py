"""What one ``ember doctor`` check reports, and where the install keeps what checks read.

A :class:`Check` is a name, ok or not, what was found, and the command that fixes a problem
(an ok check that carries a fix is a warning).
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Check:
    """One finding: ``fix`` is the command that repairs it (on an ok check: a warning)."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        found = asdict(self)
        return {"check": found.pop("name"), **found}


def build_record_path() -> Path:
    return Path(sys.prefix) / "llama-cpp-build.json"


def installed_lock_path() -> Path:
    return Path(sys.prefix) / "ember-installed.lock"


def repository_root() -> Path | None:
    """The checkout whose ``.venv`` this is (``scripts/install.sh``'s editable install), or
    None."""
    root = Path(__file__).resolve().parents[3]
    ours = Path(sys.prefix).resolve() == (root / ".venv").resolve()
    return root if ours and (root / "scripts" / "install.sh").is_file() else None


def reinstall_command() -> str:
    """The command that reinstalls everything as locked (and rebuilds llama.cpp if needed)."""
    repo = repository_root()
    lock = installed_lock_path()
    if repo is None:
        return f"{sys.executable} -m pip install --no-deps --require-hashes -r {lock}"
    # install.sh does nothing while its stamp is there: remove it first.
    dev = " --dev" if lock.is_file() and "\npytest==" in lock.read_text() else ""
    stamps = shlex.quote(str(Path(sys.prefix))) + "/.ember-install-*"
    return f"rm -f {stamps} && bash {shlex.quote(str(repo / 'scripts' / 'install.sh'))}{dev}"
