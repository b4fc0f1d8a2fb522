"""Contract layer: pydantic cards with a YAML round trip and JSON Schema export."""

from hub.cards._yaml import dump_card, load_card, parse_card, save_card
from hub.cards.dataset import (
    Acquisition, Channel, ChannelStats, Counts, DatasetCard, FrameInterval, LabelSchema, Modality,
    PhysicalSize, SplitInfo, Statistics, Task, Terms,
)

SCHEMAS = {"dataset": DatasetCard}

__all__ = [
    "Acquisition", "Channel", "ChannelStats", "Counts", "DatasetCard", "FrameInterval", "LabelSchema",
    "Modality", "PhysicalSize", "SCHEMAS", "SplitInfo", "Statistics", "Task", "Terms", "dump_card",
    "load_card", "parse_card", "save_card",
]
