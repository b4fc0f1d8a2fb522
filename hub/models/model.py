"""A ready model: card + network + family, with its pre- and post-processing, saved as safetensors only."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from hub.cards import ModelCard, Weights, load_card, save_card
from hub.errors import IntegrityError, InvalidInput
from hub.models._family import Family, build_network, create_family
from hub.models._tiling import predict_tiled
from hub.registry.manifest import file_sha256
from hub.safety import inside

CARD, WEIGHTS = "card.yaml", "weights.safetensors"


class Model:
    """``model.predict(array)`` on raw images of any size; ``Model.load(folder)`` / ``model.save(folder)``."""

    def __init__(self, card: ModelCard, net: nn.Module, family: Family | None = None):
        self.card, self.net = card, net.eval()
        self.family = family or create_family(card.architecture.family, card.architecture.options)
        self.folder: Path | None = None  # where it was loaded from (workers of a cluster load it from there)

    def __repr__(self) -> str:
        return f"Model({self.card.ref}: {self.card.architecture.network})"

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> Model:
        self.net.to(device)
        return self

    # -- pre-processing ---------------------------------------------------------------------------------
    def normalize(self, image: np.ndarray) -> np.ndarray:
        """Raw (C, Y, X) image -> network input, by the card's normalisation."""
        norm = self.card.inputs.normalization
        x = image.astype(np.float32)
        if norm.mode == "image-percentile":
            flat = x.reshape(x.shape[0], -1)
            lo, hi = np.percentile(flat, [norm.low, norm.high], axis=1)
            return ((x - lo[:, None, None]) / np.maximum(hi - lo, 1e-6)[:, None, None]).astype(np.float32)
        offset = np.asarray(norm.offset, np.float32)[:, None, None]
        return (x - offset) * np.asarray(norm.scale, np.float32)[:, None, None]

    def channels_first(self, image: np.ndarray, source: str = "input") -> np.ndarray:
        """(Y, X) or (C, Y, X) -> (C, Y, X) with the number of channels the card asks for."""
        n = len(self.card.inputs.channels)
        if image.ndim == 2:
            image = image[None]
        if image.ndim != 3 or image.shape[0] != n:
            raise InvalidInput(
                f"model {self.card.ref} expects {n} channel(s) "
                f"({', '.join(self.card.channel_names)}) as (C, Y, X), got shape {image.shape}",
                source,
            )
        return image

    # -- inference --------------------------------------------------------------------------------------
    @torch.inference_mode()
    def maps(self, image: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Activated network output of one raw image: (K,) for classifiers, (K, Y, X) for dense families.

        ``scale`` resizes the image before the network (e.g. 0.5 for objects twice the size of the training
        data's); the maps are resized back, so they always have the image's size.
        """
        if not scale > 0:
            raise InvalidInput(f"scale must be > 0, got {scale}")
        x = self.normalize(self.channels_first(image))
        if not self.family.tiled:
            if scale != 1.0:
                raise InvalidInput(f"scale applies to dense models, not to the {self.card.task} model {self.card.ref}")
            return self.family.infer(self.net, torch.from_numpy(x)[None].to(self.device))[0].float().cpu().numpy()
        size = x.shape[-2:]
        if scale != 1.0:
            x = _resize(x, tuple(max(1, round(n * scale)) for n in size))
        inputs = self.card.inputs
        out = predict_tiled(
            lambda t: self.family.infer(self.net, t),
            x,
            tile=inputs.tile,
            halo=inputs.halo,
            multiple=inputs.size_multiple,
            device=self.device,
        )
        return out if scale == 1.0 else _resize(out, size)

    def predict(self, image: np.ndarray, scale: float = 1.0) -> Any:
        """Prediction for one raw image: class probabilities, a label image, or predicted channels; what the
        family's :meth:`~hub.models.Family.predict` makes of it.

        Tracking models take a movie (T, Y, X) / (T, C, Y, X) and return ``(masks, tracks)``. ``scale``: see
        :meth:`maps`; the post-processing's sizes in pixels follow it (:meth:`Family.at_scale`).
        """
        return self.family.predict(self, image, scale)

    # -- persistence ------------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write ``card.yaml`` + ``weights.safetensors`` (the card records the weights' SHA-256), atomically;
        ``self.card`` becomes the card written."""

        def write(tmp: Path) -> None:
            weights = write_weights(self.net, tmp / WEIGHTS, self.card.weights.dtype, self.card.name, self.card.version)
            self.card = self.card.model_copy(update={"weights": weights})
            save_card(self.card, tmp / CARD)

        return write_model_folder(folder, write)

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> Model:
        """Load a saved model; the weights' SHA-256 must match the card. Nothing is unpickled."""
        folder = Path(folder)
        card = load_card(ModelCard, folder / CARD)
        path = inside(folder, card.weights.file, "weights file", folder / CARD)
        if not path.is_file():
            raise InvalidInput("weights file not found", path)
        if file_sha256(path) != card.weights.sha256:
            raise IntegrityError("weights SHA-256 does not match the card", path)
        family = create_family(  # before build: an option out of bounds never allocates a network
            card.architecture.family, card.architecture.options, folder / CARD, at="architecture.options"
        )
        net = build_network(
            family,
            card.architecture,
            len(card.inputs.channels),
            len(card.outputs.classes or card.outputs.channels or [0]),
            source=str(folder / CARD),
            weights_bytes=path.stat().st_size,
        )
        try:
            state = load_file(path)
        except SafetensorError as err:
            raise InvalidInput(f"not a safetensors file ({err})", path) from None
        own = net.state_dict()
        try:
            net.load_state_dict({k: v.to(own[k].dtype) if k in own else v for k, v in state.items()})
        except RuntimeError as err:
            raise InvalidInput(
                f"weights do not fit {card.architecture.network}: {str(err).splitlines()[0]}", path
            ) from None
        model = cls(card, net.to(device), family)
        model.folder = folder
        return model


def write_weights(net: nn.Module, path: Path, dtype: str, name: str, version: str) -> Weights:
    """The network's state as a safetensors file (``dtype``: float32 or float16 for floating tensors); returns
    the card's record of it (SHA-256, size, parameter count)."""
    torch_dtype = torch.float16 if dtype == "float16" else torch.float32
    state = {
        k: (v.to(torch_dtype) if v.is_floating_point() else v).contiguous().cpu() for k, v in net.state_dict().items()
    }
    save_file(state, path, metadata={"name": name, "version": version})
    data = path.read_bytes()
    return Weights(
        file=WEIGHTS,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        parameters=sum(p.numel() for p in net.parameters()),
        dtype=dtype,
    )


def write_model_folder(folder: str | Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` in a scratch folder beside ``folder`` that then replaces it: a model folder appears
    complete or not at all (an existing one is replaced)."""
    folder = Path(folder)
    tmp = folder.parent / f".{folder.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        write(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, Y, X) float array resized to ``size`` (bilinear, anti-aliased when shrinking)."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]
    return F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)[0].numpy()
