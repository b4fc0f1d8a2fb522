"""Networks on timm backbones: a U-Net decoder on a ``features_only`` encoder, and timm classifiers."""

from __future__ import annotations

from typing import Any

import timm
import torch
from torch import nn
from torch.nn import functional as F

from hub.errors import InvalidInput


def _block(cin: int, cout: int, dropout: float, norm: bool) -> nn.Sequential:
    """Two 3x3 convolutions, each with batch norm (``norm``) and ReLU, then optional channel dropout."""
    layers: list[nn.Module] = []
    for c in (cin, cout):
        layers.append(nn.Conv2d(c, cout, 3, padding=1, bias=not norm))
        layers += [nn.BatchNorm2d(cout)] if norm else []
        layers.append(nn.ReLU(inplace=True))
    layers += [nn.Dropout2d(dropout)] if dropout else []
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """U-Net: a timm encoder (``features_only``, first ``depth`` stages) and a light decoder.

    Each decoder stage upsamples x2, concatenates the encoder feature of that scale and applies two 3x3
    convolutions; a last stage returns to full resolution. Input edges must be multiples of
    :attr:`size_multiple`.
    """

    def __init__(
        self,
        backbone: str,
        in_chans: int,
        out_chans: int,
        depth: int = 4,
        decoder_channels: int = 32,
        norm: bool = True,
        dropout: float = 0.0,
        pretrained: bool = False,
    ):
        super().__init__()
        self.encoder = timm.create_model(
            backbone, features_only=True, pretrained=pretrained, in_chans=in_chans, out_indices=tuple(range(depth))
        )
        chans = self.encoder.feature_info.channels()  # type: ignore[union-attr, operator]
        self.size_multiple = int(self.encoder.feature_info.reduction()[-1])  # type: ignore[union-attr, operator]
        widths = [decoder_channels * 2 ** min(i, 3) for i in range(len(chans))]
        self.decoder = nn.ModuleList()
        c = chans[-1]
        for i in range(len(chans) - 2, -1, -1):
            self.decoder.append(_block(c + chans[i], widths[i], dropout, norm))
            c = widths[i]
        self.final = _block(c + in_chans, max(decoder_channels // 2, 8), 0.0, norm)
        self.head = nn.Conv2d(max(decoder_channels // 2, 8), out_chans, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        y = feats[-1]
        for block, skip in zip(self.decoder, reversed(feats[:-1])):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], 1))
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(self.final(torch.cat([y, x], 1)))


class Ensemble(nn.Module):
    """Independently trained networks of one architecture (a deep ensemble): their raw outputs averaged.

    Averaging before the family's activation keeps one network's interface (logits in, one activation out):
    for classifiers it is the ensemble's mean logit, for dense maps the mean of each map before its sigmoid,
    softmax or tanh. Members are ``members.0``, ``members.1``... in the weights file.
    """

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble has 2 or more members, got {len(members)}")
        self.members = nn.ModuleList(members)
        self.size_multiple = int(getattr(members[0], "size_multiple", 32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)


def classifier(
    backbone: str,
    in_chans: int,
    num_classes: int,
    dropout: float = 0.0,
    pretrained: bool = False,
    output_stride: int | None = None,
) -> nn.Module:
    """A timm classifier for any number of input channels (``drop_rate`` before the head).

    ``output_stride`` (8 or 16, for backbones that support it, e.g. ResNets) dilates the last stages instead of
    striding them, so small crops keep a feature map: 40 x 40 px gives 5 x 5 at 8 instead of 2 x 2 at 32.
    """
    extra: dict[str, Any] = {} if output_stride is None else {"output_stride": int(output_stride)}
    try:
        return timm.create_model(
            backbone, pretrained=pretrained, in_chans=in_chans, num_classes=num_classes, drop_rate=dropout, **extra
        )
    except TypeError as err:
        if extra and "output_stride" in str(err):
            raise InvalidInput(f"backbone {backbone!r} does not support output_stride") from None
        raise


def encoder_module(net: nn.Module) -> nn.Module | None:
    """The pretrained part of a network: the U-Net's or the R-CNN's timm encoder (``None`` for a classifier)."""
    if isinstance(net, UNet):
        return net.encoder
    backbone = getattr(net, "backbone", None)
    return backbone.encoder if isinstance(backbone, TimmFPN) else None


def encoder_parameters(net: nn.Module) -> list[nn.Parameter]:
    """Parameters of the pretrained part: the U-Net or R-CNN encoder, or everything but a classifier's head."""
    encoder = encoder_module(net)
    if encoder is not None:
        return list(encoder.parameters())
    head = set(map(id, net.get_classifier().parameters()))  # type: ignore[operator]  # a timm classifier
    return [p for p in net.parameters() if id(p) not in head]


class TimmFPN(nn.Module):
    """A timm ``features_only`` encoder with torchvision's feature pyramid: the backbone of the R-CNN families.

    The encoder's first ``depth`` stages are built (as the U-Net's ``depth``: fewer, smaller and faster), and the last
    ``levels`` of them feed the pyramid (``out_channels`` each); a max-pooled level is added on top, so the anchor
    generator sees ``levels + 1`` maps.
    """

    def __init__(
        self, backbone: str, in_chans: int, out_channels: int, depth: int, levels: int, pretrained: bool, norm: bool
    ):
        super().__init__()
        from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

        if not 1 <= levels <= depth:
            raise ValueError(f"levels must be 1..depth ({depth}), got {levels}")
        extra: dict[str, Any] = {} if norm else {"norm_layer": nn.Identity}
        self.encoder = timm.create_model(
            backbone,
            features_only=True,
            pretrained=pretrained,
            in_chans=in_chans,
            out_indices=tuple(range(depth - levels, depth)),
            **extra,
        )
        chans = self.encoder.feature_info.channels()  # type: ignore[union-attr, operator]
        self.fpn = FeaturePyramidNetwork(chans, out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.fpn({str(i): f for i, f in enumerate(self.encoder(x))})


def rcnn(
    backbone: str,
    in_chans: int,
    num_classes: int,
    *,
    masks: bool,
    fpn_channels: int,
    depth: int,
    levels: int,
    head_size: int,
    anchor_sizes: tuple[int, ...],
    scale: float,
    norm: bool,
    pretrained: bool = False,
    **heads: Any,
) -> nn.Module:
    """torchvision's Faster R-CNN (``masks=False``) or Mask R-CNN on a :class:`TimmFPN` backbone, for
    ``num_classes`` object classes (+ background), inputs already normalised (no mean/std of its own).

    ``anchor_sizes``: one size per pyramid level (``levels + 1``), each with the aspect ratios 0.5, 1, 2;
    ``scale``: the resize factor of every input (:class:`ScaledTransform`); ``head_size``: the width of the
    two-layer box head (torchvision's default, 1024, alone holds 4M parameters).
    ``heads``: torchvision's keyword arguments (``min_size``, ``max_size``, ``box_score_thresh``,
    ``box_nms_thresh``, ``box_detections_per_img``...).
    """
    from torchvision.models.detection import FasterRCNN, MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    if len(anchor_sizes) != levels + 1:
        raise ValueError(f"{levels} levels take {levels + 1} anchor sizes, got {len(anchor_sizes)}")
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead

    body = TimmFPN(backbone, in_chans, fpn_channels, depth, levels, pretrained, norm)
    anchors = AnchorGenerator(tuple((s,) for s in anchor_sizes), ((0.5, 1.0, 2.0),) * len(anchor_sizes))
    names = [str(i) for i in range(levels)]
    pools: dict[str, Any] = {
        "box_roi_pool": MultiScaleRoIAlign(names, 7, 2),
        "box_head": TwoMLPHead(fpn_channels * 7 * 7, head_size),
        "box_predictor": FastRCNNPredictor(head_size, num_classes + 1),
    }
    if masks:  # four 3x3 convolutions of the pyramid's width (torchvision's 256 would be 2.4M parameters)
        from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

        pools["mask_roi_pool"] = MultiScaleRoIAlign(names, 14, 2)
        pools["mask_head"] = MaskRCNNHeads(fpn_channels, [fpn_channels] * 4, 1)
        pools["mask_predictor"] = MaskRCNNPredictor(fpn_channels, fpn_channels, num_classes + 1)
    cls = MaskRCNN if masks else FasterRCNN
    net = cls(body, rpn_anchor_generator=anchors, **pools, **heads)
    net.transform = ScaledTransform(scale, in_chans)
    return net


class ScaledTransform(nn.Module):
    """The R-CNN input transform at a fixed ``scale`` (torchvision's resizes every image to one size; objects in
    microscopy have a physical size instead): images (and their boxes and masks) are resized by ``scale`` and
    batched (padded to multiples of 32); predictions are mapped back to the input's pixels. Inputs come
    normalised, so there is no mean/std here."""

    def __init__(self, scale: float, in_chans: int):
        super().__init__()
        from torchvision.models.detection.transform import GeneralizedRCNNTransform

        self.scale = float(scale)
        self.batcher = GeneralizedRCNNTransform(1, 1, [0.0] * in_chans, [1.0] * in_chans)

    def forward(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None):
        from torchvision.models.detection.image_list import ImageList
        from torchvision.models.detection.transform import resize_boxes

        out_images, out_targets = [], []
        for i, image in enumerate(images):
            size = image.shape[-2:]
            if self.scale != 1.0:
                image = F.interpolate(image[None], scale_factor=self.scale, mode="bilinear", align_corners=False)[0]
            out_images.append(image)
            if targets is not None:
                t = dict(targets[i])
                t["boxes"] = resize_boxes(t["boxes"], list(size), list(image.shape[-2:]))
                if "masks" in t and self.scale != 1.0:
                    t["masks"] = F.interpolate(t["masks"][:, None].float(), size=image.shape[-2:])[:, 0].byte()
                out_targets.append(t)
        sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in out_images]
        batch = self.batcher.batch_images(out_images, size_divisible=32)
        return ImageList(batch, sizes), (out_targets if targets is not None else None)

    def postprocess(self, result: list[dict], image_sizes: list, original_sizes: list) -> list[dict]:
        """Boxes mapped back to the input's pixels; Mask R-CNN's masks stay the head's small squares (N, 1, M, M),
        one per box (torchvision would paste each into a full-size image: N x H x W floats)."""
        masks = [r.pop("masks", None) for r in result]
        out = self.batcher.postprocess(result, image_sizes, original_sizes)
        for r, m in zip(out, masks):
            if m is not None:
                r["masks"] = m
        return out
