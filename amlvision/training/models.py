"""The networks train.py can build: CNTK's CIFAR-10 tutorial ConvNet, CNTK's ResNet-20 and a fast airbench-style net.

Every model takes ``float32 N x C x H x W`` input already normalised per ``preprocess.json`` and returns
logits. Channel count and image size come from the data, so the same names work for 8x8 grayscale
digits and 300x300 RGB photographs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

ModelBuilder = Callable[[int, tuple[int, int, int]], nn.Module]


def _pooled(size: int, times: int) -> int:
    """Spatial size after ``times`` CNTK-style 'same' max-poolings with stride 2 (ceil division)."""
    for _ in range(times):
        size = math.ceil(size / 2)
    return size


class ConvNet(nn.Module):
    """CNTK ``ConvNet_CIFAR10_DataAug.py``: 2 x [conv3x3-64, conv3x3-64, maxpool3x3/2], dense 256, 128, K.

    ReLU everywhere, 'same' padding, dropout 0.5 after each hidden dense layer, Glorot-uniform
    initialisation as CNTK's defaults. The first dense layer sees the whole feature map, exactly as
    CNTK's ``Dense`` infers its input dimension, so its size follows the image size.
    """

    def __init__(self, num_classes: int, image_shape: tuple[int, int, int]):
        super().__init__()
        channels, height, width = image_shape
        layers: list[nn.Module] = []
        in_ch = channels
        for _ in range(2):
            layers += [
                nn.Conv2d(in_ch, 64, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(64, 64, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            ]
            in_ch = 64
        self.features = nn.Sequential(*layers)
        flat = 64 * _pooled(height, 2) * _pooled(width, 2)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 256),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(256, 128),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(128, num_classes),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class _ResidualBlock(nn.Module):
    """CNTK ``resnet_basic`` / ``resnet_basic_inc``: two conv-BN layers, 1x1 conv-BN projection when downsampling."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.shortcut(x))


