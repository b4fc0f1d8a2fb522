"""Exports of a model: a Hugging Face model card folder and a bioimage.io model package (``rdf.yaml``).

``export(model, "hf" | "bioimageio", out)`` writes the new folder ``out`` atomically (complete or not at all)
and returns the names of the files written.

- ``hf``: ``README.md`` (YAML front matter with ``model-index`` results, then the card in prose) next to the
  model's ``card.yaml`` and ``weights.safetensors``; ``huggingface_hub.ModelCard.load`` parses it.
- ``bioimageio``: an ``rdf.yaml`` (model spec 0.5) with the input/output axes, the card's normalisation as
  pre-processing, TorchScript weights traced from the network (bioimage.io's ``pytorch_state_dict`` is a
  pickle, which the hub never writes), test input/output tensors computed by running the model, and a README.
  Tracking models export their per-frame detector network.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import tifffile
import torch
import yaml
from torch import nn

from hub._atomic import new_folder
from hub.cards import ModelCard, Training, save_card
from hub.errors import BuildError, InvalidInput
from hub.models._family import Family
from hub.models.model import CARD, WEIGHTS, Model
from hub.safety import inside

FORMATS = ("hf", "bioimageio")

# hub task -> Hugging Face task id (pipeline tag / model-index task type)
HF_TASKS = {
    "classification": "image-classification",
    "semantic-segmentation": "image-segmentation",
    "instance-segmentation": "image-segmentation",
    "tracking": "image-segmentation",
    "label-free": "image-to-image",
}
# hub task -> bioimage.io "task" tag category
BIOIMAGEIO_TASKS = {
    "classification": "image-classification",
    "semantic-segmentation": "semantic-segmentation",
    "instance-segmentation": "instance-segmentation",
    "tracking": "instance-segmentation",
    "label-free": "in-silico-labeling",
}
BIOIMAGEIO_MODALITIES = {
    "fluorescence": "fluorescence-light-microscopy",
    "confocal-fluorescence": "fluorescence-light-microscopy",
    "phase-contrast": "transmission-light-microscopy",
    "bright-field": "transmission-light-microscopy",
    "dark-field": "transmission-light-microscopy",
    "DIC": "transmission-light-microscopy",
    "histology": "whole-slide-imaging",
    "other": "other",
}
BIOIMAGEIO_FORMAT_VERSION = "0.5.4"
TORCHSCRIPT = "weights.torchscript.pt"
TEST_INPUT, TEST_OUTPUT = "test_input.npy", "test_output.npy"
SAMPLE_INPUT, SAMPLE_OUTPUT = "sample_input.tif", "sample_output.tif"
TEST_EDGE = 256  # largest test tensor edge (pixels)
DOI = re.compile(r"\b(10\.\d{4,9}/[^\s,;]+[^\s,;.)])")
URL = re.compile(r"https?://[^\s,;]+[^\s,;.)]")


def export(
    model: Model, fmt: str, out: str | Path, sample: np.ndarray | None = None, source: str | Path | None = None
) -> list[str]:
    """Export ``model`` as ``fmt`` (``hf`` or ``bioimageio``) into the new folder ``out``; returns file names.

    ``sample`` is a raw (C, Y, X) image for the bioimage.io test tensors (default: a synthetic image);
    ``source`` the model's folder, whose weights file is then copied byte for byte.
    """
    if fmt == "hf":
        return export_hf(model, out, source)
    if fmt == "bioimageio":
        return export_bioimageio(model, out, sample, source)
    raise InvalidInput(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")


def sample_image(model: Model, source: str | Path) -> np.ndarray:
    """The first raw image (a test-split one for a dataset) of an image file, folder or curated dataset."""
    from hub.models.predict import samples

    for split in ("test", None):
        for _, image in samples(model, source, split):
            return image
    raise InvalidInput("no image to use as the test input", source)


# -- shared ---------------------------------------------------------------------------------------------------
def _write_folder(out: str | Path, write: Callable[[Path], None]) -> list[str]:
    """Run ``write(tmp)`` in a new folder that becomes ``out`` when complete; returns the files written."""
    with new_folder(out) as tmp:
        write(tmp)
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
    return files


def _copy_model(model: Model, folder: Path, source: str | Path | None) -> ModelCard:
    """``card.yaml`` + ``weights.safetensors`` of ``model`` into ``folder``; returns the card written.

    The weights are copied byte for byte from ``source`` (the model's folder) when its file matches the card's
    SHA-256; otherwise they are serialised again (the same tensors; safetensors headers are not byte-stable, so
    the card written then records the new file's SHA-256). The model itself is left unchanged.
    """
    card = model.card.model_copy(deep=True)
    src = inside(source, card.weights.file, "weights file") if source is not None else None
    if src is not None and src.is_file() and _sha256(src) == card.weights.sha256:
        shutil.copyfile(src, folder / WEIGHTS)
        card.weights.file = WEIGHTS
        save_card(card, folder / CARD)
        return card
    scratch = folder / f".model-{uuid.uuid4().hex[:8]}"
    copied = Model(card, model.net, model.family)
    copied.save(scratch)
    for name in (CARD, WEIGHTS):
        os.replace(scratch / name, folder / name)
    scratch.rmdir()
    return copied.card


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def _normalization_text(card: ModelCard) -> str:
    norm = card.inputs.normalization
    if norm.mode == "image-percentile":
        return (
            f"per image and channel, percentile {norm.low:g} maps to 0 and percentile {norm.high:g} to 1 "
            f"(`image-percentile`)"
        )
    pairs = ", ".join(f"{c}: (x - {o:.6g}) * {s:.6g}" for c, o, s in zip(card.channel_names, norm.offset, norm.scale))
    return f"fixed per channel from the training data's train split (`{norm.mode}`): {pairs}"


def _prose(card: ModelCard) -> list[str]:
    """The card in Markdown sections (shared by both exports)."""
    arch, inputs, outputs, w = card.architecture, card.inputs, card.outputs, card.weights
    lines = [f"# {card.title}", ""]
    if card.description:
        lines += [card.description, ""]
    lines += [
        f"`{card.ref}`: a CellHub **{card.task}** model of family `{arch.family}` on the timm backbone "
        f"`{arch.backbone}` ({w.parameters:,} parameters, regularisation: {arch.regularization}"
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
                + "; ".join(f"{tr.hyperparameters} -> val loss {_fmt(tr.val_loss)}" for tr in t.trials)
            ]
        if t.per_class_recall:
            lines += [
                "- validation recall per class: " + ", ".join(f"{k} {_fmt(v)}" for k, v in t.per_class_recall.items())
            ]
        lines += [""]
    lines += ["## Evaluation", ""]
    if card.results:
        lines += ["| benchmark | split | metric | value |", "|---|---|---|---|"]
        for r in card.results:
            for k, v in r.metrics.items():
                primary = k == r.primary_metric
                ci = f" (95% CI {r.ci95[0]:.4g} to {r.ci95[1]:.4g})" if primary and r.ci95 else ""
                lines += [f"| {r.benchmark} | {r.split} | {'**' + k + '**' if primary else k} | {_fmt(v)}{ci} |"]
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


# -- Hugging Face ---------------------------------------------------------------------------------------------
def _hf_card(card: ModelCard):
    from huggingface_hub import EvalResult, ModelCardData
    from huggingface_hub import ModelCard as HFModelCard

    task = HF_TASKS[card.task]
    results = []
    for r in card.results:
        name = r.benchmark.split("@")[0]
        for k, v in r.metrics.items():
            if v is None:
                continue
            results.append(
                EvalResult(
                    task_type=task,
                    task_name=card.task,
                    dataset_type=name,
                    dataset_name=r.benchmark,
                    dataset_split=r.split,
                    dataset_revision=r.split_sha256,
                    metric_type=k,
                    metric_value=v,
                    metric_name=f"{k} (primary)" if k == r.primary_metric else k,
                )
            )
    tags = ["cellhub", "microscopy", card.task, card.architecture.family, card.architecture.backbone]
    tags += sorted({c.modality for c in card.inputs.channels} - set(tags))
    data = ModelCardData(
        license=card.license.lower(),
        library_name="cellhub",
        tags=tags,
        pipeline_tag=None if card.task == "tracking" else task,
        datasets=[card.training.dataset.split("@")[0]] if card.training else None,
        metrics=sorted({e.metric_type for e in results}) or None,
        model_name=card.name,
        eval_results=results or None,
    )
    body = _prose(card)
    usage = [
        "## How to use",
        "",
        "```python",
        "import hub",
        "",
        f'model = hub.load_model("{card.ref}")  # or the folder holding card.yaml and weights.safetensors',
        "masks, tracks = model.predict(movie)  # raw (T, Y, X) or (T, C, Y, X), any frame size"
        if card.task == "tracking"
        else "prediction = model.predict(image)  # raw (C, Y, X) or (Y, X) array of any size",
        "```",
        "",
        f"The full card is `{CARD}`; the weights are safetensors only.",
        "",
    ]
    at = body.index("## Weights")
    body = body[:at] + usage + body[at:]
    template = "---\n{{ card_data }}\n---\n\n{{ body }}"
    return HFModelCard.from_template(data, template_str=template, body="\n".join(body))


def export_hf(model: Model, out: str | Path, source: str | Path | None = None) -> list[str]:
    """A Hugging Face model repository folder: ``README.md`` + ``card.yaml`` + ``weights.safetensors``
    (``source``: the model's folder, to copy its weights file byte for byte)."""

    def write(tmp: Path) -> None:
        card = _copy_model(model, tmp, source)
        _hf_card(card).save(tmp / "README.md")

    return _write_folder(out, write)


# -- bioimage.io ----------------------------------------------------------------------------------------------
class _Activated(nn.Module):
    """The network followed by the family's activation (softmax, sigmoid...) and test-time views if the card
    asks for them: the maps ``Model.maps`` stitches."""

    def __init__(self, net: nn.Module, family: Family):
        super().__init__()
        self.net, self.family = net, family

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.family.infer(self.net, x)


def _output_channels(model: Model, n: int) -> list[str]:
    card, name = model.card, model.family.name
    if name in ("deep-watershed", "detect-link"):
        names = ["background", "interior", "boundary"]
    elif name == "embeddings":
        names = ["foreground"] + [f"embedding{i}" for i in range(1, n)]
    else:
        names = list(card.outputs.classes or card.outputs.channels or [])
    return names if len(names) == n else [f"channel{i}" for i in range(n)]


def _geometry(card: ModelCard, tiled: bool) -> tuple[int, int, int]:
    """(minimum edge, step, halo) of the input's spatial axes."""
    m = card.inputs.size_multiple
    if not tiled:  # a classifier pools globally: any edge from one network stride up
        return m, 1, 0
    halo = card.inputs.halo
    return m * max(1, -(-(2 * halo + 1) // m)), m, halo


def _synthetic(card: ModelCard, edge: int) -> np.ndarray:
    """A deterministic stand-in image (smooth background and bright blobs) when no real sample is given."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    c = len(card.inputs.channels)
    spots = (rng.random((c, edge, edge)) > 0.998).astype(np.float32)
    img = ndi.gaussian_filter(spots, (0, 3, 3)) * 4000 + ndi.gaussian_filter(rng.random((c, edge, edge)), (0, 8, 8))
    return (img * 100 + 100).astype(np.float32)


def _test_input(model: Model, sample: np.ndarray | None) -> tuple[np.ndarray, bool]:
    """A raw (C, Y, X) float32 test image of a size the rdf allows: the sample, cropped to at most one tile and
    ``TEST_EDGE`` pixels (so that ``Model.maps`` runs it whole, as bioimage.io does)."""
    card, tiled = model.card, model.family.tiled
    low, step, _ = _geometry(card, tiled)
    if sample is None:
        edge = max(low, min(card.inputs.tile, TEST_EDGE))
        return _synthetic(card, low + (edge - low) // step * step if tiled else 64), False
    img = np.asarray(sample)
    n = len(card.inputs.channels)
    if card.task == "tracking" and (img.ndim == 4 or (img.ndim == 3 and img.shape[0] != n)):
        img = img[0]  # a movie (T, [C,] Y, X): its first frame
    img = model.channels_first(img, "sample").astype(np.float32)
    pad = [(0, 0)] + [(0, max(0, low - s)) for s in img.shape[1:]]
    if any(p for _, p in pad[1:]):
        img = np.pad(img, pad, mode="reflect" if all(p < s for (_, p), s in zip(pad[1:], img.shape[1:])) else "edge")
    if tiled:
        size = [max(low, min(s, card.inputs.tile, TEST_EDGE)) for s in img.shape[1:]]  # the image is >= low
        size = [s - (s - low) % step for s in size]
        y0, x0 = ((s - e) // 2 for s, e in zip(img.shape[1:], size))
        img = img[:, y0 : y0 + size[0], x0 : x0 + size[1]]
    return np.ascontiguousarray(img), True


def _cite(card: ModelCard) -> list[dict]:
    out = []
    for text in card.citation:
        doi, url = DOI.search(text), URL.search(text)
        if doi:
            out.append({"text": text, "doi": doi.group(1)})
        elif url:
            out.append({"text": text, "url": url.group(0)})
    return out


def _preprocessing(card: ModelCard) -> list[dict]:
    norm = card.inputs.normalization
    if norm.mode == "image-percentile":
        return [
            {
                "id": "scale_range",
                "kwargs": {
                    "axes": ["y", "x"],
                    "min_percentile": float(norm.low),
                    "max_percentile": float(norm.high),
                    "eps": 1e-6,
                },
            }
        ]
    if norm.mode == "dataset-meanstd":
        return [
            {
                "id": "fixed_zero_mean_unit_variance",
                "kwargs": {
                    "axis": "channel",
                    "mean": [float(o) for o in norm.offset],
                    "std": [float(1 / s) for s in norm.scale],
                },
            }
        ]
    return [
        {
            "id": "scale_linear",
            "kwargs": {
                "axis": "channel",
                "gain": [float(s) for s in norm.scale],
                "offset": [float(-o * s) for o, s in zip(norm.offset, norm.scale)],
            },
        }
    ]


def _rdf(
    model: Model, card: ModelCard, files: dict[str, str], y: np.ndarray, real_sample: bool, output_range: bool
) -> dict:
    inputs, tiled = card.inputs, model.family.tiled
    low, step, halo = _geometry(card, tiled)
    unit = _space_unit(card, range(low, 8193, step) if tiled else ())
    space_in = [{"type": "space", "id": a, "size": {"min": low, "step": step}, **unit} for a in ("y", "x")]
    out_axes: list[dict] = [
        {"type": "batch"},
        {"type": "channel", "channel_names": _output_channels(model, y.shape[1])},
    ]
    if tiled:
        out_axes += [
            {
                "type": "space",
                "id": a,
                "size": {"tensor_id": "input", "axis_id": a},
                **unit,
                **({"halo": halo} if halo else {}),
            }
            for a in ("y", "x")
        ]
    data = {"type": "float32", **({"range": [0.0, 1.0]} if output_range else {})}
    tags = [
        "cellhub",
        "2d",
        "pytorch",
        BIOIMAGEIO_TASKS[card.task],
        card.task,
        card.architecture.family,
        card.architecture.backbone,
    ]
    tags += [BIOIMAGEIO_MODALITIES.get(c.modality, "other") for c in inputs.channels]
    if "resnet" in card.architecture.backbone:
        tags.append("resnet")
    if tiled:
        tags.append("unet")
    tags = list(dict.fromkeys(tags))
    name = re.sub(r"[^A-Za-z0-9_+\- ()]+", " ", card.title.replace(":", " -")).strip()
    name = re.sub(r"\s+", " ", name)[:128]
    if len(name) < 5:
        name = f"{card.name} model"[:128]
    training = card.training
    description = card.description or card.title
    if card.task == "tracking":
        description += " (bioimage.io package of the per-frame detector; linking is not part of it)"
    return {
        "format_version": BIOIMAGEIO_FORMAT_VERSION,
        "type": "model",
        "name": name,
        "description": description[:1024],
        "version": card.version,
        "authors": [{"name": a} for a in card.authors],
        "cite": _cite(card),
        "license": card.license,
        "tags": tags,
        "documentation": "README.md",
        "timestamp": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "inputs": [
            {
                "id": "input",
                "description": f"raw image, channels {', '.join(card.channel_names)}"[:128],
                "axes": [{"type": "batch"}, {"type": "channel", "channel_names": card.channel_names}, *space_in],
                "data": {"type": "float32"},
                "test_tensor": {"source": TEST_INPUT, "sha256": files[TEST_INPUT]},
                "sample_tensor": {"source": SAMPLE_INPUT, "sha256": files[SAMPLE_INPUT]},
                "preprocessing": _preprocessing(card),
            }
        ],
        "outputs": [
            {
                "id": "output",
                "description": card.outputs.meaning[:128]
                if not tiled or card.task == "label-free"
                else f"{model.family.name} maps before post-processing"[:128],
                "axes": out_axes,
                "data": data,
                "test_tensor": {"source": TEST_OUTPUT, "sha256": files[TEST_OUTPUT]},
                "sample_tensor": {"source": SAMPLE_OUTPUT, "sha256": files[SAMPLE_OUTPUT]},
            }
        ],
        "weights": {
            "torchscript": {
                "source": TORCHSCRIPT,
                "sha256": files[TORCHSCRIPT],
                "pytorch_version": torch.__version__.split("+")[0],
                "comment": f"traced from {card.weights.file} (SHA-256 {card.weights.sha256}), activation included",
            }
        },
        "config": {
            "bioimageio": {
                "architecture_type": card.architecture.family[:32],
                "architecture_description": f"{card.architecture.family} on timm {card.architecture.backbone}",
                "model_parameter_count": card.weights.parameters,
                "task": card.task,
                **({"training": _training_details(training)} if training else {}),
                # the spec caps the absolute tolerance at 1% of the test output's maximum
                "reproducibility_tolerance": [
                    {
                        "output_ids": ["output"],
                        "relative_tolerance": 1e-3,
                        "absolute_tolerance": float(min(1e-3, 0.01 * y.max())),
                        "mismatched_elements_per_million": 100,
                    }
                ],
            },
            "cellhub": {
                "ref": card.ref,
                "weights_sha256": card.weights.sha256,
                "training_dataset": training.dataset if training else None,
                "test_tensor_source": "real image" if real_sample else "synthetic image",
            },
        },
    }


def _space_unit(card: ModelCard, sizes) -> dict:
    """The axes' physical unit and scale, in a unit where an output sized by reference to the input keeps its
    size under the spec's ``int(size * scale / scale)`` (0.24 micrometer would turn 88 into 87; 240 nanometer
    does not); none at all when no unit passes (the pixel size stays in the card and README)."""
    px = card.inputs.pixel_size
    if px is None:
        return {}
    nm = round(px.value * {"nanometer": 1, "micrometer": 1e3, "millimeter": 1e6}[px.unit], 6)
    for unit, scale in ((px.unit, float(px.value)), ("nanometer", nm)):
        if all(int(n * scale / scale) == n for n in sizes):
            return {"unit": unit, "scale": scale}
    return {}


def _training_details(t: Training) -> dict:
    hp = t.hyperparameters
    details = {
        "training_epochs": t.epochs,
        "training_batch_size": hp.get("batch_size"),
        "initial_learning_rate": hp.get("lr"),
        "optimizer": t.optimizer,
        "training_duration": round(t.wall_time_s / 3600, 4),
    }  # hours
    return {k: v for k, v in details.items() if v is not None}


def _bioimageio_readme(card: ModelCard, real_sample: bool) -> str:
    lines = _prose(card)
    at = lines.index("## Weights")
    lines = (
        lines[:at]
        + [
            "## Validation",
            "",
            "Scores come from CellHub benchmarks (`cellhub eval`), evaluated on their held-out test splits (see "
            "Evaluation above). The test tensors of this package were computed by running the network on a "
            + ("real image" if real_sample else "synthetic image")
            + ".",
            "",
            "## This package",
            "",
            f"`{TORCHSCRIPT}` is the network traced with TorchScript from the safetensors weights, activation included "
            "(class or pixel probabilities, predicted channels); the hub's post-processing (argmax, watershed, "
            "clustering, linking) is not part of it. Pre-processing follows the card's normalisation.",
            "",
        ]
        + lines[at:]
    )
    return "\n".join(lines)


def export_bioimageio(
    model: Model, out: str | Path, sample: np.ndarray | None = None, source: str | Path | None = None
) -> list[str]:
    """A bioimage.io model package folder: ``rdf.yaml``, TorchScript weights, test tensors, sample TIFFs, README
    and the hub's ``card.yaml`` + ``weights.safetensors``. ``sample``: raw (C, Y, X) image for the test tensors;
    ``source``: the model's folder, to copy its weights file byte for byte."""
    raw, real = _test_input(model, sample)

    def write(tmp: Path) -> None:
        card = _copy_model(model, tmp, source)
        net = _Activated(copy.deepcopy(model.net).float().cpu().eval(), model.family).eval()
        x = torch.from_numpy(model.normalize(raw))[None]
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # torch.jit's deprecation notice and tracer notes
            y = net(x).float()
            traced = torch.jit.trace(net, x, check_trace=False)
            drift = float((traced(x).float() - y).abs().max())
            if drift > 1e-4:
                raise BuildError(
                    f"the traced network differs from the model by {drift:.3g} on the test input; "
                    f"{model.family.name} cannot be exported as TorchScript"
                )
            torch.jit.save(traced, str(tmp / TORCHSCRIPT))
        y = y.numpy()
        if not y.max() >= 0:  # the validator caps the reproducibility tolerance at 1% of the maximum
            raise BuildError(
                f"bioimage.io needs a test output whose maximum is not negative; the model predicts at "
                f"most {y.max():.3g} on the test input; export with another sample image"
            )
        np.save(tmp / TEST_INPUT, raw[None])
        np.save(tmp / TEST_OUTPUT, y)
        for name, arr in ((SAMPLE_INPUT, raw), (SAMPLE_OUTPUT, y[0])):  # planes, not RGB; a 1-D row as is
            tifffile.imwrite(tmp / name, arr, photometric="minisblack" if arr.ndim > 1 else None)
        files = {f: _sha256(tmp / f) for f in (TORCHSCRIPT, TEST_INPUT, TEST_OUTPUT, SAMPLE_INPUT, SAMPLE_OUTPUT)}
        probabilities = model.family.name in ("classifier", "unet", "deep-watershed", "detect-link")
        rdf = _rdf(model, card, files, y, real, probabilities)
        (tmp / "README.md").write_text(_bioimageio_readme(card, real), encoding="utf-8")
        with open(tmp / "rdf.yaml", "w", encoding="utf-8") as fh:
            yaml.safe_dump(rdf, fh, sort_keys=False, allow_unicode=True)

    return _write_folder(out, write)


__all__ = ["FORMATS", "export", "export_bioimageio", "export_hf", "sample_image"]
