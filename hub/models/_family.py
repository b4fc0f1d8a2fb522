"""Model families, registered by name in the style of timm's ``register_model`` / ``create_model``.

A family owns every fact about itself: its task, its typed options, how it builds its network from a card's
architecture, which training data it takes from a curated dataset (channels, patches, class sampling), its
loss, how raw network output becomes the task's prediction (:meth:`Family.predict`, which
:meth:`hub.models.Model.predict` delegates to), the names of its output maps, the post-processing grid
tuned by default and whether its maps are probabilities. Code elsewhere asks the family, never its name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, TypeVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn

from hub.cards import Architecture, DatasetCard, ModelCard
from hub.errors import InvalidInput
from hub.tasks import get_task

if TYPE_CHECKING:
    from hub.data import SegmentationDataset
    from hub.models.config import TrainConfig
    from hub.models.model import Model

_FAMILIES: dict[str, type[Family]] = {}
Normalize = Literal["image", "percentile"]  # how the training datasets normalise their inputs
D = TypeVar("D", bound=torch.utils.data.Dataset)


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
    tuning_grid: ClassVar[dict[str, list[Any]]] = {}  # post-processing options tuned by default (hub.models.tuning)
    tuning_metric: ClassVar[str] = "acc@[.5:.95]"  # what tuning maximises (:meth:`tuning_score`)
    probabilities: ClassVar[bool] = False  # the activated maps are probabilities in [0, 1]
    normalize: ClassVar[Literal["image", "dataset"]] = "image"  # input normalisation when a recipe names none
    maps_are_prediction: ClassVar[bool] = False  # post-processing leaves the activated maps as they are
    usage: ClassVar[str] = "prediction = model.predict(image)  # raw (C, Y, X) or (Y, X) array of any size"
    bioimageio_note: ClassVar[str] = ""  # appended to the description of a bioimage.io package
    tensor_output: ClassVar[bool] = True  # the network maps a tensor to a tensor (what a bioimage.io package holds)
    opts: FamilyOptions  # a subclass narrows it to its Options
    class_weight: torch.Tensor | None = None  # loss weight per class, set by training (class_weighting: balanced)

    def __init__(self, options: dict[str, Any] | None = None, source: str | Path | None = None, at: str | None = None):
        if options is not None and not isinstance(options, dict):
            where = f"{at}: " if at else ""
            raise InvalidInput(f"{where}{self.name} options must be a mapping, got {type(options).__name__}", source)
        self.options = dict(options or {})
        self.opts = self.check_options(self.options, source, at)

    @classmethod
    def check_options(
        cls, options: dict[str, Any], source: str | Path | None = None, at: str | None = None
    ) -> FamilyOptions:
        """``options`` validated by :attr:`Options`; one line naming the first bad option otherwise, prefixed by
        its field path in the file when ``at`` says where the options sit (``architecture.options.min_sise:``
        for a card, ``options.min_sise:`` for a recipe)."""
        try:
            return cls.Options.model_validate(options)
        except ValidationError as err:
            e = err.errors()[0]
            if not e["loc"]:  # a rule across options (e.g. one anchor size per pyramid level)
                where = f"{at}: " if at else ""
                raise InvalidInput(
                    f"{where}{cls.name} options: {e['msg'].removeprefix('Value error, ')}", source
                ) from None
            key = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                problem = f"unknown option (known: {', '.join(cls.Options.model_fields)})"
            else:
                problem = f"{e['msg']}, got {repr(e.get('input'))[:40]}"
            path = f"{at}.{key}: " if at else ""
            raise InvalidInput(f"{path}{cls.name} option {key!r}: {problem}", source) from None

    # -- network --------------------------------------------------------------------------------------
    def out_channels(self, n_outputs: int) -> int:
        """Network output channels, given the number of classes / target channels."""
        return n_outputs

    def build(self, arch: Architecture, in_chans: int, n_outputs: int, pretrained: bool = False) -> nn.Module:
        """The network for ``arch`` (backbone, regularisation); the family's validated options shape it."""
        from hub.models.nets import UNet

        opts = self.opts
        assert isinstance(opts, UNetOptions), f"{self.name}: a U-Net family's Options derive from UNetOptions"
        return UNet(
            arch.backbone,
            in_chans,
            self.out_channels(n_outputs),
            depth=opts.depth,
            decoder_channels=opts.decoder_channels,
            norm="batchnorm" in arch.regularization,
            dropout=arch.dropout,
            pretrained=pretrained,
        )

    # -- training -------------------------------------------------------------------------------------
    def outputs(self, card: DatasetCard, targets: list[str]) -> dict:
        """The card's ``outputs`` section for a model trained on ``card`` (meaning, axes, classes); ``targets``:
        the target channels trained on (see :meth:`channels`)."""
        raise NotImplementedError

    def n_outputs(self, card: DatasetCard, targets: list[str]) -> int:
        """Classes or target channels the network predicts (``out_channels`` turns them into its width)."""
        return 1

    def channels(self, cfg: TrainConfig, card: DatasetCard) -> tuple[list[str], list[str]]:
        """The input channels and the target channels (empty: the truth is a label image) trained on."""
        return list(cfg.channels or card.channel_names), []

    def datasets(
        self, cfg: TrainConfig, path: Path, channels: list[str], targets: list[str], normalize: Normalize
    ) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset | None]:
        """Training and validation datasets of the curated dataset at ``path`` (validation ``None`` when it has no
        ``val`` split): by default random patches, ``steps_per_epoch * batch_size`` of them an epoch, and
        ``val_batches`` (8) batches of validation patches. ``normalize``: ``image`` or ``percentile``."""
        n_train = (cfg.steps_per_epoch or 0) * cfg.batch_size or None
        train_set = self.patches(cfg, path, "train", channels, targets, normalize, cfg.augment, cfg.seed, n_train)
        n_val = (cfg.val_batches or 8) * cfg.batch_size
        val_set = optional_split(
            lambda: self.patches(cfg, path, "val", channels, targets, normalize, False, cfg.seed + 1, n_val)
        )
        return train_set, val_set

    def patches(
        self,
        cfg: TrainConfig,
        path: Path,
        split: str,
        channels: list[str],
        targets: list[str],
        normalize: Normalize,
        augment: bool,
        seed: int,
        n: int | None,
    ) -> torch.utils.data.Dataset:
        """Random patches of ``split`` with their training targets (:meth:`target` of a label image)."""
        from hub.data import SegmentationDataset

        data = SegmentationDataset(
            path,
            split,
            patch=cfg.patch,
            samples_per_epoch=n,
            label=cfg.label or self.label or "instances",
            channels=channels,
            normalize=normalize,
            augment=augment,
            seed=seed,
            frames=cfg.frames if split == "train" else None,
            samples=cfg.samples if split == "train" else None,
            foreground=cfg.foreground if split == "train" else 0.0,
            intensity=cfg.intensity if split == "train" else None,
        )
        return _Targets(data, self)

    def sampler(
        self, cfg: TrainConfig, data: torch.utils.data.Dataset, generator: torch.Generator
    ) -> torch.utils.data.Sampler | None:
        """The training sampler (``None``: shuffle); a family may also set up its loss for ``class_weighting``."""
        return None

    def per_class_recall(
        self, net: nn.Module, data: torch.utils.data.Dataset | None, device: torch.device, card: DatasetCard
    ) -> dict[str, float] | None:
        """Validation recall per class, recorded in the card (classifiers)."""
        return None

    def target(self, label: np.ndarray) -> np.ndarray:
        """Training target from a label patch (default: unchanged)."""
        return label

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def collate(self, batch: list) -> Any:
        """A training batch from a list of dataset items (default: stacked tensors)."""
        return torch.utils.data.default_collate(batch)

    def train_loss(self, net: nn.Module, x: Any, y: Any, device: torch.device) -> torch.Tensor:
        """The loss of one training batch (default: :meth:`loss` of the network's output)."""
        x = x.to(device, memory_format=torch.channels_last) if x.dim() == 4 else x.to(device)
        return self.loss(net(x), y.to(device))

    def val_criterion(
        self, net: nn.Module, data: torch.utils.data.Dataset, cfg: TrainConfig, device: torch.device
    ) -> float:
        """What early stopping minimises on the validation split (default: the unweighted loss, comparable across
        class weightings)."""
        net.eval()
        loader = torch.utils.data.DataLoader(
            data, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers, collate_fn=self.collate
        )
        total, n = 0.0, 0
        weight, self.class_weight = self.class_weight, None
        with torch.no_grad():
            for x, y in loader:
                total += float(self.loss(net(x.to(device)), y.to(device))) * len(x)
                n += len(x)
        self.class_weight = weight
        return total / max(n, 1)

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
        total = torch.zeros(())  # the sum of the views, each turned back (from 0, as a 0-d tensor)
        for (k, flip), view in zip(views, inputs):
            total = total + self.turn_back(self.activate(net(view)), k, flip)
        return total / len(views)

    def turn_back(self, y: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
        """Activated maps (N, C, Y, X) of a view (the input rotated by ``k`` quarter turns, then flipped left-right
        if ``flip``) in the input's orientation. Scalar maps only move their pixels; a family whose maps hold
        vectors turns them too."""
        return torch.rot90(y.flip(-1) if flip else y, -k, (-2, -1))

    def postprocess(self, maps: np.ndarray) -> np.ndarray:
        """Stitched maps (C, Y, X) of one image -> the prediction."""
        return maps

    def predict(self, model: Model, image: np.ndarray, scale: float = 1.0) -> Any:
        """The prediction of ``model`` for one raw image (what :meth:`hub.models.Model.predict` returns): its maps
        post-processed, sizes in pixels following ``scale`` (:meth:`at_scale`)."""
        return self.at_scale(scale).postprocess(model.maps(image, scale))

    def output_names(self, card: ModelCard, n: int) -> list[str]:
        """Names of the ``n`` channels of the activated maps (the bioimage.io output axis): the card's classes or
        channels by default; ``channel0``... when they are not ``n``."""
        return _named(list(card.outputs.classes or card.outputs.channels or []), n)

    # -- tuning ---------------------------------------------------------------------------------------
    def tuning_score(self, truth: list[np.ndarray], predictions: list[np.ndarray]) -> float:
        """The score tuning maximises (:attr:`tuning_metric`) of post-processed maps against label images."""
        from hub.models.tuning import instance_score

        return instance_score(truth, predictions)

    def at_scale(self, scale: float) -> Self:
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


def _named(names: list[str], n: int) -> list[str]:
    return names if len(names) == n else [f"channel{i}" for i in range(n)]


def optional_split(make: Callable[[], D]) -> D | None:
    """``make()``, or ``None`` when the dataset has no such split."""
    try:
        return make()
    except InvalidInput:
        return None


class _Targets(torch.utils.data.Dataset):
    """A segmentation dataset whose labels go through the family's ``target`` (boundaries, classes...)."""

    def __init__(self, base: SegmentationDataset, family: Family):
        self.base, self.family = base, family

    def __len__(self) -> int:
        return len(self.base)

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def __getitem__(self, i: int):
        x, y = self.base[i]
        return x, torch.from_numpy(np.ascontiguousarray(self.family.target(y.numpy())))


def register_family(cls: type[Family]) -> type[Family]:
    """Class decorator: make a family available by its ``name``."""
    _FAMILIES[cls.name] = cls
    return cls


def create_family(
    name: str, options: dict[str, Any] | None = None, source: str | Path | None = None, at: str | None = None
) -> Family:
    """The family ``name`` with ``options`` validated (errors name ``source``, the card or recipe, and with
    ``at`` the options' field path in it)."""
    known = _FAMILIES
    if name not in known:
        parent = at.rpartition(".")[0] if at else ""
        where = f"{parent + '.' if parent else ''}family: " if at else ""
        raise InvalidInput(f"{where}unknown model family {name!r} (known: {', '.join(sorted(known))})", source)
    return known[name](options, source, at)


def families() -> dict[str, str]:
    """Registered family name -> task."""
    return {n: c.task for n, c in family_classes().items()}


def family_classes() -> dict[str, type[Family]]:
    """Registered family name -> class, by name (ask a class its facts: ``tuning_grid``, ``task``...)."""
    return dict(sorted(_FAMILIES.items()))


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
    weights_bytes: int | None = None,
) -> nn.Module:
    """``family.build(...)``, or an :class:`~hub.models.nets.Ensemble` of ``arch.members`` of them; an architecture
    that cannot be built (unknown backbone, an option of the wrong type or out of range, an ensemble of a family
    that cannot be one) is a one-line :class:`InvalidInput` naming ``source`` (the card or recipe), not a
    traceback. ``weights_bytes``: the size of the weights file to load into it; an ensemble whose members could not
    fit in it (2 bytes a parameter at least) is refused after its first member is built, before the others."""
    from hub.models.nets import Ensemble

    check_ensemble(family, arch.members, "architecture.members", source)
    try:
        nets = [family.build(arch, in_chans, n_outputs, pretrained=pretrained)]
        if arch.members and weights_bytes is not None:
            least = 2 * arch.members * sum(p.numel() for p in nets[0].parameters())
            if least > weights_bytes:
                raise InvalidInput(
                    f"architecture.members: {arch.members} networks need at least {least:,} bytes of weights, "
                    f"the weights file has {weights_bytes:,}",
                    source,
                )
        nets += [family.build(arch, in_chans, n_outputs, pretrained=pretrained) for _ in range((arch.members or 1) - 1)]
        return Ensemble(nets) if arch.members else nets[0]
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError, AssertionError) as err:
        problem = " ".join(str(err).split())[:200] or err.__class__.__name__
        options = f" with options {arch.options}" if arch.options else ""
        raise InvalidInput(
            f"cannot build a {arch.family} network on backbone {arch.backbone!r}{options}: {problem}", source
        ) from None


def check_ensemble(family: Family, members: int | None, at: str, source: str | Path | None = None) -> None:
    """Refuse ``members`` (an ensemble's size, ``None`` for one network) for a family whose network does not map a
    tensor to one tensor (the R-CNNs): their outputs cannot be averaged."""
    if members and not family.tensor_output:
        raise InvalidInput(
            f"{at}: a {family.name} network cannot be an ensemble (its output is not one tensor)", source
        )
