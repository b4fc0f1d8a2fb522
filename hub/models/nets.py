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


def encoder_parameters(net: nn.Module) -> list[nn.Parameter]:
    """Parameters of the pretrained part: the U-Net encoder, or everything but a classifier's head."""
    if isinstance(net, UNet):
        return list(net.encoder.parameters())
    head = set(map(id, net.get_classifier().parameters()))  # type: ignore[operator]  # a timm classifier
    return [p for p in net.parameters() if id(p) not in head]
