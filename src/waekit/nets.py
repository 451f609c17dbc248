"""Networks: an MLP, the WAE paper's conv encoder/decoder family, a small conv net, the critic.

Images are (n, C, H, W) floats in [0, 1]. Decoders return LOGITS; the image is their
sigmoid (so a Bernoulli cost can use the logits directly).

The conv family follows the WAE paper's appendix and official code (docs/math.md, section 6):
encoder 4 convs of 128, 256, 512, 1024 filters (stride 2, TensorFlow 'SAME' padding,
batch norm, ReLU) then a linear layer to the code; decoder a linear layer to
(H/2^k, W/2^k, 1024), k transposed convs halving the filters (stride 2, BN, ReLU) and a
last stride-1 transposed conv to C channels. 28x28 images use 4x4 kernels and k = 2;
64x64 images use 5x5 kernels and k = 3. The decoder's grid doubles k times, so a conv net
takes sides divisible by 2^k (:func:`check_image_size` says which sizes fit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from waekit.errors import ConfigError

__all__ = [
    "conv_spec",
    "fits",
    "check_image_size",
    "ConvEncoder",
    "ConvDecoder",
    "MLPEncoder",
    "MLPDecoder",
    "LatentCritic",
    "build_networks",
]


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow 'SAME' padding: output = ceil(size / stride); returns (before, after, out)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


class SameConv2d(nn.Module):
    """Conv2d with TensorFlow's 'SAME' padding for a fixed input size (asymmetric if need be)."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, size: tuple[int, int]
    ) -> None:
        super().__init__()
        top, bottom, self.out_h = _same_padding(size[0], kernel, stride)
        left, right, self.out_w = _same_padding(size[1], kernel, stride)
        self.pad = nn.ZeroPad2d((left, right, top, bottom))
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


def _up_conv(c_in: int, c_out: int, kernel: int) -> nn.ConvTranspose2d:
    """Transposed conv that exactly doubles H and W: (H - 1) * 2 - 2p + k + op = 2H."""
    padding = (kernel - 1) // 2
    output_padding = 2 - kernel + 2 * padding
    return nn.ConvTranspose2d(c_in, c_out, kernel, 2, padding, output_padding)


def conv_spec(net: str, image_shape: tuple[int, int, int]) -> dict[str, Any]:
    """Filters (``enc``, ``dec``) and kernel size of the conv family for this image size."""
    c, h, w = image_shape
    if net == "small":
        return {"enc": (32, 64, 128), "dec": (128, 64, 32), "kernel": 4}
    if max(h, w) >= 64:  # CelebA 64x64 (WAE paper)
        return {"enc": (128, 256, 512, 1024), "dec": (1024, 512, 256, 128), "kernel": 5}
    return {"enc": (128, 256, 512, 1024), "dec": (1024, 512, 256), "kernel": 4}  # MNIST 28x28


def _doublings(net: str, h: int, w: int) -> int:
    """How many times the conv decoder doubles its base grid for h x w images."""
    return len(conv_spec(net, (1, h, w))["dec"]) - 1


def fits(net: str, h: int, w: int) -> bool:
    """Whether family ``net`` takes h x w images: the MLP any, a conv net sides divisible by
    2^k, k its decoder's doublings (4 below 64 pixels, 8 for 'conv' from 64 up)."""
    if net == "mlp":
        return True
    k = _doublings(net, h, w)
    return h % 2**k == 0 and w % 2**k == 0


def check_image_size(net: str, image_shape: tuple[int, int, int]) -> None:
    """Raise a :class:`~waekit.errors.ConfigError` naming the sizes that fit, and the fix to
    paste, when family ``net`` cannot take images of ``image_shape`` (C, H, W)."""
    _, h, w = image_shape
    if fits(net, h, w):
        return
    side = max(h, w)
    near = sorted(
        (s for s in range(max(8, side - 16), side + 17) if fits(net, s, s)),
        key=lambda s: (abs(s - side), s),
    )[:2]
    step = 2 ** _doublings(net, h, w)
    rule = " (4 below 64 pixels, 8 from 64 up)" if net == "conv" else ""
    raise ConfigError(
        f"images of {h}x{w} pixels do not fit model.net={net!r}: its decoder needs sides "
        f"divisible by {step}{rule}, e.g. {' or '.join(f'{s}x{s}' for s in sorted(near))}; "
        f"resize with --set data.image_size={near[0]}, or use --set model.net=mlp"
    )


