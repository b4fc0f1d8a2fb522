"""The peers of ``peers/``: the field's own tools, each in its own folder and environment.

Layout, per tool::

    peers/<name>/peer.yaml            what the tool is (package, citation, licence) and its runs: the benchmarks
                                      it enters and the options of each run
    peers/<name>/requirements.txt     the pinned environment (``make peers`` installs it into peers/<name>/.venv)
    peers/<name>/run.py               trains the tool with its own API on train (+ val), predicts the scored split
    peers/<name>/results/*.json       the committed result records (``source: reproduced``)
    peers/<a>-<b>/                    a pipeline: its script runs the scripts of peers a and b (``uses``)
    peers/common.py                   the hand-off reader and report writer every script shares
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from hub._readers import read_json
from hub.cards import load_card
from hub.cards.dataset import _Model
from hub.config import REPO_ROOT
from hub.errors import InvalidInput, NotFound

SPEC, REQUIREMENTS = "peer.yaml", "requirements.txt"


class PeerBenchmarkRun(_Model):
    """One run of a peer: trained once on a benchmark's train split, its predictions scored on the benchmark and
    on ``also`` (e.g. the instance labels binarised for the semantic benchmark of the same split)."""

    benchmark: str
    also: list[str] = Field(default_factory=list, description="Benchmarks scored with the same predictions")
    options: dict[str, Any] = Field(default_factory=dict, description="Passed to the script as --options JSON")
    detections: str | None = Field(
        None, description="A baseline of model_cards/ whose masks of the scored split the peer links (linkers)"
    )


class PeerSpec(_Model):
    """``peers/<name>/peer.yaml``."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="The folder's name")
    title: str
    package: str = Field(description="The PyPI package whose version the records carry")
    url: str = Field(pattern=r"^https://", description="The tool's home page")
    citation: str
    license: str
    summary: str
    script: str = Field("run.py", pattern=r"^[a-z0-9_]+\.py$", description="The script, in the peer's folder")
    uses: list[str] = Field(
        default_factory=list,
        description="Peers whose scripts this one runs (a pipeline): their hashes enter its records",
    )
    runs: list[PeerBenchmarkRun]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Peer:
    """One folder of ``peers/``."""

    spec: PeerSpec
    folder: Path

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def script(self) -> Path:
        return self.folder / self.spec.script

    @property
    def python(self) -> Path:
        return self.folder / ".venv" / "bin" / "python"

    @property
    def ready(self) -> bool:
        """Whether ``make peers`` has installed the tool's environment."""
        return self.python.is_file()

    @property
    def results_dir(self) -> Path:
        return self.folder / "results"

    def script_path(self) -> str:
        """The script as the records name it: its path in the repository, ``peers/NAME/SCRIPT``."""
        return f"peers/{self.folder.name}/{self.spec.script}"

    def script_sha256(self) -> str:
        return _sha256(self.script)

    def uses_sha256(self) -> dict[str, str]:
        """The scripts of the peers this one runs (``uses``), by repository path, with their SHA-256."""
        used = [get_peer(name, self.folder.parent) for name in self.spec.uses]
        return {p.script_path(): p.script_sha256() for p in used}

    def shared_sha256(self) -> str:
        """SHA-256 over the modules every script may import (``peers/*.py``: their names and bytes)."""
        digest = hashlib.sha256()
        for path in sorted(self.folder.parent.glob("*.py")):
            digest.update(f"{path.name}\n{_sha256(path)}\n".encode())
        return digest.hexdigest()

    def requirements_sha256(self) -> str:
        return _sha256(self.folder / REQUIREMENTS)

    def run_for(self, benchmark: str) -> PeerBenchmarkRun:
        """The run that scores ``benchmark`` (as its own benchmark or one of its ``also``)."""
        for run in self.spec.runs:
            if benchmark == run.benchmark or benchmark in run.also:
                return run
        raise NotFound(f"peer {self.name} has no run for benchmark {benchmark!r}", self.folder / SPEC)

    def benchmarks(self) -> list[str]:
        return [b for run in self.spec.runs for b in (run.benchmark, *run.also)]

    def record_path(self, benchmark: str) -> Path:
        return self.results_dir / f"{benchmark.replace('/', '.')}.json"

    def record(self, benchmark: str) -> dict | None:
        """The committed result record for ``benchmark``, if any."""
        path = self.record_path(benchmark)
        return read_json(path, "result record") if path.is_file() else None


def peers_dir() -> Path:
    return REPO_ROOT / "peers"


def peers(folder: Path | None = None) -> list[Peer]:
    """Every tool of ``peers/`` (or ``folder``), by name."""
    root = folder or peers_dir()
    found = [Peer(load_card(PeerSpec, p), p.parent) for p in sorted(root.glob(f"*/{SPEC}"))]
    for peer in found:
        if peer.name != peer.folder.name:
            raise InvalidInput(f"peer {peer.name!r} must live in a folder of that name", peer.folder / SPEC)
    return found


def get_peer(name: str, folder: Path | None = None) -> Peer:
    found = {p.name: p for p in peers(folder)}
    if name not in found:
        raise NotFound(f"no peer {name!r}; known: {', '.join(found) or 'none'}")
    return found[name]
