"""Networks: the WAE paper's conv architecture layer by layer, the MLP, the critic, the prior."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import waekit
from waekit import nets


def _trace(module: nn.Module, inputs: torch.Tensor, kinds: tuple[type, ...]) -> list[tuple]:
    """(layer, output shape without batch) for every layer of ``kinds``, in call order."""
    seen: list[tuple] = []
    hooks = [
        m.register_forward_hook(lambda mod, _inp, out: seen.append((mod, tuple(out.shape[1:]))))
        for m in module.modules()
        if isinstance(m, kinds)
    ]
    try:
        with torch.no_grad():
            module(inputs)
    finally:
        for h in hooks:
            h.remove()
    return seen


@pytest.fixture(scope="module")
def mnist_conv() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    return nets.build_networks("conv", (1, 28, 28), 8, 8)


@pytest.fixture(scope="module")
def celeba_conv() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    return nets.build_networks("conv", (3, 64, 64), 64, 64)


def test_mnist_conv_encoder_architecture(mnist_conv):
    encoder, _ = mnist_conv
    encoder.eval()
    convs = _trace(encoder, torch.rand(2, 1, 28, 28), (nn.Conv2d,))
    assert [shape for _, shape in convs] == [(128, 14, 14), (256, 7, 7), (512, 4, 4), (1024, 2, 2)]
    for conv, _ in convs:
        assert conv.kernel_size == (4, 4) and conv.stride == (2, 2)
    assert len([m for m in encoder.modules() if isinstance(m, nn.BatchNorm2d)]) == 4
    linears = _trace(encoder, torch.rand(2, 1, 28, 28), (nn.Linear,))
    assert [(lin.in_features, shape) for lin, shape in linears] == [(1024 * 2 * 2, (8,))]


def test_mnist_conv_decoder_architecture(mnist_conv):
    _, decoder = mnist_conv
    decoder.eval()
    z = torch.randn(2, 8)
    ((fc, fc_shape),) = _trace(decoder, z, (nn.Linear,))
    assert fc.in_features == 8 and fc_shape == (7 * 7 * 1024,)
    ups = _trace(decoder, z, (nn.ConvTranspose2d,))
    assert [shape for _, shape in ups[:-1]] == [(512, 14, 14), (256, 28, 28)]
    for layer, _ in ups[:-1]:
        assert layer.kernel_size == (4, 4) and layer.stride == (2, 2)
    last = ups[-1][0]
    assert last.out_channels == 1 and last.stride == (1, 1) and last.kernel_size == (4, 4)
    assert decoder(z).shape == (2, 1, 28, 28)
    assert len([m for m in decoder.modules() if isinstance(m, nn.BatchNorm2d)]) == 2


def test_mnist_conv_parameter_count(mnist_conv):
    encoder, decoder = mnist_conv
    d, k = 8, 4

    def conv(c_in: int, c_out: int) -> int:
        return c_in * c_out * k * k + c_out

    def bn(c: int) -> int:
        return 2 * c  # weight and bias

    def linear(a: int, b: int) -> int:
        return a * b + b

    filters = [1, 128, 256, 512, 1024]
    enc = sum(conv(a, b) + bn(b) for a, b in zip(filters[:-1], filters[1:], strict=True))
    enc += linear(1024 * 2 * 2, d)
    dec = linear(d, 7 * 7 * 1024)
    dec += conv(1024, 512) + bn(512) + conv(512, 256) + bn(256) + conv(256, 1)
    assert sum(p.numel() for p in encoder.parameters()) == enc
    assert sum(p.numel() for p in decoder.parameters()) == dec
    assert (enc, dec) == (11_050_632, 10_943_745)  # about 22M: the "10-40M" range


def test_celeba_conv_architecture(celeba_conv):
    encoder, decoder = celeba_conv
    encoder.eval()
    decoder.eval()
    convs = _trace(encoder, torch.rand(2, 3, 64, 64), (nn.Conv2d,))
    assert [shape for _, shape in convs] == [
        (128, 32, 32),
        (256, 16, 16),
        (512, 8, 8),
        (1024, 4, 4),
    ]
    for conv, _ in convs:
        assert conv.kernel_size == (5, 5) and conv.stride == (2, 2)
    assert encoder.head.in_features == 1024 * 4 * 4 and encoder.head.out_features == 64
    z = torch.randn(2, 64)
    ((fc, fc_shape),) = _trace(decoder, z, (nn.Linear,))
    assert fc_shape == (8 * 8 * 1024,)
    ups = _trace(decoder, z, (nn.ConvTranspose2d,))
    assert [shape for _, shape in ups] == [(512, 16, 16), (256, 32, 32), (128, 64, 64), (3, 64, 64)]
    for layer, _ in ups:
        assert layer.kernel_size == (5, 5)
    assert [layer.stride for layer, _ in ups] == [(2, 2)] * 3 + [(1, 1)]


@pytest.mark.parametrize(
    "size,kernel,stride,expected",
    [(28, 4, 2, (1, 1, 14)), (7, 4, 2, (1, 2, 4)), (64, 5, 2, (1, 2, 32)), (5, 3, 1, (1, 1, 5))],
)
def test_same_padding_matches_tensorflow(size, kernel, stride, expected):
    assert nets._same_padding(size, kernel, stride) == expected


def test_small_conv_and_mlp_shapes():
    torch.manual_seed(0)
    for net in ("small", "mlp"):
        for shape in [(1, 28, 28), (3, 64, 64)]:
            enc, dec = nets.build_networks(net, shape, 4, 8, mlp_hidden=(16,))
            assert enc(torch.rand(3, *shape)).shape == (3, 8)
            assert dec(torch.randn(3, 4)).shape == (3, *shape)


def test_batch_norm_can_be_turned_off():
    enc, dec = nets.build_networks("small", (1, 28, 28), 4, 4, batch_norm=False)
    for m in (enc, dec):
        assert not any(isinstance(layer, nn.BatchNorm2d) for layer in m.modules())


def test_build_networks_rejects_bad_input():
    with pytest.raises(ValueError, match="'resnet'"):
        nets.build_networks("resnet", (1, 28, 28), 4, 4)
    with pytest.raises(ValueError, match="image_shape"):
        nets.build_networks("mlp", (28, 28), 4, 4)
    with pytest.raises(ValueError, match="30x30"):
        nets.build_networks("small", (1, 30, 30), 4, 4)


def test_latent_critic_is_the_papers_mlp():
    critic = nets.LatentCritic(8, 512, 4)
    linears = [m for m in critic.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (8, 512),
        (512, 512),
        (512, 512),
        (512, 512),
        (512, 1),
    ]
    assert len([m for m in critic.modules() if isinstance(m, nn.ReLU)]) == 4
    assert critic(torch.randn(5, 8)).shape == (5,)


# -- decoding and the prior through a model ------------------------------------------------


def _tiny(name: str = "wae-mmd", **fields) -> waekit.models.LatentAutoEncoder:
    torch.manual_seed(0)
    return waekit.build_model(name, (1, 8, 8), 3, "mlp", mlp_hidden=(16,), **fields)


def test_decoder_output_is_in_the_unit_interval():
    model = _tiny().eval()
    # Large codes push the logits far out; the sigmoid still keeps images in [0, 1].
    images = model.decode(100 * torch.randn(16, 3))
    assert images.shape == (16, 1, 8, 8)
    assert images.min() >= 0 and images.max() <= 1
    z = torch.randn(4, 3)
    torch.testing.assert_close(model.decode(z), torch.sigmoid(model.decoder(z)))


def test_sample_shape_range_and_generator():
    model = _tiny().eval()
    images = model.sample(10)
    assert images.shape == (10, 1, 8, 8) and not images.requires_grad
    assert images.min() >= 0 and images.max() <= 1
    a = model.sample(5, generator=torch.Generator().manual_seed(3))
    b = model.sample(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("prior_var", [1.0, 2.0, 0.25])
def test_sample_prior_has_the_prior_variance(prior_var):
    model = _tiny(prior_var=prior_var)
    n, d = 40_000, 3
    z = model.sample_prior(n, generator=torch.Generator().manual_seed(0))
    assert z.shape == (n, d) and z.dtype == torch.float32
    z = z.double()
    # Sample variance of n normals has relative standard error sqrt(2 / n) ~ 0.7 %.
    var = z.var(dim=0)
    assert torch.all((var / prior_var - 1).abs() < 5 * math.sqrt(2 / n))
    assert torch.all(z.mean(dim=0).abs() < 5 * math.sqrt(prior_var / n))
    cov = torch.cov(z.T)
    off = cov - torch.diag(cov.diagonal())
    assert off.abs().max() < 5 * prior_var / math.sqrt(n)


def test_fits_agrees_with_building_the_decoder():
    """``fits`` is the rule the decoder enforces: every size it accepts builds and decodes to
    that size, every size it refuses raises the ConfigError."""
    for side in range(8, 41):
        ok = nets.fits("small", side, side)
        assert ok == (side % 4 == 0), side
        if ok:
            dec = nets.build_networks("small", (1, side, side), 2, 2, mlp_hidden=(8,))[1]
            assert dec(torch.zeros(1, 2)).shape == (1, 1, side, side)
        else:
            with pytest.raises(waekit.ConfigError):
                nets.build_networks("small", (1, side, side), 2, 2)
    # 'conv' doubles twice below 64 pixels and three times from 64 up (the WAE paper's nets).
    assert [s for s in range(56, 81) if nets.fits("conv", s, s)] == [56, 60, 64, 72, 80]
    assert nets.fits("mlp", 25, 31) and not nets.fits("small", 24, 26)


@pytest.mark.parametrize(
    "net,side,sizes,fix",
    [
        ("conv", 25, "24x24 or 28x28", "--set data.image_size=24"),
        ("small", 30, "28x28 or 32x32", "--set data.image_size=28"),
        ("conv", 66, "60x60 or 64x64", "--set data.image_size=64"),
        ("conv", 62, "60x60 or 64x64", "--set data.image_size=60"),
    ],
)
def test_an_image_size_the_conv_net_cannot_take_names_sizes_that_fit(net, side, sizes, fix):
    with pytest.raises(waekit.ConfigError) as info:
        waekit.build_model("wae-mmd", (3, side, side), net=net)
    message = str(info.value)
    assert f"{side}x{side}" in message and sizes in message and "\n" not in message
    assert fix in message and "--set model.net=mlp" in message
    # Both printed fixes work.
    size = int(fix.rsplit("=", 1)[1])
    assert nets.fits(net, size, size)
    waekit.build_model("wae-mmd", (3, side, side), net="mlp", mlp_hidden=(8,))


def test_decoder_batch_norm_can_differ_from_the_encoders():
    def norms(module: nn.Module) -> int:
        return sum(isinstance(m, nn.BatchNorm2d) for m in module.modules())

    enc, dec = nets.build_networks("small", (1, 28, 28), 1, 1, True, decoder_batch_norm=False)
    assert (norms(enc), norms(dec)) == (3, 0)
    enc, dec = nets.build_networks("small", (1, 28, 28), 1, 1, False, decoder_batch_norm=True)
    assert (norms(enc), norms(dec)) == (0, 2)
    enc, dec = nets.build_networks("small", (1, 28, 28), 1, 1, True)  # None: as batch_norm
    assert (norms(enc), norms(dec)) == (3, 2)
    model = waekit.build_model("wae-gan", net="small", batch_norm=True, decoder_batch_norm=False)
    assert (norms(model.encoder), norms(model.decoder)) == (3, 0)
