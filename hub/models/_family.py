"""Model families, registered by name in the style of timm's ``register_model`` / ``create_model``.

A family knows its task, builds its network from a card's architecture, turns a curated dataset into
training pairs, defines the loss, and turns raw network output into the task's prediction.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from hub.cards import Architecture, DatasetCard
from hub.errors import InvalidInput

_FAMILIES: dict[str, type[Family]] = {}

class Family:
    """Base of the model families; subclasses set ``name``/``task`` and override the hooks they need."""

    name: ClassVar[str]
    task: ClassVar[str]
    tiled: ClassVar[bool] = True  # dense output, run over tiles with a halo
    label: ClassVar[str | None] = "instances"  # label image trained on (segmentation families)
    sizes: ClassVar[dict[str, tuple[int, float | None]]] = {}  # options in pixels -> (1 length / 2 area, default)

    def __init__(self, options: dict[str, Any] | None = None):
        self.options = dict(options or {})

    # -- network --------------------------------------------------------------------------------------
    def out_channels(self, n_outputs: int) -> int:
        """Network output channels, given the number of classes / target channels."""
        return n_outputs

    def build(self, arch: Architecture, in_chans: int, n_outputs: int, pretrained: bool = False) -> nn.Module:
        from hub.models.nets import UNet

        return UNet(arch.backbone, in_chans, self.out_channels(n_outputs), depth=int(arch.options.get("depth", 4)),
                    decoder_channels=int(arch.options.get("decoder_channels", 32)),
                    norm="batchnorm" in arch.regularization, dropout=arch.dropout, pretrained=pretrained)

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
        if not self.options.get("tta"):
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
        for key, (power, default) in self.sizes.items():
            value = options.get(key, default)
            if value is not None:
                options[key] = float(value) / scale**power
        return type(self)(options)


def register_family(cls: type[Family]) -> type[Family]:
    """Class decorator: make a family available by its ``name``."""
    _FAMILIES[cls.name] = cls
    return cls

def create_family(name: str, options: dict[str, Any] | None = None) -> Family:
    if name not in _FAMILIES:
        raise InvalidInput(f"unknown model family {name!r} (known: {', '.join(sorted(_FAMILIES))})")
    return _FAMILIES[name](options)

def families() -> dict[str, str]:
    """Registered family name -> task."""
    return {n: c.task for n, c in sorted(_FAMILIES.items())}

def family_for_task(task: str) -> str:
    """The default family of a task."""
    defaults = {"classification": "classifier", "semantic-segmentation": "unet",
                "instance-segmentation": "deep-watershed", "tracking": "detect-link",
                "label-free": "unet-regression"}
    if task not in defaults:
        raise InvalidInput(f"unknown task {task!r} (known: {', '.join(defaults)})")
    return defaults[task]


def build_network(family: Family, arch: Architecture, in_chans: int, n_outputs: int, *, pretrained: bool = False,
                  source: str | None = None) -> nn.Module:
    """``family.build(...)``; an architecture that cannot be built (unknown backbone, an option of the wrong type
    or out of range) is a one-line :class:`InvalidInput` naming ``source`` (the card or recipe), not a traceback."""
    try:
        return family.build(arch, in_chans, n_outputs, pretrained=pretrained)
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError, AssertionError) as err:
        problem = " ".join(str(err).split())[:200] or err.__class__.__name__
        options = f" with options {arch.options}" if arch.options else ""
        raise InvalidInput(f"cannot build a {arch.family} network on backbone {arch.backbone!r}{options}: "
                           f"{problem}", source) from None
