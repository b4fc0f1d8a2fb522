"""Training and fine-tuning: one loop for every family, deterministic, early-stopped on the validation split.

:func:`train` runs the trials of a :class:`~hub.models.config.TrainConfig` (its ``grid``), keeps the best on
validation, writes its weights and then its card (which records them), and tunes its post-processing if asked.
One trial (:func:`_fit`): seeds, the network (new, pretrained or a hub model's), the family's datasets, an
optimiser, then :func:`_epochs`. What differs between families (datasets, targets, class sampling, loss) is
asked of the family; what differs between tasks of the card (the hyper-parameters recorded) is in
:func:`model_card`.
"""

from __future__ import annotations

import dataclasses
import itertools
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError
from torch import nn

from hub._progress import progress_bar
from hub._versions import package_versions
from hub.cards import (
    Architecture,
    DatasetCard,
    InputChannel,
    Inputs,
    ModelCard,
    Normalization,
    Outputs,
    Training,
    Trial,
    Weights,
    format_validation_error,
    save_card,
)
from hub.data import Normalizer
from hub.dataset import open_dataset
from hub.errors import InvalidInput
from hub.models import distributed
from hub.models._family import Family, build_network, check_ensemble, create_family, family_for_task
from hub.models.config import TrainConfig, check_options, load_recipe
from hub.models.model import CARD, WEIGHTS, Model, write_model_folder, write_weights
from hub.models.nets import Ensemble, encoder_module, encoder_parameters
from hub.registry import local_path

__all__ = ["TrainConfig", "load_recipe", "model_card", "train"]


def train(cfg: TrainConfig, out: str | Path, nproc: int = 1) -> Model:
    """Train (or fine-tune) by ``cfg``, run its grid if any, and save the best model to ``out``. ``nproc`` > 1:
    distributed data-parallel over that many processes (:mod:`hub.models.distributed`; also under torchrun)."""
    if nproc > 1:
        return distributed.launch(cfg, out, nproc)
    distributed.join_torchrun(_device(cfg.device))
    start = time.perf_counter()
    configs = _trials(cfg)  # every trial validated before the dataset is read (or pulled)
    dataset = local_path("datasets", cfg.dataset, cfg.registry)
    if cfg.members:
        base = _load_base(cfg)
        check_ensemble(_family(cfg, base)[0], cfg.members, "members")  # before any member trains
        members = [cfg.model_copy(update={"seed": cfg.seed + i, "members": None}) for i in range(cfg.members)]
        fits = [(member, _fit(member, dataset, base)) for member in members]
        best_cfg, best = cfg, _ensemble(cfg, [fit for _, fit in fits])
        trials = [_trial({"seed": member.seed}, fit) for member, fit in fits]
    else:
        fits = [(trial, _fit(trial, dataset)) for trial in configs]
        best_cfg, best = min(fits, key=lambda t: t[1].score)
        trials = [_trial(c.model_dump(mode="json", include=set(cfg.grid)), fit) for c, fit in fits] if cfg.grid else []
    model = None
    if distributed.rank() == 0:  # one writer
        model = _save(out, best_cfg, best, trials, start)
        if cfg.tune_postprocess:
            from hub.models.tuning import tune

            tune(out, dataset, grid=cfg.tune_postprocess if isinstance(cfg.tune_postprocess, dict) else None)
            model = Model.load(out)
    distributed.barrier()
    return model or Model.load(out)


def _trials(cfg: TrainConfig) -> list[TrainConfig]:
    """One config per combination of the grid (``cfg`` alone without one), every one validated, family options
    included, before the first trains."""
    keys = list(cfg.grid)
    configs = []
    for values in itertools.product(*(cfg.grid[k] for k in keys)) if keys else [()]:
        trial = cfg.model_copy(update=dict(zip(keys, values)))
        try:
            trial = TrainConfig.model_validate(trial.model_dump())
        except ValidationError as err:
            raise InvalidInput(f"grid: {format_validation_error(err)}") from None
        check_options(trial)
        configs.append(trial)
    return configs


