"""The Hugging Face export: a model repository folder whose ``README.md`` holds the card (YAML front matter with
``model-index`` results, then the card in prose) next to the model's ``card.yaml`` and ``weights.safetensors``;
``huggingface_hub.ModelCard.load`` parses it. Task types come from the task registry
(:attr:`hub.tasks.TaskSpec.hf_task`), the usage line from the family (:attr:`hub.models.Family.usage`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hub.cards import ModelCard
from hub.models.export._shared import copy_model, prose, write_folder
from hub.models.model import CARD, Model
from hub.tasks import get_task

if TYPE_CHECKING:
    from huggingface_hub import EvalResult
    from huggingface_hub import ModelCard as HFModelCard


def export_hf(model: Model, out: str | Path, source: str | Path | None = None) -> list[str]:
    """A Hugging Face model repository folder: ``README.md`` + ``card.yaml`` + ``weights.safetensors``
    (``source``: the model's folder, to copy its weights file byte for byte)."""

    def write(tmp: Path) -> None:
        card = copy_model(model, tmp, source)
        hf_card(card, model.family.usage).save(tmp / "README.md")

    return write_folder(out, write)


def hf_card(card: ModelCard, usage: str) -> HFModelCard:
    """The Hugging Face card of ``card``; ``usage``: the line of Python that predicts with it."""
    from huggingface_hub import ModelCard as HFModelCard
    from huggingface_hub import ModelCardData

    spec = get_task(card.task)
    results = _eval_results(card, spec.hf_task)
    tags = ["cellhub", "microscopy", card.task, card.architecture.family, card.architecture.backbone]
    tags += sorted({c.modality for c in card.inputs.channels} - set(tags))
    data = ModelCardData(
        license=card.license.lower(),
        library_name="cellhub",
        tags=tags,
        pipeline_tag=spec.hf_task if spec.hf_pipeline else None,
        datasets=[card.training.dataset.split("@")[0]] if card.training else None,
        metrics=sorted({e.metric_type for e in results}) or None,
        model_name=card.name,
        eval_results=results or None,
    )
    body = prose(card)
    at = body.index("## Weights")
    body = body[:at] + _how_to_use(card, usage) + body[at:]
    template = "---\n{{ card_data }}\n---\n\n{{ body }}"
    return HFModelCard.from_template(data, template_str=template, body="\n".join(body))


def _eval_results(card: ModelCard, task_type: str) -> list[EvalResult]:
    """One ``model-index`` entry per recorded metric of each benchmark result."""
    from huggingface_hub import EvalResult

    results = []
    for r in card.results:
        name = r.benchmark.split("@")[0]
        for k, v in r.metrics.items():
            if v is None:
                continue
            results.append(
                EvalResult(
                    task_type=task_type,
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
    return results


def _how_to_use(card: ModelCard, usage: str) -> list[str]:
    return [
        "## How to use",
        "",
        "```python",
        "import hub",
        "",
        f'model = hub.load_model("{card.ref}")  # or the folder holding card.yaml and weights.safetensors',
        usage,
        "```",
        "",
        f"The full card is `{CARD}`; the weights are safetensors only.",
        "",
    ]
