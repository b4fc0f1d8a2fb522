"""Training and fine-tuning: one loop for every family, deterministic, early-stopped on the validation split.

A :class:`TrainConfig` is also the schema of a training recipe (``model_cards/<name>/recipe.yaml``).
"""

from __future__ import annotations

import itertools
import platform
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    Task,
    Training,
    Trial,
    Weights,
    format_validation_error,
)
from hub.data import ClassificationDataset, LabelFreeDataset, Normalizer, SegmentationDataset
from hub.dataset import open_dataset
from hub.errors import CardError, InvalidInput
from hub.models._family import Family, build_network, create_family, family_for_task
from hub.models.model import Model
from hub.models.nets import encoder_parameters
from hub.registry import local_path
from hub.safety import MAX_CARD_BYTES, load_yaml_file


class TrainConfig(BaseModel):
    """What to train on what, and how. Every field has a sensible default except name, task and dataset."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str = "0.1.0"
    title: str | None = None
    description: str = ""
    task: Task
    family: str | None = Field(None, description="Model family (default: the task's default family)")
    dataset: str = Field(description="Curated dataset folder, or name@version pulled from the registry")
    registry: str | None = None
    backbone: str = "resnet18"
    options: dict[str, Any] = Field(default_factory=dict, description="Family options (depth, thresholds...)")
    channels: list[str] | None = Field(None, description="Input channels (default: all, or the label-free inputs)")
    targets: list[str] | None = Field(None, description="Label-free target channels (default: the card's)")
    label: str | None = Field(None, description="Label image to train on (default: the family's)")
    frames: list[int] | None = Field(None, description="Train on these frames of each movie only (few-shot)")
    normalize: Literal["image", "dataset"] | None = Field(
        None,
        description="image: per-image p1/p99.8; dataset: the train statistics (default: dataset for "
        "classification, image otherwise)",
    )
    epochs: int = Field(20, gt=0)
    steps_per_epoch: int | None = Field(None, gt=0, description="Batches per epoch (default: one pass)")
    batch_size: int = Field(8, gt=0)
    patch: int = Field(256, gt=0)
    foreground: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Fraction of training patches centred on a labelled "
        "pixel (dense tasks; the rest are drawn uniformly)",
    )
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    momentum: float = 0.9
    lr_schedule: Literal["constant", "one-cycle"] | None = Field(
        None,
        description="one-cycle: warm-up then cosine decay over all steps (default: one-cycle for sgd, "
        "constant for adamw)",
    )
    weight_decay: float = Field(1e-4, ge=0, description="L2 weight decay")
    regularization: Literal["batchnorm", "dropout", "batchnorm+dropout", "none"] = "batchnorm"
    dropout: float = Field(0.0, ge=0, lt=1)
    augment: bool = True
    class_weighting: Literal["none", "balanced", "resample"] = "none"
    patience: int = Field(5, ge=1, description="Epochs without validation improvement before stopping")
    val_batches: int | None = Field(
        None,
        gt=0,
        description="Validation batches (default: the whole split for "
        "classification, 8 random patch batches otherwise)",
    )
    seed: int = 0
    workers: int = Field(0, ge=0)
    device: str = "auto"
    base_model: str | None = Field(None, description="name@version / model folder to fine-tune, or timm:<name>")
    freeze_encoder: bool = False
    weights_dtype: Literal["float32", "float16"] = "float32"
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="Hyper-parameter grid: field -> values")
    tune_postprocess: bool | dict[str, list[Any]] = Field(
        False,
        description="After training, tune the post-processing thresholds on the val split (else train), as "
        "`cellhub models tune` does: true for the family's grid, or a grid (option -> values)",
    )
    benchmarks: list[str] = Field(
        default_factory=list, description="Benchmarks the trained model is evaluated on (e.g. dsb2018-fluo/instance)"
    )
    license: str = "MIT"
    authors: list[str] = Field(default_factory=list)
    citation: list[str] = Field(default_factory=list)
    intended_use: str = ""
    limitations: str = ""


def load_recipe(path: str | Path, **overrides: Any) -> TrainConfig:
    """A training recipe (YAML) with command-line ``overrides``; errors name the file and field."""
    path = Path(path)
    try:
        data = load_yaml_file(path, MAX_CARD_BYTES, "recipe") or {}
    except FileNotFoundError:
        raise InvalidInput("recipe not found", path) from None
    except InvalidInput as err:
        raise CardError(err.problem, path) from None
    if not isinstance(data, dict):
        raise CardError(f"a recipe is a mapping of settings, not a {type(data).__name__}", path)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as err:
        raise CardError(format_validation_error(err), path) from None
    _check_options(cfg, path)
    return cfg


def _check_options(cfg: TrainConfig, source: str | Path | None = None) -> None:
    """Refuse unknown or out-of-bounds family options before anything is loaded (a fine-tuned model's are
    checked with its base model's options merged in, when the base is loaded)."""
    if cfg.base_model is None or cfg.base_model.startswith("timm:"):
        create_family(cfg.family or family_for_task(cfg.task), cfg.options, source)


def train(cfg: TrainConfig, out: str | Path) -> Model:
    """Train (or fine-tune) by ``cfg``, run its grid if any, and save the best model to ``out``."""
    start = time.perf_counter()
    trials: list[tuple[TrainConfig, _Fit]] = []
    keys = list(cfg.grid)
    configs = []
    for values in itertools.product(*(cfg.grid[k] for k in keys)) if keys else [()]:
        trial_cfg = cfg.model_copy(update=dict(zip(keys, values)))
        try:
            trial_cfg = TrainConfig.model_validate(trial_cfg.model_dump())
        except ValidationError as err:
            raise InvalidInput(f"grid: {format_validation_error(err)}") from None
        _check_options(trial_cfg)  # every trial's options, before the first one trains
        configs.append(trial_cfg)
    dataset = local_path("datasets", cfg.dataset, cfg.registry)
    for trial_cfg in configs:
        trials.append((trial_cfg, _fit(trial_cfg, dataset)))
    best_cfg, best = min(trials, key=lambda t: t[1].score)
    card = _card(best_cfg, best, dataset, trials if keys else [], time.perf_counter() - start)
    model = Model(card, best.net.cpu(), best.family)
    model.save(out)
    if cfg.tune_postprocess:
        from hub.models.tuning import tune

        tune(out, dataset, grid=cfg.tune_postprocess if isinstance(cfg.tune_postprocess, dict) else None)
        model = Model.load(out)
    return model


class _Fit:
    def __init__(
        self,
        net,
        family,
        data: DatasetCard,
        channels,
        targets,
        normalization,
        epochs,
        best_epoch,
        val_loss,
        device,
        base,
        per_class_recall,
    ):
        self.net, self.family, self.data, self.channels, self.targets = net, family, data, channels, targets
        self.normalization, self.epochs, self.best_epoch, self.val_loss = normalization, epochs, best_epoch, val_loss
        self.device, self.base, self.per_class_recall = device, base, per_class_recall

    @property
    def score(self) -> float:
        return self.val_loss if self.val_loss is not None else float("inf")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _fit(cfg: TrainConfig, dataset: Path) -> _Fit:
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    device = _device(cfg.device)
    base = _load_base(cfg)
    arch = Architecture(
        family=cfg.family or family_for_task(cfg.task),
        backbone=cfg.backbone,
        options=dict(cfg.options),
        regularization=cfg.regularization,
        dropout=cfg.dropout,
    )
    if base is not None and base.card is not None:  # fine-tune a hub model: its network, new options, and
        # the recipe's family if it names one (e.g. a deep-watershed detector fine-tuned into a detect-link tracker)
        arch = base.card.architecture.model_copy(
            update={
                "family": cfg.family or base.card.architecture.family,
                "options": {**base.card.architecture.options, **cfg.options},
            }
        )
    family = create_family(arch.family, arch.options)
    if family.task != cfg.task:
        raise InvalidInput(f"family {arch.family!r} does {family.task}, not {cfg.task}")
    if cfg.foreground and cfg.task in ("classification", "label-free"):
        raise InvalidInput(f"foreground applies to segmentation and tracking, not to {cfg.task}")
    ds = open_dataset(dataset)
    card = ds.card
    train_set, val_set, channels, targets, norm = _datasets(cfg, family, dataset, card)
    n_out = len(targets) if cfg.task == "label-free" else family.n_outputs(card)
    net = build_network(family, arch, len(channels), n_out, pretrained=base is not None and base.card is None)
    if base is not None and base.card is not None:
        _load_matching(net, base.model.net)
    frozen = encoder_parameters(net) if cfg.freeze_encoder else []
    for p in frozen:
        p.requires_grad_(False)
    net.to(device, memory_format=torch.channels_last)  # NHWC convolutions: about 25% faster on CPU
    loader = _loader(cfg, family, train_set, device)
    params = [p for p in net.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.steps_per_epoch or len(loader)
    sched = (
        torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps, pct_start=0.1)
        if _schedule(cfg) == "one-cycle"
        else None
    )
    best_state, best_loss, best_epoch, bad, epoch = None, None, 0, 0, 0
    with progress_bar(transient=False) as bar:
        task = bar.add_task(f"training {cfg.name}", total=cfg.epochs * steps)
        for epoch in range(1, cfg.epochs + 1):
            if hasattr(train_set, "set_epoch"):
                train_set.set_epoch(epoch)
            net.train()
            if frozen and hasattr(net, "encoder"):
                net.encoder.eval()
            losses = []
            for _, (x, y) in zip(range(steps), loader):
                x = x.to(device, memory_format=torch.channels_last) if x.dim() == 4 else x.to(device)
                loss = family.loss(net(x), y.to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                losses.append(loss.item())
                bar.update(task, advance=1, description=f"training {cfg.name} epoch {epoch} loss {losses[-1]:.4f}")
            line = f"{cfg.name} epoch {epoch}/{cfg.epochs}: train loss {np.mean(losses):.4f}"
            if val_set is None:
                bar.console.print(line, highlight=False)
                continue
            val_loss = _evaluate(net, family, val_set, cfg, device)
            improved = best_loss is None or val_loss < best_loss
            bar.console.print(f"{line}, val loss {val_loss:.4f}{' (best)' if improved else ''}", highlight=False)
            if improved:
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                best_loss, best_epoch, bad = val_loss, epoch, 0
            else:
                bad += 1
                if bad >= cfg.patience:
                    break
    if best_state is not None:
        net.load_state_dict(best_state)
    else:
        best_epoch = epoch
    net.to(memory_format=torch.contiguous_format)  # safetensors stores contiguous tensors
    recall = _per_class_recall(net, family, val_set, cfg, device, card) if cfg.task == "classification" else None
    return _Fit(net.eval(), family, card, channels, targets, norm, epoch, best_epoch, best_loss, device, base, recall)


def _schedule(cfg: TrainConfig) -> str:
    return cfg.lr_schedule or ("one-cycle" if cfg.optimizer == "sgd" else "constant")


def _datasets(cfg: TrainConfig, family: Family, path: Path, card: DatasetCard):
    """Train and validation datasets (validation None when the dataset has no ``val`` split)."""
    mode = cfg.normalize or ("dataset" if cfg.task == "classification" else "image")
    norm_arg = "image" if mode == "image" else "percentile"
    targets: list[str] = []
    if cfg.task == "classification":
        channels = list(cfg.channels or card.channel_names)

        def make(split, augment, seed):
            return ClassificationDataset(path, split, channels=channels, normalize=norm_arg, augment=augment, seed=seed)
    elif cfg.task == "label-free":
        channels = list(cfg.channels or card.labels.inputs or [])
        targets = list(cfg.targets or card.labels.targets or [])

        def make(split, augment, seed, n=None):
            return LabelFreeDataset(
                path,
                split,
                patch=cfg.patch,
                samples_per_epoch=n,
                normalize=norm_arg,
                augment=augment,
                seed=seed,
                inputs=channels,
                targets=targets,
            )
    else:
        channels = list(cfg.channels or card.channel_names)
        label = cfg.label or family.label or "instances"

        def make(split, augment, seed, n=None):
            return _Targets(
                SegmentationDataset(
                    path,
                    split,
                    patch=cfg.patch,
                    samples_per_epoch=n,
                    label=label,
                    channels=channels,
                    normalize=norm_arg,
                    augment=augment,
                    seed=seed,
                    frames=cfg.frames if split == "train" else None,
                    foreground=cfg.foreground if split == "train" else 0.0,
                ),
                family,
            )

    if cfg.task == "classification":
        train_set = make("train", cfg.augment, cfg.seed)
        val_set = _maybe(lambda: make("val", False, cfg.seed))
        if val_set is not None and cfg.val_batches:  # evenly spaced subset of the split
            n = min(len(val_set), cfg.val_batches * cfg.batch_size)
            val_set = torch.utils.data.Subset(val_set, np.linspace(0, len(val_set) - 1, n).round().astype(int).tolist())
    else:
        n_train = (cfg.steps_per_epoch or 0) * cfg.batch_size or None
        train_set = make("train", cfg.augment, cfg.seed, n_train)
        val_set = _maybe(lambda: make("val", False, cfg.seed + 1, (cfg.val_batches or 8) * cfg.batch_size))
    if mode == "image":
        normalization = Normalization(mode="image-percentile", low=1.0, high=99.8)
    else:
        n = Normalizer(card, channels, "percentile")
        normalization = Normalization(
            mode="dataset-percentile", offset=n.offset.ravel().tolist(), scale=n.scale.ravel().tolist()
        )
    return train_set, val_set, channels, targets, normalization


def _maybe(make):
    try:
        return make()
    except InvalidInput:  # no such split
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


def _loader(cfg: TrainConfig, family: Family, data, device) -> torch.utils.data.DataLoader:
    gen = torch.Generator().manual_seed(cfg.seed)
    sampler, shuffle = None, True
    if cfg.task == "classification" and cfg.class_weighting != "none":
        targets = np.asarray(data.targets)
        counts = np.bincount(targets, minlength=family.n_outputs(data.data.card)).astype(np.float64)
        if cfg.class_weighting == "balanced":
            weight = counts.sum() / (len(counts) * np.maximum(counts, 1))
            family.class_weight = torch.tensor(weight, dtype=torch.float32)
        else:
            sampler = torch.utils.data.WeightedRandomSampler(1.0 / counts[targets], len(targets), generator=gen)
            shuffle = False
    return torch.utils.data.DataLoader(
        data,
        batch_size=cfg.batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        generator=gen,
        num_workers=cfg.workers,
        drop_last=True,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )


@torch.no_grad()
def _evaluate(net, family: Family, data, cfg: TrainConfig, device) -> float:
    net.eval()
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers)
    total, n = 0.0, 0
    weight, family_weight = None, getattr(family, "class_weight", None)
    if family_weight is not None:  # validation loss is unweighted, comparable across weightings
        weight, family.class_weight = family_weight, None
    for x, y in loader:
        total += float(family.loss(net(x.to(device)), y.to(device))) * len(x)
        n += len(x)
    if weight is not None:
        family.class_weight = weight
    return total / max(n, 1)


@torch.no_grad()
def _per_class_recall(net, family, data, cfg, device, card: DatasetCard) -> dict[str, float] | None:
    if data is None:
        return None
    net.eval()
    preds, truth = [], []
    for x, y in torch.utils.data.DataLoader(data, batch_size=64, shuffle=False):
        preds.append(net(x.to(device)).argmax(1).cpu().numpy())
        truth.append(np.asarray(y))
    p, t = np.concatenate(preds), np.concatenate(truth)
    classes = card.labels.classes or []
    return {c: float((p[t == k] == k).mean()) if (t == k).any() else float("nan") for k, c in enumerate(classes)}


class _Base:
    def __init__(self, model: Model | None, ref: str, card: ModelCard | None):
        self.model, self.ref, self.card = model, ref, card


def _load_base(cfg: TrainConfig) -> _Base | None:
    """The model to start from: a hub model (name@version or folder), or ``timm:<name>`` pretrained weights."""
    if cfg.base_model is None:
        return None
    if cfg.base_model.startswith("timm:"):
        return _Base(None, cfg.base_model, None)
    model = Model.load(local_path("models", cfg.base_model, cfg.registry))
    ref = (
        model.card.ref if not Path(cfg.base_model).exists() else f"{model.card.ref} ({model.card.weights.sha256[:12]})"
    )
    return _Base(model, ref, model.card)


def _load_matching(net: torch.nn.Module, base: torch.nn.Module) -> None:
    """Copy every base tensor whose name and shape match (a new head keeps its fresh initialisation)."""
    own = net.state_dict()
    same = {k: v.to(own[k].dtype) for k, v in base.state_dict().items() if k in own and own[k].shape == v.shape}
    if not same:
        raise InvalidInput("the base model shares no weights with this architecture")
    net.load_state_dict(same, strict=False)


def _card(cfg: TrainConfig, fit: _Fit, dataset: Path, trials: list, wall: float) -> ModelCard:
    data = fit.data
    by_name = {c.name: c for c in data.acquisition.channels}
    px = data.acquisition.pixel_size
    pixel = {"value": px.x, "unit": px.unit} if not px.unknown else None
    outputs = fit.family.outputs(data, fit.channels)
    if cfg.task == "label-free":
        outputs["channels"] = fit.targets
    hyper = {
        k: getattr(cfg, k)
        for k in (
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
        )
    }
    hyper.update({k: getattr(cfg, k) for k in ("foreground", "lr_schedule") if getattr(cfg, k)})
    hyper["options"] = dict(cfg.options)
    arch = Architecture(
        family=fit.family.name,
        backbone=cfg.backbone if fit.base is None or fit.base.card is None else fit.base.card.architecture.backbone,
        options=dict(fit.family.options),
        regularization=cfg.regularization,
        dropout=cfg.dropout,
    )
    training = Training(
        dataset=data.ref,
        dataset_manifest_sha256=data.splits.manifest_sha256 if data.splits else None,
        hyperparameters=hyper,
        seed=cfg.seed,
        epochs=fit.epochs,
        best_epoch=fit.best_epoch,
        optimizer=f"{cfg.optimizer} (lr {cfg.lr}, weight decay {cfg.weight_decay}"
        + (f", momentum {cfg.momentum}" if cfg.optimizer == "sgd" else "")
        + (", one-cycle)" if _schedule(cfg) == "one-cycle" else ")"),
        augmentation="random flips and 90-degree rotations" if cfg.augment else "none",
        class_weighting=cfg.class_weighting,
        base_model=fit.base.ref if fit.base else None,
        frozen_encoder=cfg.freeze_encoder,
        packages=_packages(),
        wall_time_s=round(wall, 1),
        device=_device_name(fit.device),
        validation_split="val" if fit.val_loss is not None else None,
        trials=[
            Trial(hyperparameters={k: getattr(c, k) for k in cfg.grid}, best_epoch=f.best_epoch, val_loss=f.val_loss)
            for c, f in trials
        ],
        per_class_recall=fit.per_class_recall,
    )
    return ModelCard(
        name=cfg.name,
        version=cfg.version,
        title=cfg.title or f"{cfg.name}: {fit.family.name} on {data.name}",
        description=cfg.description,
        task=cfg.task,
        architecture=arch,
        inputs=Inputs(
            channels=[InputChannel(name=c, modality=by_name[c].modality) for c in fit.channels],
            normalization=fit.normalization,
            pixel_size=pixel,
            size_multiple=int(getattr(fit.net, "size_multiple", 32)),
        ),
        outputs=Outputs(**outputs),
        weights=Weights(sha256="0" * 64, size=1, parameters=1, dtype=cfg.weights_dtype),
        training=training,
        license=cfg.license,
        authors=cfg.authors,
        citation=cfg.citation,
        intended_use=cfg.intended_use,
        limitations=cfg.limitations,
    )


def _packages() -> dict[str, str]:
    return {**package_versions("cellhub", "timm", "numpy", "safetensors"), "torch": torch.__version__}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads, {platform.machine()})"
