"""Storage runs the publish rule of the kind it is given and knows none itself (no real data needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import hub
from hub.errors import RegistryError
from hub.registry import Registry


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "toy"
    folder.mkdir()
    card = {"name": "toy", "version": "1.0.0", "terms": {"redistribution": True}}
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    (folder / "data.txt").write_text("hello")
    return folder


def test_publish_needs_the_rule_of_the_kind(tmp_path):
    with pytest.raises(TypeError, match="check"):
        Registry(tmp_path / "reg").publish(_folder(tmp_path), "datasets")  # type: ignore[call-arg]


def test_a_refusing_rule_publishes_nothing(tmp_path):
    seen = []

    def refuse(folder: Path) -> None:
        seen.append(folder)
        raise RegistryError("not this one", folder)

    reg = Registry(tmp_path / "reg")
    folder = _folder(tmp_path)
    with pytest.raises(RegistryError, match="not this one"):
        reg.publish(folder, "datasets", check=refuse)
    assert seen == [folder] and reg.list() == [] and not (tmp_path / "reg" / "datasets").exists()


def test_a_passing_rule_publishes(tmp_path):
    reg = Registry(tmp_path / "reg")
    ref, sha = reg.publish(_folder(tmp_path), "datasets", check=lambda folder: None)
    manifest, same = reg.manifest("datasets", ref)
    assert str(ref) == "toy@1.0.0" and same == sha and manifest["cellhub_version"] == hub.__version__


def test_storage_imports_no_kind():
    """Importing and using the storage layer loads neither curation nor models (their rules live there)."""
    code = (
        "import sys, hub.registry; print(sorted(m for m in sys.modules if m.startswith(('hub.curate', 'hub.models'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
