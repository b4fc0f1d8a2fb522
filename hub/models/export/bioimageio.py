"""The bioimage.io export: a model package folder with an ``rdf.yaml`` (model spec 0.5) holding the input/output
axes, the card's normalisation as pre-processing, TorchScript weights traced from the network (bioimage.io's
``pytorch_state_dict`` is a pickle, which the hub never writes), test input/output tensors computed by running the
model, and a README. Tags come from the task registry (:attr:`hub.tasks.TaskSpec.bioimageio_tag`); the output's
channel names, value range and description from the family. Tracking models export their per-frame detector."""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch
import yaml
from torch import nn

from hub.cards import ModelCard, Training
from hub.errors import BuildError, InvalidInput
from hub.models._family import Family
from hub.models.export._shared import copy_model, prose, sha256, write_folder
from hub.models.model import Model
from hub.tasks import get_task

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


def export_bioimageio(
    model: Model, out: str | Path, sample: np.ndarray | None = None, source: str | Path | None = None
) -> list[str]:
    """A bioimage.io model package folder: ``rdf.yaml``, TorchScript weights, test tensors, sample TIFFs, README
    and the hub's ``card.yaml`` + ``weights.safetensors``. ``sample``: raw (C, Y, X) image for the test tensors;
    ``source``: the model's folder, to copy its weights file byte for byte."""
    if not model.family.tensor_output:
        raise InvalidInput(
            f"a bioimage.io package holds a network from tensors to tensors; {model.family.name} returns lists of "
            "scored boxes: export it with --format hf"
        )
    raw, real = _test_input(model, sample)

    def write(tmp: Path) -> None:
        card = copy_model(model, tmp, source)
        x = torch.from_numpy(model.normalize(raw))[None]
        y = _trace(model, x, tmp / TORCHSCRIPT)
        if not y.max() >= 0:  # the validator caps the reproducibility tolerance at 1% of the maximum
            raise BuildError(
                f"bioimage.io needs a test output whose maximum is not negative; the model predicts at "
                f"most {y.max():.3g} on the test input; export with another sample image"
            )
        np.save(tmp / TEST_INPUT, raw[None])
        np.save(tmp / TEST_OUTPUT, y)
        for name, arr in ((SAMPLE_INPUT, raw), (SAMPLE_OUTPUT, y[0])):  # planes, not RGB; a 1-D row as is
            tifffile.imwrite(tmp / name, arr, photometric="minisblack" if arr.ndim > 1 else None)
        files = {f: sha256(tmp / f) for f in (TORCHSCRIPT, TEST_INPUT, TEST_OUTPUT, SAMPLE_INPUT, SAMPLE_OUTPUT)}
        rdf = _rdf(model, card, files, y, real)
        (tmp / "README.md").write_text(_readme(card, real), encoding="utf-8")
        with open(tmp / "rdf.yaml", "w", encoding="utf-8") as fh:
            yaml.safe_dump(rdf, fh, sort_keys=False, allow_unicode=True)

    return write_folder(out, write)


class _Activated(nn.Module):
    """The network followed by the family's activation (softmax, sigmoid...) and test-time views if the card
    asks for them: the maps ``Model.maps`` stitches."""

    def __init__(self, net: nn.Module, family: Family):
        super().__init__()
        self.net, self.family = net, family

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.family.infer(self.net, x)


def _trace(model: Model, x: torch.Tensor, path: Path) -> np.ndarray:
    """Trace the activated network on ``x`` into the TorchScript file ``path``; its output on ``x``."""
    net = _Activated(copy.deepcopy(model.net).float().cpu().eval(), model.family).eval()
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
        torch.jit.save(traced, str(path))
    return y.numpy()


