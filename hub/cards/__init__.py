"""Contract layer: pydantic cards with a YAML round trip and JSON Schema export."""

from pydantic import BaseModel

from hub.cards._yaml import dump_card, format_validation_error, load_card, parse_card, save_card
from hub.cards.benchmark import Benchmark, BenchmarkSpec, EvalResult, PeerRun
from hub.cards.dataset import (
    Acquisition,
    Channel,
    ChannelStats,
    Counts,
    DatasetCard,
    FrameInterval,
    Guard,
    GuardText,
    LabelSchema,
    Modality,
    PhysicalSize,
    SplitInfo,
    Statistics,
    Task,
    TaskKey,
    Terms,
)
from hub.cards.model import (
    Architecture,
    InputChannel,
    Inputs,
    ModelCard,
    Normalization,
    Outputs,
    PixelSize,
    ResultSummary,
    Training,
    Trial,
    Weights,
)

SCHEMAS: dict[str, type[BaseModel]] = {
    "dataset": DatasetCard,
    "model": ModelCard,
    "benchmark": Benchmark,
    "result": EvalResult,
}

__all__ = [
    "Benchmark",
    "BenchmarkSpec",
    "EvalResult",
    "PeerRun",
    "Acquisition",
    "Architecture",
    "InputChannel",
    "Inputs",
    "ModelCard",
    "Normalization",
    "Outputs",
    "PixelSize",
    "ResultSummary",
    "Training",
    "Trial",
    "Weights",
    "Channel",
    "ChannelStats",
    "Counts",
    "DatasetCard",
    "FrameInterval",
    "Guard",
    "GuardText",
    "LabelSchema",
    "Modality",
    "PhysicalSize",
    "SCHEMAS",
    "SplitInfo",
    "Statistics",
    "Task",
    "TaskKey",
    "Terms",
    "dump_card",
    "format_validation_error",
    "load_card",
    "parse_card",
    "save_card",
]