@dataclass
class _Fit:
    """One trained trial: the network at its best epoch and what the card records about it."""

    net: nn.Module
    family: Family
    data: DatasetCard
    val_set: torch.utils.data.Dataset | None
    channels: list[str]
    targets: list[str]
    normalization: Normalization
    epochs: int
    best_epoch: int
    val_loss: float | None
    device: torch.device
    base: _Base | None
    per_class_recall: dict[str, float] | None

    @property
    def score(self) -> float:
        return self.val_loss if self.val_loss is not None else float("inf")


@dataclass
class _Base:
    """The starting point of a fine-tune: a hub model (``model``, ``card``) or ``timm:<name>`` weights."""

    model: Model | None
    ref: str
    card: ModelCard | None


@dataclass
class _Loop:
    """The result of the epochs: how many ran, the best one and its validation loss (``None``: no val split)."""

    epochs: int
    best_epoch: int
    best_loss: float | None


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _fit(cfg: TrainConfig, dataset: Path, base: _Base | None = None) -> _Fit:
    """One trial: the network of ``cfg`` trained on ``dataset`` and reset to its best validation epoch; ``base``:
    the model it starts from, when already loaded (else ``cfg.base_model``'s)."""
    _seed(cfg.seed)
    device = _device(cfg.device)
    base = base or _load_base(cfg)
    family, arch = _family(cfg, base)
    card = open_dataset(dataset).card
    channels, targets = family.channels(cfg, card)
    train_set, val_set = _datasets(cfg, dataset, family, channels, targets)
    normalization = _normalization(cfg.normalize or family.normalize, card, channels)
    net, frozen = _network(cfg, family, arch, base, len(channels), family.n_outputs(card, targets))
    net.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # NHWC: ~25% faster on CPU
    loader = _loader(cfg, family, train_set, device)
    loop = _epochs(cfg, net, family, loader, val_set, frozen, device)
    net.to(memory_format=torch.contiguous_format)  # safetensors stores contiguous tensors
    recall = family.per_class_recall(net, val_set, device, card)
    return _Fit(
        net=net.eval(),
        family=family,
        data=card,
        val_set=val_set,
        channels=channels,
        targets=targets,
        normalization=normalization,
        epochs=loop.epochs,
        best_epoch=loop.best_epoch,
        val_loss=loop.best_loss,
        device=device,
        base=base,
        per_class_recall=recall,
    )


def _datasets(
    cfg: TrainConfig, dataset: Path, family: Family, channels: list[str], targets: list[str]
) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset | None]:
    """The family's training and validation datasets (validation ``None`` without a val split)."""
    normalize = cfg.normalize or family.normalize
    return family.datasets(cfg, dataset, channels, targets, "image" if normalize == "image" else "percentile")


def _ensemble(cfg: TrainConfig, members: list[_Fit]) -> _Fit:
    """The trained ``members`` as one :class:`~hub.models.nets.Ensemble`, scored on the validation split as a
    whole (its loss and per-class recall); ``epochs`` and ``best_epoch`` are the most any member ran (each
    member's are its trial's)."""
    first, val_set = members[0], members[0].val_set
    net = Ensemble([fit.net for fit in members]).eval()
    val_loss = None if val_set is None else first.family.val_criterion(net, val_set, cfg, first.device)
    return dataclasses.replace(
        first,
        net=net,
        epochs=max(fit.epochs for fit in members),
        best_epoch=max(fit.best_epoch for fit in members),
        val_loss=val_loss,
        per_class_recall=first.family.per_class_recall(net, val_set, first.device, first.data),
    )


def _trial(hyperparameters: dict[str, Any], fit: _Fit) -> Trial:
    return Trial(hyperparameters=hyperparameters, best_epoch=fit.best_epoch, val_loss=fit.val_loss)


