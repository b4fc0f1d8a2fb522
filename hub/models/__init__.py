"""Models: families on timm backbones (registered by name), training and fine-tuning, tiled inference,
safetensors persistence and exports.

``create_family(name)`` / ``families()`` list what exists; ``train(TrainConfig(...), out)`` makes a model;
``load_model(ref)`` returns a ready :class:`Model` whose ``predict(array)`` works on raw images of any size.
"""

from hub.models import families as _families  # noqa: F401  (registers the built-in families)
from hub.models._family import Family, create_family, families, family_for_task, register_family
from hub.models.config import TrainConfig, load_recipe
from hub.models.model import Model
from hub.models.publish import check_model, publish_model
from hub.models.train import train


def load_model(ref: str, registry: str | None = None, device: str = "cpu") -> Model:
    """A model folder, or ``name[@version]`` pulled (verified, cached) from the registry, ready to predict."""
    from hub.registry import local_path

    return Model.load(local_path("models", ref, registry), device=device)


__all__ = [
    "Family",
    "Model",
    "TrainConfig",
    "check_model",
    "create_family",
    "families",
    "family_for_task",
    "load_model",
    "load_recipe",
    "publish_model",
    "register_family",
    "train",
]