def _norm(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


class ConvEncoder(nn.Module):
    """Strided convs (SAME padding, BN, ReLU), then a linear layer to ``out_dim`` numbers."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        out_dim: int,
        filters: Sequence[int],
        kernel: int,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        layers: list[nn.Module] = []
        size = (h, w)
        for f in filters:
            conv = SameConv2d(c, f, kernel, 2, size)
            layers += [conv, _norm(f, batch_norm), nn.ReLU(inplace=True)]
            size, c = (conv.out_h, conv.out_w), f
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c * size[0] * size[1], out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))  # (n, out_dim)


class ConvDecoder(nn.Module):
    """Linear to (filters[0], H/2^k, W/2^k), k = len(filters) - 1 doubling transposed convs
    (BN, ReLU), then a stride-1 transposed conv to C channels. Returns logits (n, C, H, W)."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int,
        filters: Sequence[int],
        kernel: int,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        ups = len(filters) - 1
        if h % (2**ups) or w % (2**ups):
            raise ConfigError(
                f"images of {h}x{w} pixels do not fit this decoder, which needs sides divisible "
                f"by {2**ups}; resize them (--set data.image_size=N) or use --set model.net=mlp"
            )
        self.base = (filters[0], h // 2**ups, w // 2**ups)
        self.fc = nn.Linear(latent_dim, filters[0] * self.base[1] * self.base[2])
        layers: list[nn.Module] = [nn.ReLU(inplace=True)]
        for f_in, f_out in zip(filters[:-1], filters[1:], strict=True):
            layers += [
                _up_conv(f_in, f_out, kernel),
                _norm(f_out, batch_norm),
                nn.ReLU(inplace=True),
            ]
        # Stride-1 'SAME' transposed conv: padding (k - 1) / 2, with one extra row/column
        # trimmed for even kernels (TF pads the end).
        self.up = nn.Sequential(*layers)
        self.out = nn.ConvTranspose2d(filters[-1], c, kernel, 1, (kernel - 1) // 2)
        self.trim = kernel % 2 == 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.up(self.fc(z).view(-1, *self.base))
        x = self.out(x)
        if self.trim:
            x = x[:, :, :-1, :-1]
        return x


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Flattened image -> ReLU hidden layers -> ``out_dim`` numbers."""

    def __init__(
        self, image_shape: tuple[int, int, int], out_dim: int, hidden: Sequence[int]
    ) -> None:
        super().__init__()
        self.net = _mlp([math.prod(image_shape), *hidden, out_dim])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class MLPDecoder(nn.Module):
    """Code -> ReLU hidden layers (``hidden`` reversed) -> logits of the image's shape."""

    def __init__(
        self, image_shape: tuple[int, int, int], latent_dim: int, hidden: Sequence[int]
    ) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.net = _mlp([latent_dim, *reversed(hidden), math.prod(image_shape)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.image_shape)


class LatentCritic(nn.Module):
    """The WAE-GAN discriminator on codes: ``layers`` hidden ReLU layers of ``hidden`` units,
    one logit out (docs/math.md, section 6: 4 x 512 for MNIST, 4 x 1024 for CelebA)."""

    def __init__(self, latent_dim: int, hidden: int = 512, layers: int = 4) -> None:
        super().__init__()
        self.net = _mlp([latent_dim, *([hidden] * layers), 1])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(-1)  # (n,) logits


def build_networks(
    net: str,
    image_shape: tuple[int, int, int],
    latent_dim: int,
    encoder_out: int,
    batch_norm: bool = True,
    mlp_hidden: Sequence[int] = (512, 512),
    decoder_batch_norm: bool | None = None,
) -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) of family ``net`` ('mlp', 'conv' or 'small') for these images.

    ``batch_norm`` applies to the conv encoder, and to the decoder unless
    ``decoder_batch_norm`` says otherwise."""
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(f"image_shape={tuple(image_shape)} is invalid: give (C, H, W)")
    if net == "mlp":
        return (
            MLPEncoder(image_shape, encoder_out, mlp_hidden),
            MLPDecoder(image_shape, latent_dim, mlp_hidden),
        )
    if net in ("conv", "small"):
        check_image_size(net, image_shape)
        spec = conv_spec(net, image_shape)
        decoder_norm = batch_norm if decoder_batch_norm is None else decoder_batch_norm
        return (
            ConvEncoder(image_shape, encoder_out, spec["enc"], spec["kernel"], batch_norm),
            ConvDecoder(image_shape, latent_dim, spec["dec"], spec["kernel"], decoder_norm),
        )
    raise ValueError(f"net={net!r} is invalid: choose 'mlp', 'conv' or 'small'")