def _seed(seed: int) -> None:
    """Deterministic training: the seeds of torch and numpy, deterministic cuDNN."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def _family(cfg: TrainConfig, base: _Base | None) -> tuple[Family, Architecture]:
    """The family and architecture a trial trains: the recipe's, or a fine-tuned hub model's network with the
    recipe's options merged into its own and the recipe's family if it names one (e.g. a deep-watershed detector
    fine-tuned into a detect-link tracker)."""
    arch = Architecture(
        family=cfg.family or family_for_task(cfg.task),
        backbone=cfg.backbone,
        options=dict(cfg.options),
        regularization=cfg.regularization,
        dropout=cfg.dropout,
    )
    if base is not None and base.card is not None:
        arch = base.card.architecture.model_copy(
            update={
                "family": cfg.family or base.card.architecture.family,
                "options": {**base.card.architecture.options, **cfg.options},
            }
        )
    family = create_family(arch.family, arch.options, at="options")
    if family.task != cfg.task:
        raise InvalidInput(f"family {arch.family!r} does {family.task}, not {cfg.task}")
    if cfg.foreground and family.label is None:
        raise InvalidInput(f"foreground applies to segmentation and tracking, not to {cfg.task}")
    return family, arch


def _normalization(mode: str, card: DatasetCard, channels: list[str]) -> Normalization:
    """The card's record of the input normalisation: per image, or the train split's percentiles."""
    if mode == "image":
        return Normalization(mode="image-percentile", low=1.0, high=99.8)
    n = Normalizer(card, channels, "percentile")
    assert n.offset is not None and n.scale is not None  # set by every mode but None
    return Normalization(mode="dataset-percentile", offset=n.offset.ravel().tolist(), scale=n.scale.ravel().tolist())


def _network(
    cfg: TrainConfig, family: Family, arch: Architecture, base: _Base | None, in_chans: int, n_outputs: int
) -> tuple[nn.Module, list[nn.Parameter]]:
    """The network to train (pretrained timm weights, or a base model's matching tensors) and the parameters
    frozen in it (the encoder's with ``freeze_encoder``)."""
    net = build_network(family, arch, in_chans, n_outputs, pretrained=base is not None and base.card is None)
    if base is not None and base.model is not None:
        _load_matching(net, base.model.net)
    frozen = encoder_parameters(net) if cfg.freeze_encoder else []
    for p in frozen:
        p.requires_grad_(False)
    return net, frozen


def _optimizer(
    cfg: TrainConfig, net: nn.Module, steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    """The optimiser of the trainable parameters and the learning-rate schedule (``None``: constant)."""
    params = [p for p in net.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    else:
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule != "one-cycle":
        return opt, None
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps, pct_start=0.1)


def _epochs(
    cfg: TrainConfig,
    net: nn.Module,
    family: Family,
    loader: torch.utils.data.DataLoader,
    val_set: torch.utils.data.Dataset | None,
    frozen: list[nn.Parameter],
    device: torch.device,
) -> _Loop:
    """Train epoch after epoch until ``epochs``, or ``patience`` epochs without a better validation loss; the
    network is left at its best epoch (the last one without a validation split)."""
    steps = cfg.steps_per_epoch or len(loader)
    opt, sched = _optimizer(cfg, net, steps)
    model = distributed.wrap(net, device)  # DDP in a process group: the gradients averaged over the ranks
    best_state, best_loss, best_epoch, bad, epoch = None, None, 0, 0, 0
    with progress_bar(transient=False) as bar:
        task = bar.add_task(f"training {cfg.name}", total=cfg.epochs * steps)

        def advance(loss: float, epoch: int) -> None:
            bar.update(task, advance=1, description=f"training {cfg.name} epoch {epoch} loss {loss:.4f}")

        for epoch in range(1, cfg.epochs + 1):
            losses = _epoch(net, model, family, loader, opt, sched, steps, epoch, bool(frozen), device, advance)
            line = f"{cfg.name} epoch {epoch}/{cfg.epochs}: train loss {np.mean(losses):.4f}"
            if val_set is None:
                bar.console.print(line, highlight=False)
                continue
            val_loss = family.val_criterion(net, val_set, cfg, device)
            improved = best_loss is None or val_loss < best_loss
            bar.console.print(f"{line}, val loss {val_loss:.4f}{' (best)' if improved else ''}", highlight=False)
            if improved:
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                best_loss, best_epoch, bad = val_loss, epoch, 0
            else:
                bad += 1
                if bad >= cfg.patience:
                    break
    if best_state is None:
        return _Loop(epoch, epoch, None)
    net.load_state_dict(best_state)
    return _Loop(epoch, best_epoch, best_loss)


def _epoch(
    net: nn.Module,
    model: nn.Module,
    family: Family,
    loader: torch.utils.data.DataLoader,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler | None,
    steps: int,
    epoch: int,
    frozen: bool,
    device: torch.device,
    advance: Any,
) -> list[float]:
    """``steps`` optimiser steps over ``loader`` (forward through ``model``: ``net`` or its DDP wrapper); the
    training losses."""
    data = loader.dataset
    if hasattr(data, "set_epoch"):
        data.set_epoch(epoch)
    net.train()
    encoder = encoder_module(net)
    if frozen and encoder is not None:
        encoder.eval()  # frozen batch-norm statistics too
    losses = []
    for _, (x, y) in zip(range(steps), loader):
        loss = family.train_loss(model, x, y, device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(loss.item())
        advance(losses[-1], epoch)
    return losses


def _loader(
    cfg: TrainConfig, family: Family, data: torch.utils.data.Dataset, device: torch.device
) -> torch.utils.data.DataLoader:
    gen = torch.Generator().manual_seed(cfg.seed)
    sampler = distributed.shard(family.sampler(cfg, data, gen), data, gen)  # this rank's shard of each epoch
    return torch.utils.data.DataLoader(
        data,
        batch_size=distributed.rank_batch(cfg.batch_size),
        shuffle=sampler is None,
        sampler=sampler,
        generator=gen,
        num_workers=cfg.workers,
        collate_fn=family.collate,
        drop_last=True,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )


def _load_base(cfg: TrainConfig) -> _Base | None:
    """The model to start from: a hub model (name@version or folder), or ``timm:<name>`` pretrained weights."""
    if cfg.base_model is None:
        return None
    if cfg.base_model.startswith("timm:"):
        return _Base(None, cfg.base_model, None)
    model = Model.load(local_path("models", cfg.base_model, cfg.registry))
    if model.card.architecture.members:
        raise InvalidInput(
            f"base_model: {model.card.ref} is an ensemble of {model.card.architecture.members} networks; "
            "fine-tune from one network"
        )
    ref = (
        model.card.ref if not Path(cfg.base_model).exists() else f"{model.card.ref} ({model.card.weights.sha256[:12]})"
    )
    return _Base(model, ref, model.card)


def _load_matching(net: nn.Module, base: nn.Module) -> None:
    """Copy every base tensor whose name and shape match (a new head keeps its fresh initialisation)."""
    own = net.state_dict()
    same = {k: v.to(own[k].dtype) for k, v in base.state_dict().items() if k in own and own[k].shape == v.shape}
    if not same:
        raise InvalidInput("the base model shares no weights with this architecture")
    net.load_state_dict(same, strict=False)


# -- the card ---------------------------------------------------------------------------------------------------
def _save(out: str | Path, cfg: TrainConfig, fit: _Fit, trials: list[Trial], start: float) -> Model:
    """Write the weights of ``fit``, then its card recording them, into the new model folder ``out``."""
    net = fit.net.cpu()
    cards: list[ModelCard] = []

    def write(tmp: Path) -> None:
        weights = write_weights(net, tmp / WEIGHTS, cfg.weights_dtype, cfg.name, cfg.version)
        cards.append(model_card(cfg, fit, weights, trials, time.perf_counter() - start))
        save_card(cards[0], tmp / CARD)

    write_model_folder(out, write)
    return Model(cards[0], net, fit.family)


HYPERPARAMETERS = (
    "epochs",
    "steps_per_epoch",
    "batch_size",
    "patch",
    "lr",
    "momentum",
    "weight_decay",
    "dropout",
    "patience",
    "normalize",
    "label",
    "frames",
)  # recorded in every card; ``foreground`` and ``lr_schedule`` only when set


def model_card(cfg: TrainConfig, fit: _Fit, weights: Weights, trials: list[Trial], wall: float) -> ModelCard:
    """The card of the model ``fit`` trained by ``cfg``, whose ``weights`` are written; ``trials``: the grid's,
    or an ensemble's members."""
    data = fit.data
    px = data.acquisition.pixel_size
    pixel = {"value": px.x, "unit": px.unit} if not px.unknown else None
    arch = Architecture(
        family=fit.family.name,
        backbone=cfg.backbone if fit.base is None or fit.base.card is None else fit.base.card.architecture.backbone,
        options=dict(fit.family.options),
        regularization=cfg.regularization,
        dropout=cfg.dropout,
        members=cfg.members,
    )
    return ModelCard(
        name=cfg.name,
        version=cfg.version,
        title=cfg.title or f"{cfg.name}: {fit.family.name} on {data.name}",
        description=cfg.description,
        task=cfg.task,
        architecture=arch,
        inputs=Inputs(
            channels=InputChannel.of(data, fit.channels),
            normalization=fit.normalization,
            pixel_size=pixel,
            size_multiple=int(getattr(fit.net, "size_multiple", 32)),
        ),
        outputs=Outputs(**fit.family.outputs(data, fit.targets)),
        weights=weights,
        training=_training(cfg, fit, trials, wall),
        license=cfg.license,
        authors=cfg.authors,
        citation=cfg.citation,
        intended_use=cfg.intended_use,
        limitations=cfg.limitations,
    )


def _training(cfg: TrainConfig, fit: _Fit, trials: list[Trial], wall: float) -> Training:
    hyper: dict[str, Any] = {k: getattr(cfg, k) for k in HYPERPARAMETERS}
    hyper.update({k: getattr(cfg, k) for k in ("foreground", "lr_schedule", "samples", "frames") if getattr(cfg, k)})
    hyper["options"] = dict(cfg.options)
    if cfg.intensity:
        hyper["intensity"] = cfg.intensity.model_dump(mode="json")
    if distributed.world() > 1:
        hyper["processes"] = distributed.world()  # data-parallel: batch_size is the global batch
    data = fit.data
    return Training(
        dataset=data.ref,
        dataset_manifest_sha256=data.splits.manifest_sha256 if data.splits else None,
        hyperparameters=hyper,
        seed=cfg.seed,
        epochs=fit.epochs,
        best_epoch=fit.best_epoch,
        optimizer=f"{cfg.optimizer} (lr {cfg.lr}, weight decay {cfg.weight_decay}"
        + (f", momentum {cfg.momentum}" if cfg.optimizer == "sgd" else "")
        + (", one-cycle)" if cfg.schedule == "one-cycle" else ")"),
        augmentation=_augmentation(cfg),
        class_weighting=cfg.class_weighting,
        base_model=fit.base.ref if fit.base else None,
        frozen_encoder=cfg.freeze_encoder,
        packages=_packages(),
        wall_time_s=round(wall, 1),
        device=_device_name(fit.device),
        validation_split="val" if fit.val_loss is not None else None,
        trials=trials,
        per_class_recall=fit.per_class_recall,
    )


def _augmentation(cfg: TrainConfig) -> str:
    kinds = (["random flips and 90-degree rotations"] if cfg.augment else []) + (
        [cfg.intensity.describe()] if cfg.intensity else []
    )
    return "; ".join(kinds) or "none"


def _packages() -> dict[str, str]:
    return {**package_versions("cellhub", "timm", "numpy", "safetensors"), "torch": torch.__version__}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads, {platform.machine()})"
