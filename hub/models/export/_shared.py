"""What the exports share: the new folder written atomically, the model's card and weights copied into it, and
the card in Markdown prose (both READMEs)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

from hub._atomic import new_folder
from hub.cards import ModelCard, save_card
from hub.models.model import CARD, WEIGHTS, Model, write_weights
from hub.safety import inside


def write_folder(out: str | Path, write: Callable[[Path], None]) -> list[str]:
    """Run ``write(tmp)`` in a new folder that becomes ``out`` when complete; returns the files written."""
    with new_folder(out) as tmp:
        write(tmp)
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
    return files


def copy_model(model: Model, folder: Path, source: str | Path | None) -> ModelCard:
    """``card.yaml`` + ``weights.safetensors`` of ``model`` into ``folder``; returns the card written.

    The weights are copied byte for byte from ``source`` (the model's folder) when its file matches the card's
    SHA-256; otherwise they are serialised again (the same tensors; safetensors headers are not byte-stable, so
    the card written then records the new file's SHA-256). The model itself is left unchanged.
    """
    card = model.card.model_copy(deep=True)
    src = inside(source, card.weights.file, "weights file") if source is not None else None
    if src is not None and src.is_file() and sha256(src) == card.weights.sha256:
        shutil.copyfile(src, folder / WEIGHTS)
        card.weights.file = WEIGHTS
        save_card(card, folder / CARD)
        return card
    weights = write_weights(model.net, folder / WEIGHTS, card.weights.dtype, card.name, card.version)
    card = card.model_copy(update={"weights": weights})
    save_card(card, folder / CARD)
    return card


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def _normalization_text(card: ModelCard) -> str:
    norm = card.inputs.normalization
    if norm.mode == "image-percentile":
        return (
            f"per image and channel, percentile {norm.low:g} maps to 0 and percentile {norm.high:g} to 1 "
            f"(`image-percentile`)"
        )
    offset, scale = norm.offset or [], norm.scale or []  # both set in the dataset modes (the card validates it)
    pairs = ", ".join(f"{c}: (x - {o:.6g}) * {s:.6g}" for c, o, s in zip(card.channel_names, offset, scale))
    return f"fixed per channel from the training data's train split (`{norm.mode}`): {pairs}"


def prose(card: ModelCard) -> list[str]:
    """The card in Markdown sections (shared by both exports)."""
    arch, inputs, outputs, w = card.architecture, card.inputs, card.outputs, card.weights
    lines = [f"# {card.title}", ""]
    if card.description:
        lines += [card.description, ""]
    lines += [
        f"`{card.ref}`: a CellHub **{card.task}** model of family `{arch.family}` on the timm backbone "
        f"`{arch.backbone}`"
        + (f", a deep ensemble of {arch.members} networks whose outputs are averaged" if arch.members else "")
        + f" ({w.parameters:,} parameters, regularisation: {arch.regularization}"
        + (f", dropout {arch.dropout:g}" if arch.dropout else "")
        + ").",
        "",
    ]
    if arch.options:
        lines += ["Family options: " + ", ".join(f"`{k}={v}`" for k, v in sorted(arch.options.items())), ""]
    lines += [
        "## Intended use",
        "",
        card.intended_use or "Not stated by the model's authors.",
        "",
        "## Limitations",
        "",
        card.limitations or "Not stated by the model's authors.",
        "",
    ]
    lines += ["## Inputs", "", "| channel | modality |", "|---|---|"]
    lines += [f"| {c.name} | {c.modality} |" for c in inputs.channels]
    px = f"{inputs.pixel_size.value:g} {inputs.pixel_size.unit}" if inputs.pixel_size else "not recorded"
    lines += [
        "",
        f"- axes `{inputs.axes}`, network input dtype {inputs.dtype}",
        f"- normalisation: {_normalization_text(card)}",
        f"- expected physical pixel size: {px}",
        f"- tiled inference: tiles of {inputs.tile} px with a halo of {inputs.halo} px; network input edges "
        f"are multiples of {inputs.size_multiple}",
        "",
    ]
    lines += ["## Outputs", "", f"{outputs.meaning} (axes `{outputs.axes}`)."]
    if outputs.classes:
        lines += ["", "Classes: " + ", ".join(f"`{c}`" for c in outputs.classes) + "."]
    if outputs.channels:
        lines += ["", "Channels: " + ", ".join(f"`{c}`" for c in outputs.channels) + "."]
    lines += [""]
    t = card.training
    if t is not None:
        lines += [
            "## Training",
            "",
            f"- dataset: `{t.dataset}`"
            + (f" (split manifest SHA-256 `{t.dataset_manifest_sha256}`)" if t.dataset_manifest_sha256 else ""),
            f"- split: `{t.split}`, validation: `{t.validation_split or 'none'}`",
            f"- epochs: {t.epochs} (best {t.best_epoch}), seed {t.seed}",
            f"- optimizer: {t.optimizer}",
            f"- augmentation: {t.augmentation}",
            f"- class weighting: {t.class_weighting}",
        ]
        if t.base_model:
            lines += [f"- fine-tuned from `{t.base_model}`" + (" with a frozen encoder" if t.frozen_encoder else "")]
        hyper = ", ".join(f"{k}={v}" for k, v in t.hyperparameters.items() if v is not None)
        lines += [
            f"- hyper-parameters: {hyper}",
            "- packages: " + ", ".join(f"{k} {v}" for k, v in sorted(t.packages.items())),
            f"- wall time {t.wall_time_s:g} s on {t.device}",
        ]
        if t.trials:
            lines += [
                f"- grid of {len(t.trials)} trials, best kept on validation: "
                + "; ".join(f"{tr.hyperparameters} -> val loss {fmt(tr.val_loss)}" for tr in t.trials)
            ]
        if t.per_class_recall:
            lines += [
                "- validation recall per class: " + ", ".join(f"{k} {fmt(v)}" for k, v in t.per_class_recall.items())
            ]
        lines += [""]
    lines += ["## Evaluation", ""]
    if card.results:
        lines += ["| benchmark | split | metric | value |", "|---|---|---|---|"]
        for r in card.results:
            for k, v in r.metrics.items():
                primary = k == r.primary_metric
                ci = f" (95% CI {r.ci95[0]:.4g} to {r.ci95[1]:.4g})" if primary and r.ci95 else ""
                lines += [f"| {r.benchmark} | {r.split} | {'**' + k + '**' if primary else k} | {fmt(v)}{ci} |"]
        lines += ["", "The primary metric of each benchmark is in bold."]
    else:
        lines += ["No benchmark results recorded yet."]
    lines += [
        "",
        "## Weights",
        "",
        f"`{w.file}` (safetensors, {w.dtype}, {w.size:,} bytes), SHA-256 `{w.sha256}`.",
        "",
        "## Licence",
        "",
        f"{card.license}",
        "",
    ]
    if card.citation:
        lines += ["## Citation", ""] + [f"- {c}" for c in card.citation] + [""]
    return lines