class ResNet20(nn.Module):
    """CNTK ``TrainResNet_CIFAR10.py`` ResNet-20: conv-BN-ReLU 16, 3 stages x 3 blocks (16, 32, 64), global avg pool."""

    def __init__(self, num_classes: int, image_shape: tuple[int, int, int]):
        super().__init__()
        channels = image_shape[0]
        self.stem = nn.Sequential(nn.Conv2d(channels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        blocks: list[nn.Module] = []
        in_ch = 16
        for stage, width in enumerate((16, 32, 64)):
            for index in range(3):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(_ResidualBlock(in_ch, width, stride))
                in_ch = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


class _ConvGroup(nn.Module):
    """airbench block: conv, max-pool 2, BN, GELU, conv, BN, GELU (ceil-mode pooling keeps tiny images valid)."""

    def __init__(self, in_ch: int, out_ch: int, bn_momentum: float):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.norm1 = nn.BatchNorm2d(out_ch, momentum=bn_momentum)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(out_ch, momentum=bn_momentum)
        self.act = nn.GELU()
        for norm in (self.norm1, self.norm2):  # airbench: BN scale fixed at 1, only the shift learns
            norm.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class FastNet(nn.Module):
    """airbench94-style network: 2x2 whitening conv (set from patch statistics), 3 conv groups 64/256/256.

    Call :meth:`init_whitening` with a batch of (normalised) training images before training; the
    whitening weights then stay frozen, as in airbench.
    """

    def __init__(
        self, num_classes: int, image_shape: tuple[int, int, int], widths: tuple[int, int, int] = (64, 256, 256)
    ):
        super().__init__()
        channels = image_shape[0]
        self.whiten_kernel = 2
        whiten_width = 2 * channels * self.whiten_kernel**2
        self.whiten = nn.Conv2d(channels, whiten_width, self.whiten_kernel, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)
        self.act = nn.GELU()
        bn_momentum = 0.4  # PyTorch convention: airbench's 0.6 running-average weight
        self.groups = nn.Sequential(
            _ConvGroup(whiten_width, widths[0], bn_momentum),
            _ConvGroup(widths[0], widths[1], bn_momentum),
            _ConvGroup(widths[1], widths[2], bn_momentum),
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.linear = nn.Linear(widths[2], num_classes, bias=False)
        self.scale = 1 / 9

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the first conv to the eigenbasis of the 2x2 patch covariance (and its negation)."""
        k = self.whiten_kernel
        patches = images.unfold(2, k, 1).unfold(3, k, 1)  # N, C, H', W', k, k
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, images.shape[1] * k * k).double()
        patches = patches - patches.mean(dim=0, keepdim=True)
        covariance = patches.T @ patches / len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.T.flip(0)
        filters = (eigenvectors / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None]).float()
        filters = filters.reshape(-1, images.shape[1], k, k)
        self.whiten.weight.copy_(torch.cat([filters, -filters]))
        self.whiten.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.groups(self.act(self.whiten(x)))
        return self.linear(self.pool(x).flatten(1)) * self.scale


def _tutorial_crop(size: int) -> int:
    """The tutorial's 24-pixel crop of CIFAR's 32 pixels, as the same 3/4 fraction of any image side."""
    return max(1, (size * 3) // 4)


def _same_max_pool(x: torch.Tensor, kernel: int = 3, stride: int = 2) -> torch.Tensor:
    """TensorFlow's ``max_pool(padding="SAME")``: pad the *end* with -inf when the padding total is odd.

    ``nn.MaxPool2d(3, 2, padding=1)`` pads both sides by one, which shifts every window one pixel left/up
    compared with TensorFlow (24 -> 12 needs a total padding of 1, all of it at the bottom/right).
    """
    pads = []
    for size in (x.shape[3], x.shape[2]):  # F.pad wants the last dimension first
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return nn.functional.max_pool2d(nn.functional.pad(x, pads, value=float("-inf")), kernel, stride)


class TutorialInput(nn.Module):
    """The TensorFlow CIFAR-10 tutorial's image pipeline after its random crop, on 0-255 NCHW pixels.

    Always: the central crop (``resize_image_with_crop_or_pad``) and ``per_image_standardization``
    ((x - mean) / max(std, 1/sqrt(HWC)) per image). In training mode also ``random_brightness(63)``
    and ``random_contrast(0.2, 1.8)`` per image, in the tutorial's order. The random 24x24 crop and the
    flip come from the packed source (``translate`` = (32 - 24) / 2 and ``flip``): a shifted 32x32
    image's central 24x24 window is exactly a random 24x24 crop, and never touches padding.
    """

    def __init__(self, crop: tuple[int, int], max_brightness: float = 63.0, contrast: tuple[float, float] = (0.2, 1.8)):
        super().__init__()
        self.crop = crop
        self.max_brightness = max_brightness
        self.contrast = contrast

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.crop
        top, left = (x.shape[2] - h) // 2, (x.shape[3] - w) // 2
        x = x[:, :, top : top + h, left : left + w]
        if self.training:
            n = x.shape[0]
            delta = (torch.rand(n, 1, 1, 1, device=x.device) * 2 - 1) * self.max_brightness
            x = x + delta
            low, high = self.contrast
            factor = low + (high - low) * torch.rand(n, 1, 1, 1, device=x.device)
            mean = x.mean(dim=(2, 3), keepdim=True)
            x = (x - mean) * factor + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.var(dim=(1, 2, 3), keepdim=True, unbiased=False).sqrt()
        return (x - mean) / std.clamp_min(1.0 / math.sqrt(x[0].numel()))


class TFCifar10Net(nn.Module):
    """The TensorFlow CIFAR-10 tutorial network (tensorflow/models ``tutorials/image/cifar10/cifar10.py``).

    conv 5x5 64 -> max-pool 3x3/2 SAME -> LRN -> conv 5x5 64 -> LRN -> max-pool -> FC 384 -> FC 192 -> K,
    ReLU after every hidden layer, the tutorial's truncated-normal initialisation and biases, and its
    input pipeline (:class:`TutorialInput`) inside the network, so preprocess.json stays plain pixels.
    TensorFlow's LRN(depth_radius r, alpha a) is torch's ``LocalResponseNorm(size=2r+1, alpha=a*(2r+1))``:
    torch divides alpha by the window size. The features are flattened in TensorFlow's NHWC order, so a
    TensorFlow kernel transfers as its transpose (``amlvision.tf.twin`` does it; the twin test proves it).
    Weight decay 0.004 applies to ``local3``/``local4`` weights only (``decayed_parameters``).
    """

    decayed_parameters = ("local3.weight", "local4.weight")

    def __init__(self, num_classes: int, image_shape: tuple[int, int, int]):
        super().__init__()
        channels, height, width = image_shape
        crop = (_tutorial_crop(height), _tutorial_crop(width))
        self.input = TutorialInput(crop)
        self.conv1 = nn.Conv2d(channels, 64, 5, padding=2)
        self.conv2 = nn.Conv2d(64, 64, 5, padding=2)
        radius = 4
        self.norm = nn.LocalResponseNorm(size=2 * radius + 1, alpha=0.001 / 9.0 * (2 * radius + 1), beta=0.75, k=1.0)
        flat = 64 * _pooled(crop[0], 2) * _pooled(crop[1], 2)
        self.local3 = nn.Linear(flat, 384)
        self.local4 = nn.Linear(384, 192)
        self.logits = nn.Linear(192, num_classes)
        for layer, std, bias in (
            (self.conv1, 5e-2, 0.0),
            (self.conv2, 5e-2, 0.1),
            (self.local3, 0.04, 0.1),
            (self.local4, 0.04, 0.1),
            (self.logits, 1 / 192.0, 0.0),
        ):
            nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
            nn.init.constant_(layer.bias, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input(x)
        x = self.norm(_same_max_pool(torch.relu(self.conv1(x))))
        x = _same_max_pool(self.norm(torch.relu(self.conv2(x))))
        x = x.permute(0, 2, 3, 1).flatten(1)
        x = torch.relu(self.local3(x))
        x = torch.relu(self.local4(x))
        return self.logits(x)


class FlipTTA(nn.Module):
    """Test-time augmentation: average the logits of the image and its mirror (airbench's TTA level 1)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.model(x) + self.model(torch.flip(x, dims=[3])))


MODELS: dict[str, ModelBuilder] = {
    "convnet": ConvNet,
    "resnet20": ResNet20,
    "fast": FastNet,
    "tf-cifar10": TFCifar10Net,
}


def build_model(name: str, num_classes: int, image_shape: tuple[int, int, int]) -> nn.Module:
    """Instantiate model ``name`` for ``num_classes`` classes and ``image_shape`` = (C, H, W)."""
    try:
        builder = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None
    return builder(num_classes, tuple(int(v) for v in image_shape))
