"""The FID Inception graph re-expressed as an eager PyTorch module, with batch norm folded.

The TorchScript file (see :mod:`waekit.evaluate.fid`) computes, in every conv layer,
relu(batch_norm(conv(x, W), mean, var, beta, eps=1e-3)) with no batch-norm scale. Batch norm
in inference is affine per output channel, so it folds into the convolution:

    W' = W * s,   b' = beta - mean * s,   s = 1 / sqrt(var + eps)      (s per output channel)

and each layer becomes one conv with bias followed by an in-place relu, in channels_last
memory (where oneDNN's convs and torch's pools run faster on the CPU) without the
per-branch ``contiguous()`` copies of the scripted blocks. Pools and concatenations are the
scripted module's own (its pooling submodules are called as they are). The features equal
the TorchScript reference up to float32 round-off (the fold reorders a multiply and an
add); a test checks 1e-4 relative. bench/fid_speed.py measures each step's gain.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FoldedInception", "fold_inception"]

BN_EPS = 1e-3  # the scripted layers' batch_norm epsilon


class _ConvReLU(nn.Module):
    """relu(conv(x, W') + b'): a scripted Conv2dLayer with its batch norm folded in."""

    def __init__(self, layer: torch.jit.ScriptModule):
        super().__init__()
        w = layer.weight.detach().double()
        s = 1.0 / torch.sqrt(layer.var.detach().double() + BN_EPS)  # (out,)
        bias = layer.beta.detach().double() - layer.mean.detach().double() * s
        stride, padding = layer.stride, layer.padding
        pad = tuple(padding) if isinstance(padding, (list, tuple)) else (padding, padding)
        self.conv = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride, pad)
        with torch.no_grad():
            self.conv.weight.copy_((w * s[:, None, None, None]).float())
            self.conv.bias.copy_(bias.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu_(self.conv(x))


class _Tower(nn.Module):
    """A chain of layers (the scripted Sequential)."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class _Branches(nn.Module):
    """Inception blocks A to D: branches applied to the same input, concatenated on C."""

    def __init__(self, branches: list[nn.Module]):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


class _BlockE(nn.Module):
    """Inception block E: two branches split into a 1x3 and a 3x1 conv each."""

    def __init__(self, block: torch.jit.ScriptModule):
        super().__init__()
        names = (
            "conv tower_conv tower_mixed_conv tower_mixed_conv_1 tower_1_conv tower_1_conv_1 "
            "tower_1_mixed_conv tower_1_mixed_conv_1 tower_2_conv"
        ).split()
        self.layers = nn.ModuleDict({k: _ConvReLU(getattr(block, k)) for k in names})
        self.pool = block.tower_2_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.layers
        a = c["tower_conv"](x)
        b = c["tower_1_conv_1"](c["tower_1_conv"](x))
        parts = [
            c["conv"](x),
            c["tower_mixed_conv"](a),
            c["tower_mixed_conv_1"](a),
            c["tower_1_mixed_conv"](b),
            c["tower_1_mixed_conv_1"](b),
            c["tower_2_conv"](self.pool(x)),
        ]
        return torch.cat(parts, 1)


# branch order of the scripted blocks' forward (the order of the concatenation)
_BRANCHES = {
    "InceptionA": ("conv", "tower", "tower_1", "tower_2"),
    "InceptionB": ("conv", "tower", "pool"),
    "InceptionC": ("conv", "tower", "tower_1", "tower_2"),
    "InceptionD": ("tower", "tower_1", "pool"),
}


def _convert(module: torch.jit.ScriptModule) -> nn.Module:
    kind = module.original_name
    if kind == "Conv2dLayer":
        return _ConvReLU(module)
    if kind in ("MaxPool2d", "AvgPool2d"):
        return module  # stateless; its exact pooling arguments stay the scripted ones
    if kind == "Sequential":
        return _Tower([_convert(child) for _, child in module.named_children()])
    if kind in _BRANCHES:
        return _Branches([_convert(getattr(module, name)) for name in _BRANCHES[kind]])
    if kind == "InceptionE":
        return _BlockE(module)
    raise ValueError(f"unexpected module {kind!r} in the FID network; it cannot be folded")


class FoldedInception(nn.Module):
    """(n, 3, 299, 299) float32 in [-1, 1) -> (n, 2048) pool features, as the scripted net."""

    def __init__(self, scripted: torch.jit.ScriptModule):
        super().__init__()
        inner = scripted.net if hasattr(scripted, "net") else scripted
        self.layers = _convert(inner.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 3:
            raise ValueError(f"the FID network takes 3-channel input, got {x.shape[1]}")
        return self.layers(x).reshape(-1, 2048)


def fold_inception(scripted: torch.jit.ScriptModule, channels_last: bool = True) -> nn.Module:
    """The eager, batch-norm-folded copy of the scripted FID network, in eval mode."""
    net = FoldedInception(scripted).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net
