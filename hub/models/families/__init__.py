"""The built-in model families; importing this package registers them."""

from hub.models.families import classification, labelfree, rcnn, segmentation, spatial, tracking  # noqa: F401