# -- the test input ---------------------------------------------------------------------------------------------
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
    """A raw (C, Y, X) float32 test image of a size the rdf allows: the sample (a movie's first frame), cropped
    to at most one tile and ``TEST_EDGE`` pixels (so that ``Model.maps`` runs it whole, as bioimage.io does)."""
    card, tiled = model.card, model.family.tiled
    low, step, _ = _geometry(card, tiled)
    if sample is None:
        edge = max(low, min(card.inputs.tile, TEST_EDGE))
        return _synthetic(card, low + (edge - low) // step * step if tiled else 64), False
    img = np.asarray(sample)
    n = len(card.inputs.channels)
    if get_task(card.task).sequences and (img.ndim == 4 or (img.ndim == 3 and img.shape[0] != n)):
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


# -- rdf.yaml ---------------------------------------------------------------------------------------------------
def _rdf(model: Model, card: ModelCard, files: dict[str, str], y: np.ndarray, real_sample: bool) -> dict:
    description = card.description or card.title
    return {
        "format_version": BIOIMAGEIO_FORMAT_VERSION,
        "type": "model",
        "name": _name(card),
        "description": (description + model.family.bioimageio_note)[:1024],
        "version": card.version,
        "authors": [{"name": a} for a in card.authors],
        "cite": _cite(card),
        "license": card.license,
        "tags": _tags(card, model.family.tiled),
        "documentation": "README.md",
        "timestamp": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "inputs": [_input(model, card, files)],
        "outputs": [_output(model, card, files, y)],
        "weights": {
            "torchscript": {
                "source": TORCHSCRIPT,
                "sha256": files[TORCHSCRIPT],
                "pytorch_version": torch.__version__.split("+")[0],
                "comment": f"traced from {card.weights.file} (SHA-256 {card.weights.sha256}), activation included",
            }
        },
        "config": _config(card, y, real_sample),
    }


def _name(card: ModelCard) -> str:
    """The card's title in the characters the spec allows, 5 to 128 of them."""
    name = re.sub(r"[^A-Za-z0-9_+\- ()]+", " ", card.title.replace(":", " -")).strip()
    name = re.sub(r"\s+", " ", name)[:128]
    return name if len(name) >= 5 else f"{card.name} model"[:128]


def _tags(card: ModelCard, tiled: bool) -> list[str]:
    tags = [
        "cellhub",
        "2d",
        "pytorch",
        get_task(card.task).bioimageio_tag,
        card.task,
        card.architecture.family,
        card.architecture.backbone,
    ]
    tags += [BIOIMAGEIO_MODALITIES.get(c.modality, "other") for c in card.inputs.channels]
    if "resnet" in card.architecture.backbone:
        tags.append("resnet")
    if tiled:
        tags.append("unet")
    return list(dict.fromkeys(tags))


def _spatial(card: ModelCard, tiled: bool) -> tuple[list[dict], dict]:
    """The input's space axes and their physical unit (see :func:`_space_unit`)."""
    low, step, _ = _geometry(card, tiled)
    unit = _space_unit(card, range(low, 8193, step) if tiled else ())
    return [{"type": "space", "id": a, "size": {"min": low, "step": step}, **unit} for a in ("y", "x")], unit


def _input(model: Model, card: ModelCard, files: dict[str, str]) -> dict:
    space, _ = _spatial(card, model.family.tiled)
    return {
        "id": "input",
        "description": f"raw image, channels {', '.join(card.channel_names)}"[:128],
        "axes": [{"type": "batch"}, {"type": "channel", "channel_names": card.channel_names}, *space],
        "data": {"type": "float32"},
        "test_tensor": {"source": TEST_INPUT, "sha256": files[TEST_INPUT]},
        "sample_tensor": {"source": SAMPLE_INPUT, "sha256": files[SAMPLE_INPUT]},
        "preprocessing": _preprocessing(card),
    }


def _output(model: Model, card: ModelCard, files: dict[str, str], y: np.ndarray) -> dict:
    """The activated maps: the family's channel names, range [0, 1] for probabilities, the input's size (dense)."""
    family = model.family
    axes: list[dict] = [{"type": "batch"}, {"type": "channel", "channel_names": family.output_names(card, y.shape[1])}]
    if family.tiled:
        _, unit = _spatial(card, True)
        halo = _geometry(card, True)[2]
        axes += [
            {
                "type": "space",
                "id": a,
                "size": {"tensor_id": "input", "axis_id": a},
                **unit,
                **({"halo": halo} if halo else {}),
            }
            for a in ("y", "x")
        ]
    meaning = card.outputs.meaning if family.maps_are_prediction else f"{family.name} maps before post-processing"
    return {
        "id": "output",
        "description": meaning[:128],
        "axes": axes,
        "data": {"type": "float32", **({"range": [0.0, 1.0]} if family.probabilities else {})},
        "test_tensor": {"source": TEST_OUTPUT, "sha256": files[TEST_OUTPUT]},
        "sample_tensor": {"source": SAMPLE_OUTPUT, "sha256": files[SAMPLE_OUTPUT]},
    }


def _config(card: ModelCard, y: np.ndarray, real_sample: bool) -> dict:
    training = card.training
    return {
        "bioimageio": {
            "architecture_type": card.architecture.family[:32],
            "architecture_description": f"{card.architecture.network} (timm backbone)",
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
    }


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
    """The card's normalisation as bioimage.io pre-processing (the card validates that each mode has its fields)."""
    norm = card.inputs.normalization
    offset, scale = norm.offset or [], norm.scale or []
    if norm.mode == "image-percentile":
        assert norm.low is not None and norm.high is not None
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
                    "mean": [float(o) for o in offset],
                    "std": [float(1 / s) for s in scale],
                },
            }
        ]
    return [
        {
            "id": "scale_linear",
            "kwargs": {
                "axis": "channel",
                "gain": [float(s) for s in scale],
                "offset": [float(-o * s) for o, s in zip(offset, scale)],
            },
        }
    ]


def _space_unit(card: ModelCard, sizes: Iterable[int]) -> dict[str, Any]:
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


def _readme(card: ModelCard, real_sample: bool) -> str:
    lines = prose(card)
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
