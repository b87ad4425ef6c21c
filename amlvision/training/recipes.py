"""Per-model training recipes: the published hyper-parameters each network was trained with.

Values are in PyTorch terms (mean loss over the minibatch). CNTK's per-sample learning rates are
converted by multiplying with the minibatch size, and its unit-gain momentum is kept (``unit_gain``),
so the schedules below are CNTK's own.
"""

from __future__ import annotations

from typing import Any

from amlvision.detection.models import DETECTORS

# ConvNet_CIFAR10_DataAug.py: minibatch 64, lr/sample 0.0015625 (x64 = 0.1) for 20 epochs, then
# x0.3, x0.1, x0.03, x0.01 at 20/40/60/70 of 80; momentum time constant 0 then 600 (m = e^(-64/600)
# = 0.899) then 1200 (0.948) at 20/40; L2 0.002; random side crop 0.8 of the 40x40 pre-padded
# image (= translate 4 + CNTK's random-crop mirroring).
CONVNET: dict[str, Any] = {
    "epochs": 80,
    "batch_size": 64,
    "lr": 0.1,
    "momentum": 0.0,
    "unit_gain": True,
    "nesterov": False,
    "weight_decay": 0.002,
    "lr_schedule": "step",
    "lr_steps": [0.25, 0.5, 0.75, 0.875],
    "lr_factors": [0.3, 0.1, 0.03, 0.01],
    "momentum_steps": [0.25, 0.5],
    "momentum_values": [0.899, 0.948],
    "label_smoothing": 0.0,
    "translate": 4,
    "crop_type": "none",
    "flip": True,
    "mean_std": "cntk",
    "tta": False,
}

# TrainResNet_CIFAR10.py (resnet20): minibatch 128, lr/minibatch 1.0 / 0.1 / 0.01 at epochs 80 and
# 120 of 160, unit-gain momentum 0.9, L2 1e-4, the same crop (translate 4 + flips).
RESNET20: dict[str, Any] = {
    "epochs": 160,
    "batch_size": 128,
    "lr": 1.0,
    "momentum": 0.9,
    "unit_gain": True,
    "nesterov": False,
    "weight_decay": 1e-4,
    "lr_schedule": "step",
    "lr_steps": [0.5, 0.75],
    "lr_factors": [0.1, 0.01],
    "momentum_steps": [],
    "momentum_values": [],
    "label_smoothing": 0.0,
    "translate": 4,
    "crop_type": "none",
    "flip": True,
    "mean_std": "cntk",
    "tta": False,
}

# airbench94-style: big batches, Nesterov SGD, one-cycle linear schedule, label smoothing 0.2, flips
# and 2-pixel translation, flip TTA. 3 epochs keep `make train` near 15 minutes on 2 CPU cores (one epoch
# reaches 71% on CIFAR-10); another issue tunes it for speed.
FAST: dict[str, Any] = {
    "epochs": 3,
    "batch_size": 512,
    "lr": 0.8,
    "momentum": 0.85,
    "unit_gain": False,
    "nesterov": True,
    "weight_decay": 5e-4,
    "lr_schedule": "onecycle",
    "lr_steps": [],
    "lr_factors": [],
    "momentum_steps": [],
    "momentum_values": [],
    "warmup": 0.23,
    "final_lr_fraction": 0.07,
    "label_smoothing": 0.2,
    "translate": 2,
    "crop_type": "none",
    "flip": True,
    "mean_std": "data",
    "tta": True,
}

# TensorFlow's CIFAR-10 tutorial (cifar10.py / cifar10_train.py): plain SGD, batch 128, lr 0.1 (x0.1 every
# 350 epochs, so constant for any run this machine can afford), L2 0.004 on the two hidden dense layers
# only (the model says which), EMA 0.9999 of the weights for evaluation. Random 24x24 crop of 32x32 =
# translate 4 around the central crop, plus flips; brightness/contrast/standardisation are in the model.
# 5 epochs here (the tutorial: 256); see docs/tensorflow.md. Both engines use this recipe.
TF_CIFAR10: dict[str, Any] = {
    "epochs": 5,
    "batch_size": 128,
    "lr": 0.1,
    "momentum": 0.0,
    "unit_gain": False,
    "nesterov": False,
    "weight_decay": 0.004,
    "lr_schedule": "constant",
    "lr_steps": [],
    "lr_factors": [],
    "momentum_steps": [],
    "momentum_values": [],
    "label_smoothing": 0.0,
    "translate": 4,
    "crop_type": "none",
    "flip": True,
    "mean_std": "none",
    "tta": False,
    "ema": 0.9999,
}

# The Keras CNN tutorial (tensorflow.org/tutorials/images/cnn): pixels / 255, no augmentation, Adam
# (lr 0.001), Keras' default batch of 32, 10 epochs. TensorFlow engine only.
KERAS_CNN: dict[str, Any] = {
    "engine": "tensorflow",
    "epochs": 10,
    "batch_size": 32,
    "lr": 0.001,
    "momentum": 0.0,
    "weight_decay": 0.0,
    "lr_schedule": "constant",
    "lr_steps": [],
    "lr_factors": [],
    "label_smoothing": 0.0,
    "translate": 0,
    "crop_type": "none",
    "flip": False,
    "mean_std": "none",
    "tta": False,
    "ema": 0.0,
}

# torchvision's detection reference recipe (SGD 0.02 for 16 images, momentum 0.9, L2 1e-4, warm-up)
# scaled to CPU batches of 2 images: lr 0.01 with a one-cycle warm-up, horizontal flips.
DETECTION: dict[str, Any] = {
    "task": "detection",
    "epochs": 10,
    "batch_size": 2,
    "eval_batch_size": 2,
    "lr": 0.01,
    "momentum": 0.9,
    "unit_gain": False,
    "nesterov": False,
    "weight_decay": 1e-4,
    "lr_schedule": "onecycle",
    "lr_steps": [],
    "lr_factors": [],
    "momentum_steps": [],
    "momentum_values": [],
    "warmup": 0.1,
    "final_lr_fraction": 0.05,
    "label_smoothing": 0.0,
    "flip": True,
    "tta": False,
    "ema": 0.0,
}

RECIPES: dict[str, dict[str, Any]] = {
    "convnet": CONVNET,
    "resnet20": RESNET20,
    "fast": FAST,
    "tf-cifar10": TF_CIFAR10,
    "keras-cnn": KERAS_CNN,
    **dict.fromkeys(DETECTORS, DETECTION),
}
