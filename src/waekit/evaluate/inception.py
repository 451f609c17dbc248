"""The FID Inception graph re-expressed as an eager PyTorch module, with batch norm folded.

The TorchScript file (see :mod:`waekit.evaluate.fid`) computes, in every conv layer,
relu(batch_norm(conv(x, W), mean, var, beta, eps=1e-3)) with no batch-norm scale. Batch norm
in inference is affine per output channel, so it folds into the convolution:

    W' = W * s,   b' = beta - mean * s,   s = 1 / sqrt(var + eps)      (s per output channel)

and each layer becomes one conv with bias followed by an in-place relu, in channels_last
memory (where oneDNN's convs and torch's pools run faster on the CPU) without the
per-branch ``contiguous()`` copies of the scripted blocks. The pools are eager modules with
the scripted ones' exact arguments (read from their code). The features equal the
TorchScript reference up to float32 round-off (the fold reorders a multiply and an add); a
test checks 1e-4 relative. bench/fid_speed.py measures each step's gain.

The same folded layers also build an OpenVINO graph (:func:`openvino_inception`), op for op,
with OpenVINO's graph-construction API (no model-conversion tool is run). On a CPU its
runtime computes the same fp32 features about 1.3x faster than the eager module
(docs/performance.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["FoldedInception", "fold_inception", "openvino_inception"]

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

    def openvino(self, x: Any, ops: Any) -> Any:
        c = self.conv
        weight = ops.constant(c.weight.detach().contiguous().numpy())
        y = ops.convolution(x, weight, list(c.stride), list(c.padding), list(c.padding), [1, 1])
        bias = ops.constant(c.bias.detach().reshape(1, -1, 1, 1).numpy())
        return ops.relu(ops.add(y, bias))


class _MaxPool(nn.MaxPool2d):
    def openvino(self, x: Any, ops: Any) -> Any:
        k, s, p = (list(_pair(v)) for v in (self.kernel_size, self.stride, self.padding))
        return ops.max_pool(x, s, list(_pair(self.dilation)), p, p, k, _rounding(self)).output(0)


class _AvgPool(nn.AvgPool2d):
    def openvino(self, x: Any, ops: Any) -> Any:
        k, s, p = (list(_pair(v)) for v in (self.kernel_size, self.stride, self.padding))
        exclude_pad = not self.count_include_pad
        return ops.avg_pool(x, s, p, p, k, exclude_pad, _rounding(self))


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _rounding(pool: nn.MaxPool2d | nn.AvgPool2d) -> str:
    return "ceil" if pool.ceil_mode else "floor"


def _eager_pool(module: torch.jit.ScriptModule) -> nn.Module:
    """The eager pool with a scripted pool's arguments, read from its code: max pools call
    ``_max_pool2d(input, kernel, stride, padding, dilation, ceil_mode, ...)`` and average
    pools ``avg_pool2d(input, kernel, stride, padding[, ceil_mode, count_include_pad])``."""
    code = module.code.split("(input,", 1)[-1]
    lists = [[int(v) for v in m.split(",")] for m in re.findall(r"\[\s*(\d+\s*,\s*\d+)\s*\]", code)]
    flags = [f == "True" for f in re.findall(r"\b(True|False)\b", code)]
    if module.original_name == "MaxPool2d" and len(lists) == 4:
        kernel, stride, padding, dilation = lists
        return _MaxPool(kernel, stride, padding, dilation, ceil_mode=bool(flags and flags[0]))
    if module.original_name == "AvgPool2d" and len(lists) == 3:
        kernel, stride, padding = lists
        ceil_mode, count_include_pad = (flags + [False, True][len(flags) :])[:2]
        return _AvgPool(kernel, stride, padding, ceil_mode, count_include_pad)
    raise ValueError(f"cannot read the pooling arguments of the FID network's {module.code!r}")


# Each container wires its children once, for both back ends: ``call(child, x)`` runs a
# child (its forward, or its ``openvino``) and ``cat(parts)`` concatenates on channels.
Call = Callable[[nn.Module, Any], Any]
Cat = Callable[[list[Any]], Any]


class _Container(nn.Module):
    def wire(self, x: Any, call: Call, cat: Cat) -> Any:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wire(x, lambda m, v: m(v), lambda parts: torch.cat(parts, 1))

    def openvino(self, x: Any, ops: Any) -> Any:
        return self.wire(x, lambda m, v: m.openvino(v, ops), lambda parts: ops.concat(parts, 1))


class _Tower(_Container):
    """A chain of layers (the scripted Sequential)."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def wire(self, x: Any, call: Call, cat: Cat) -> Any:
        for layer in self.layers:
            x = call(layer, x)
        return x


class _Branches(_Container):
    """Inception blocks A to D: branches applied to the same input, concatenated on C."""

    def __init__(self, branches: list[nn.Module]):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def wire(self, x: Any, call: Call, cat: Cat) -> Any:
        return cat([call(b, x) for b in self.branches])


class _BlockE(_Container):
    """Inception block E: two branches split into a 1x3 and a 3x1 conv each."""

    def __init__(self, block: torch.jit.ScriptModule):
        super().__init__()
        names = (
            "conv tower_conv tower_mixed_conv tower_mixed_conv_1 tower_1_conv tower_1_conv_1 "
            "tower_1_mixed_conv tower_1_mixed_conv_1 tower_2_conv"
        ).split()
        self.layers = nn.ModuleDict({k: _ConvReLU(getattr(block, k)) for k in names})
        self.pool = _eager_pool(block.tower_2_pool)

    def wire(self, x: Any, call: Call, cat: Cat) -> Any:
        c = self.layers
        a = call(c["tower_conv"], x)
        b = call(c["tower_1_conv_1"], call(c["tower_1_conv"], x))
        parts = [
            call(c["conv"], x),
            call(c["tower_mixed_conv"], a),
            call(c["tower_mixed_conv_1"], a),
            call(c["tower_1_mixed_conv"], b),
            call(c["tower_1_mixed_conv_1"], b),
            call(c["tower_2_conv"], call(self.pool, x)),
        ]
        return cat(parts)


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
        return _eager_pool(module)
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


def openvino_inception(folded: FoldedInception, threads: int | None = None) -> Any:
    """``folded``'s graph compiled by OpenVINO for the CPU: a callable from a float32 array
    (n, 3, 299, 299) to its (n, 2048) features, any n. Inference runs in fp32
    (``INFERENCE_PRECISION_HINT``: OpenVINO would otherwise pick bf16 on CPUs that have it)
    on ``threads`` threads (default: torch's), not pinned to cores. Raises ImportError
    without openvino."""
    import openvino
    import openvino.opset13 as ops

    x = ops.parameter([-1, 3, 299, 299], openvino.Type.f32, name="images")
    with torch.no_grad():
        pool = folded.layers.openvino(x, ops)
    features = ops.reshape(pool, ops.constant([-1, 2048]), special_zero=False)
    model = openvino.Model([features], [x], "fid-inception")
    config = {
        "INFERENCE_PRECISION_HINT": "f32",
        "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
        # no pinning: OpenVINO would pin its threads to the first cores, so that two
        # single-thread processes (e.g. jobs run side by side) shared one core
        "ENABLE_CPU_PINNING": False,
    }
    return openvino.Core().compile_model(model, "CPU", config).create_infer_request()
