"""The three networks: any image size and channel count, CNTK's layer structure, airbench whitening."""

from __future__ import annotations

import pytest
import torch

from amlvision.training.models import ConvNet, FastNet, FlipTTA, ResNet20, build_model


@pytest.mark.parametrize("name", ["convnet", "resnet20", "fast"])
@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 8, 8), (1, 45, 30)])
def test_models_accept_any_size_and_channels(name: str, shape: tuple[int, int, int]) -> None:
    model = build_model(name, 7, shape).eval()
    with torch.no_grad():
        out = model(torch.rand(3, *shape) * 2 - 1)
    assert out.shape == (3, 7)
    assert torch.isfinite(out).all()


def test_convnet_is_cntk_tutorial_network() -> None:
    model = ConvNet(10, (3, 32, 32))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    dense = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [c.out_channels for c in convs] == [64, 64, 64, 64]
    assert all(c.kernel_size == (3, 3) for c in convs)
    # two 3x3/2 'same' poolings: 32 -> 16 -> 8, so the first dense layer sees 64 x 8 x 8
    assert [(d.in_features, d.out_features) for d in dense] == [(4096, 256), (256, 128), (128, 10)]
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.modules()) == 2


def test_resnet20_has_twenty_weighted_layers() -> None:
    model = ResNet20(10, (3, 32, 32))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(convs) + len(linears) == 20
    assert sum(p.numel() for p in model.parameters()) < 300_000  # CNTK/He et al.: ~0.27M


def test_fast_whitening_decorrelates_real_patches(cifar_packed) -> None:
    from amlvision.formats.packed import PackedDataset

    images = torch.from_numpy(PackedDataset(cifar_packed).images("train")[:500].copy()).permute(0, 3, 1, 2).float()
    x = (images - images.mean()) / images.std()
    model = FastNet(10, (3, 32, 32))
    model.init_whitening(x)
    with torch.no_grad():
        out = model.whiten(x)[:, :12]  # the first half: the eigen filters (the rest are their negatives)
    flat = out.permute(1, 0, 2, 3).reshape(12, -1)
    covariance = torch.cov(flat)
    # whitened: no correlation between filters, unit variance except where eps damps the weakest components
    variances = covariance.diagonal()
    assert torch.all(variances[:8] > 0.9) and torch.all(variances <= 1.001) and variances.min() > 0.3
    off_diagonal = covariance - torch.diag(variances)
    assert off_diagonal.abs().max() < 1e-3
    assert not model.whiten.weight.requires_grad


def test_flip_tta_is_mirror_invariant() -> None:
    model = FlipTTA(build_model("fast", 4, (3, 16, 16)).eval())
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model(x), model(torch.flip(x, dims=[3])), atol=1e-6)


def test_unknown_model_is_named() -> None:
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model("vgg", 10, (3, 32, 32))
