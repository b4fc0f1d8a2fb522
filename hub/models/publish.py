"""The publish rule of a model: what a model folder must hold before a registry takes it."""

from __future__ import annotations

from pathlib import Path

from hub.cards import ModelCard, load_card
from hub.errors import RegistryError
from hub.models._family import create_family
from hub.registry import Ref, Registry
from hub.registry.manifest import file_sha256
from hub.safety import check_safetensors, inside

#: Suffixes of pickle-based weight files, which load arbitrary code: never published.
PICKLED = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")


def check_model(folder: Path) -> None:
    """A model folder publishes only with a valid card whose family options validate, weights inside the folder
    that match its SHA-256 and parse as safetensors, and no pickle-based weight files beside them."""
    card_path = folder / "card.yaml"
    card = load_card(ModelCard, card_path)
    weights = inside(folder, card.weights.file, "weights file", card_path)
    if not weights.is_file() or weights.suffix != ".safetensors":
        raise RegistryError(f"weights {card.weights.file!r} missing or not .safetensors", folder)
    if file_sha256(weights) != card.weights.sha256:
        raise RegistryError("weights SHA-256 does not match the card", weights)
    check_safetensors(weights)
    create_family(card.architecture.family, card.architecture.options, card_path, at="architecture.options")
    pickled = [p.name for p in folder.rglob("*") if p.suffix in PICKLED]
    if pickled:
        raise RegistryError(f"refusing pickle-based weight file {pickled[0]!r}: safetensors only", folder)


def publish_model(registry: Registry, path: str | Path) -> tuple[Ref, str]:
    """Publish the model folder ``path`` to ``registry`` once :func:`check_model` passes; returns (ref, manifest
    SHA-256)."""
    return registry.publish(path, "models", check=check_model)
