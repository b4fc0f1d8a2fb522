"""Model families, registered by name in the style of timm's ``register_model`` / ``create_model``.

A family knows its task, builds its network from a card's architecture, turns a curated dataset into
training pairs, defines the loss, and turns raw network output into the task's prediction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn

from hub.cards import Architecture, DatasetCard
from hub.errors import InvalidInput
from hub.tasks import get_task

_FAMILIES: dict[str, type[Family]] = {}


class FamilyOptions(BaseModel):
    """Options every family takes. A family's ``Options`` subclass lists its own, each typed and bounded, with
    its default: a card or recipe naming an unknown option, or a value of the wrong type or out of bounds, is
    refused before any network is built (a card asking for 2,000 decoder channels would allocate gigabytes)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    tta: bool = Field(False, description="Average the prediction over the 8 rotated / flipped views")


class UNetOptions(FamilyOptions):
    """The U-Net of :class:`hub.models.nets.UNet`."""

    depth: int = Field(4, ge=1, le=5, description="Encoder stages used (timm features_only)")
    decoder_channels: int = Field(32, ge=1, le=512, description="Width of the finest decoder stage")


class Family:
    """Base of the model families; subclasses set ``name``/``task`` and override the hooks they need.

    ``options`` is the dict a card or recipe gave (written back to cards as given); ``opts`` the same validated
    by the family's ``Options`` model, with every default filled in: the code reads ``opts``.
    """

    name: ClassVar[str]
    task: ClassVar[str]
    Options: ClassVar[type[FamilyOptions]] = UNetOptions
    tiled: ClassVar[bool] = True  # dense output, run over tiles with a halo
    label: ClassVar[str | None] = "instances"  # label image trained on (segmentation families)
    sizes: ClassVar[dict[str, int]] = {}  # options in pixels -> 1 (a length) or 2 (an area)

    def __init__(self, options: dict[str, Any] | None = None, source: str | Path | None = None):
        if options is not None and not isinstance(options, dict):
            raise InvalidInput(f"{self.name} options must be a mapping, got {type(options).__name__}", source)
        self.options = dict(options or {})
        self.opts = self.check_options(self.options, source)

    @classmethod
    def check_options(cls, options: dict[str, Any], source: str | Path | None = None) -> FamilyOptions:
        """``options`` validated by :attr:`Options`; one line naming the first bad option otherwise."""
        try:
            return cls.Options.model_validate(options)
        except ValidationError as err:
            e = err.errors()[0]
            key = ".".join(str(p) for p in e["loc"]) or "<options>"
            if e["type"] == "extra_forbidden":
                problem = f"unknown option (known: {', '.join(cls.Options.model_fields)})"
            else:
                problem = f"{e['msg']}, got {repr(e.get('input'))[:40]}"
            raise InvalidInput(f"{cls.name} option {key!r}: {problem}", source) from None

    # -- network --------------------------------------------------------------------------------------
    def out_channels(self, n_outputs: int) -> int:
        """Network output channels, given the number of classes / target channels."""
        return n_outputs

    def build(self, arch: Architecture, in_chans: int, n_outputs: int, pretrained: bool = False) -> nn.Module:
        """The network for ``arch`` (backbone, regularisation); the family's validated options shape it."""
        from hub.models.nets import UNet

        return UNet(
            arch.backbone,
            in_chans,
            self.out_channels(n_outputs),
            depth=self.opts.depth,
            decoder_channels=self.opts.decoder_channels,
            norm="batchnorm" in arch.regularization,
            dropout=arch.dropout,
            pretrained=pretrained,
        )

    # -- training -------------------------------------------------------------------------------------
    def outputs(self, card: DatasetCard, channels: list[str]) -> dict:
        """The card's ``outputs`` section for a model trained on ``card`` (meaning, axes, classes)."""
        raise NotImplementedError

    def n_outputs(self, card: DatasetCard) -> int:
        return 1

    def target(self, label: np.ndarray) -> np.ndarray:
        """Training target from a label patch (default: unchanged)."""
        return label

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- inference ------------------------------------------------------------------------------------
    def activate(self, output: torch.Tensor) -> torch.Tensor:
        """Raw network output -> the maps that are stitched and post-processed (probabilities, ...)."""
        return output

    def infer(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Activated output of a batch (N, C, Y, X). Option ``tta: true`` averages it over the 8 views of the
        square's symmetry group (90-degree rotations, each also flipped: the training augmentation), each
        dense output mapped back to the input's orientation first."""
        if not self.opts.tta:
            return self.activate(net(x))
        views = [(k, flip) for k in range(4) for flip in (False, True)]
        inputs = [torch.rot90(x, k, (-2, -1)).flip(-1) if flip else torch.rot90(x, k, (-2, -1)) for k, flip in views]
        if not self.tiled:  # whole small crops: one batch of all views
            return self.activate(net(torch.cat(inputs))).unflatten(0, (len(views), -1)).mean(0)
        total = 0
        for (k, flip), view in zip(views, inputs):
            y = self.activate(net(view))
            total = total + torch.rot90(y.flip(-1) if flip else y, -k, (-2, -1))
        return total / len(views)

    def postprocess(self, maps: np.ndarray) -> np.ndarray:
        """Stitched maps (C, Y, X) of one image -> the prediction."""
        return maps

    def at_scale(self, scale: float) -> Family:
        """This family for the maps of an image the network saw resized by ``scale``: its options in pixels
        (``sizes``: minimum areas, distances) are converted to the image's pixels (lengths / scale, areas /
        scale**2), so a model tuned on its training data keeps the same thresholds in object terms."""
        if scale == 1.0 or not self.sizes:
            return self
        options = dict(self.options)
        for key, power in self.sizes.items():
            value = getattr(self.opts, key)
            if value is not None:
                options[key] = float(value) / scale**power
        return type(self)(options)


def register_family(cls: type[Family]) -> type[Family]:
    """Class decorator: make a family available by its ``name``."""
    _FAMILIES[cls.name] = cls
    return cls


def create_family(name: str, options: dict[str, Any] | None = None, source: str | Path | None = None) -> Family:
    """The family ``name`` with ``options`` validated (errors name ``source``, the card or recipe)."""
    if name not in _FAMILIES:
        raise InvalidInput(f"unknown model family {name!r} (known: {', '.join(sorted(_FAMILIES))})", source)
    return _FAMILIES[name](options, source)


def families() -> dict[str, str]:
    """Registered family name -> task."""
    return {n: c.task for n, c in sorted(_FAMILIES.items())}


def family_for_task(task: str) -> str:
    """The default family of a task (:attr:`hub.tasks.TaskSpec.default_family`)."""
    return get_task(task).default_family


def build_network(
    family: Family,
    arch: Architecture,
    in_chans: int,
    n_outputs: int,
    *,
    pretrained: bool = False,
    source: str | None = None,
) -> nn.Module:
    """``family.build(...)``; an architecture that cannot be built (unknown backbone, an option of the wrong type
    or out of range) is a one-line :class:`InvalidInput` naming ``source`` (the card or recipe), not a traceback."""
    try:
        return family.build(arch, in_chans, n_outputs, pretrained=pretrained)
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError, AssertionError) as err:
        problem = " ".join(str(err).split())[:200] or err.__class__.__name__
        options = f" with options {arch.options}" if arch.options else ""
        raise InvalidInput(
            f"cannot build a {arch.family} network on backbone {arch.backbone!r}{options}: {problem}", source
        ) from None
