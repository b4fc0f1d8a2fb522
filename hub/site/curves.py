"""Learning curves of the hub's baselines: ``model_cards/NAME/learning-curve.json``, written by ``cellhub models
learning-curve`` (:mod:`hub.bench.curve`), drawn as the score against the number of training images, from the
pretrained base model and from scratch, each point the mean over its seeds with a whisker of their spread, and
the base model's zero-shot score as a dashed level. The site shows a model's curve as this checkout holds it (as
it shows a peer's script); ``cellhub models learning-curve`` writes the same chart beside its ``curve.json``."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from hub._readers import read_json
from hub.baselines import model_cards_dir
from hub.cards import ModelCard, load_card
from hub.site.charts import Series, line_chart

CURVE = "learning-curve.json"
INITS = ("pretrained", "scratch")


def bundled_curve(card: ModelCard) -> dict[str, Any] | None:
    """The committed learning curve of the baseline that ``card`` is (its name, version and weights), or None: a
    registry's model of the same name with other weights is not that baseline."""
    folder = model_cards_dir() / card.name
    committed = folder / card.version / "card.yaml"
    if not (folder / CURVE).is_file() or not committed.is_file():
        return None
    if load_card(ModelCard, committed).weights.sha256 != card.weights.sha256:
        return None
    return read_json(folder / CURVE, "learning curve")


def curve_chart(curve: dict[str, Any], standalone: bool = False) -> Markup:
    """The chart of a curve (see the module's note); ``standalone``: with its own style, for a README."""
    pool, summary = int(curve["pool"]), curve["summary"]
    series = []
    for init in INITS:
        if init not in summary:
            continue
        s = summary[init]
        points = [
            (float(pool if n == "all" else n), float(m), float(s["std"].get(n, 0.0))) for n, m in s["mean"].items()
        ]
        seeds = len({p["seed"] for p in curve["points"] if p["init"] == init})
        series.append(Series(f"{init} ({seeds} seed{'s' if seeds != 1 else ''}, mean ± sd)", points))
    xs = sorted({x for s in series for x, _, _ in s.points})
    ticks = [(x, f"all ({pool})" if x == pool else f"{x:g}") for x in xs]
    zero = curve.get("zero_shot")
    return line_chart(
        series,
        f"{curve['recipe']}: {curve['metric']} on {curve['benchmark']} against training {curve['unit']}",
        f"training {curve['unit']}",
        curve["metric"],
        x_ticks=ticks,
        reference=("zero-shot", float(zero)) if zero is not None else None,
        standalone=standalone,
    )
