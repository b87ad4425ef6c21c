"""Training configuration: one dataclass, filled from model recipe defaults, a YAML file, then command-line flags.

Precedence (later wins): the model's recipe (``recipes.py``) < ``--config FILE`` (YAML) < explicit flags.
Every flag has a YAML key of the same name with dashes turned into underscores.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from amlvision.data.cli_options import add_source_options
from amlvision.data.resolve import Dataset
from amlvision.detection.derive import MODES as BOX_MODES
from amlvision.detection.models import DETECTORS
from amlvision.model_dir import CLASSIFICATION, DETECTION, MULTILABEL, TASKS
from amlvision.sources.factory import READERS
from amlvision.sources.sampling import SAMPLERS
from amlvision.tf import TF_MODELS
from amlvision.training.balance import WEIGHT_MODES
from amlvision.training.models import MODELS
from amlvision.training.recipes import RECIPES
from amlvision.training.selection import SELECT_METRICS

ENGINES = ("pytorch", "tensorflow")
DEFAULT_DETECTOR = "fasterrcnn_mobilenet_v3_large_320_fpn"
CROP_TYPES = ("none", "center", "randomside", "randomarea")


@dataclass
class TrainConfig:
    """Everything one training run needs; saved to ``outputs/config.yaml`` so a run can be repeated."""

    data: str = "cifar10"
    reader: str = "packed"
    engine: str = "pytorch"
    model: str = "fast"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    unit_gain: bool = False
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    lr_schedule: str = "step"
    lr_steps: list[float] = field(default_factory=lambda: [0.5, 0.75])
    lr_factors: list[float] = field(default_factory=lambda: [0.1, 0.01])
    momentum_steps: list[float] = field(default_factory=list)
    momentum_values: list[float] = field(default_factory=list)
    warmup: float = 0.0
    final_lr_fraction: float = 0.0
    seed: int = 0
    outputs: str = "outputs"
    resume: bool = False
    val_fraction: float = 0.1
    # how to read labels where the layout does not say (amlvision.data.cli_options, as `amlvision pack` takes them)
    labels_file: str | None = None
    file_column: int | str | None = None
    label_column: int | str | None = None
    delimiter: str | None = None
    has_header: bool | None = None
    file_suffix: str | None = None
    classes: str | None = None
    label_from_name: str | None = None
    # transforms in CNTK terms (cntk.io.transforms.crop / scale / mean), plus CIFAR pre-padding and flips
    translate: int = 4
    crop_type: str = "none"
    side_ratio: float = 0.8
    jitter_type: str = "uniratio"
    flip: bool = True
    scale: list[int] | None = None
    channels: int = 0
    interpolations: str = "linear"
    mean_std: str = "data"
    tta: bool = False
    ema: float = 0.0
    threads: int = 0
    workers: int | None = None
    device: str = "auto"
    eval_batch_size: int = 512
    epoch_size: int = 0
    progress: str = "auto"
    experiment: str = "amlvision"
    # imbalanced data (amlvision/training/balance.py, sources/sampling.py, training/selection.py)
    class_weights: str = "none"
    sampler: str = "uniform"
    select_metric: str = "last"
    # classification from box annotations (amlvision/detection/derive.py; issue 12)
    from_boxes: str = "none"
    box_context: float = 0.0
    box_min_size: float = 0.0
    threshold: float = 0.5
    task: str = CLASSIFICATION  # amlvision/tasks: what is learnt from the labels
    # detection (amlvision/detection/): torchvision weights and the detector's input sizes
    weights: str | None = None
    backbone_weights: str | None = None
    min_size: int = 0
    max_size: int = 0
    augment: bool = True

    # ``--data`` resolved by parse_config when the task had to be read from the data; the run reuses it
    # instead of resolving again. Not a setting: never saved, compared or logged.
    resolved: Dataset | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "resolved"}


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _bool(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    """The train.py command line (also documented in docs/training.md)."""
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Train an image classifier on any supported source, evaluate it and export ONNX.",
        argument_default=argparse.SUPPRESS,
        epilog="Defaults come from the chosen model's recipe (amlvision/training/recipes.py), then --config YAML, "
        "then these flags. See docs/training.md.",
    )
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        help="folder, archive, label file, map file, CTF file, packed dir or 'cifar10'; name the kind as KIND:PATH "
        "(packed:, map:, ctf:, folders:, labels:, names:, cifar:) to skip guessing",
    )
    g.add_argument("--reader", choices=READERS, help="minibatch source: packed (default), image or ctf")
    g.add_argument("--val-fraction", type=float, help="stratified validation split when the data has no test split")
    g.add_argument("--epoch-size", type=int, help="CNTK epoch_size: training samples per epoch (0 = one full sweep)")
    add_source_options(p)
    g = p.add_argument_group("model and optimiser")
    g.add_argument("--engine", choices=ENGINES, help="pytorch (default) or tensorflow (docs/tensorflow.md)")
    g.add_argument(
        "--model", choices=sorted({*MODELS, *TF_MODELS, *DETECTORS}), help="network; its recipe sets the defaults below"
    )
    g.add_argument(
        "--task",
        choices=TASKS,
        help="classification (one label per image) or detection (default for COCO data or a detector model)",
    )
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float, help="peak learning rate (mean loss over the minibatch)")
    g.add_argument("--momentum", type=float)
    g.add_argument("--nesterov", type=_bool, metavar="BOOL")
    g.add_argument("--unit-gain", type=_bool, metavar="BOOL", help="CNTK unit-gain momentum: v = m v + (1-m) g")
    g.add_argument("--weight-decay", type=float, help="L2 weight (CNTK l2_regularization_weight)")
    g.add_argument("--label-smoothing", type=float)
    g.add_argument("--lr-schedule", choices=("step", "onecycle", "constant"))
    g.add_argument("--lr-steps", type=float, nargs="*", help="step schedule: fractions of training")
    g.add_argument("--lr-factors", type=float, nargs="*", help="step schedule: lr multipliers after each step")
    g.add_argument("--warmup", type=float, help="onecycle: fraction of training spent warming up")
    g.add_argument("--final-lr-fraction", type=float, help="onecycle: lr at the end as a fraction of the peak")
    g.add_argument("--ema", type=float, help="evaluate an exponential moving average of the weights (0 = off)")
    g.add_argument("--tta", type=_bool, metavar="BOOL", help="evaluate and export with horizontal-flip TTA")
    g = p.add_argument_group("detection (docs/detection.md)")
    g.add_argument(
        "--weights", help="detector weights: a torchvision name (DEFAULT, COCO_V1) or a local .pth state dict"
    )
    g.add_argument(
        "--backbone-weights", help="backbone weights: a torchvision name (IMAGENET1K_V1) or a local .pth file"
    )
    g.add_argument(
        "--min-size", type=int, help="detector input: shorter side resized to this (0 = the model's default)"
    )
    g.add_argument("--max-size", type=int, help="detector input: cap on the longer side (0 = the model's default)")
    g.add_argument(
        "--augment", type=_bool, metavar="BOOL", help="detection: zoom and photometric jitter (flips: --flip)"
    )
    g = p.add_argument_group("transforms (CNTK terms)")
    g.add_argument(
        "--translate",
        type=int,
        help="random shift of up to N pixels (= CNTK's 0.8 randomside crop "
        "of CIFAR images pre-padded by 4 when N is 4); packed reader",
    )
    g.add_argument("--crop-type", choices=CROP_TYPES, help="CNTK crop transform type for training")
    g.add_argument("--side-ratio", type=float, help="CNTK crop side_ratio")
    g.add_argument("--jitter-type", choices=("none", "uniratio"), help="CNTK crop jitter_type")
    g.add_argument("--flip", type=_bool, metavar="BOOL", help="random horizontal flips (CNTK random crops flip)")
    g.add_argument("--scale", type=int, nargs=2, metavar=("WIDTH", "HEIGHT"), help="CNTK scale transform size")
    g.add_argument("--channels", type=int, choices=(0, 1, 3), help="1 gray, 3 RGB, 0 = from the data (default)")
    g.add_argument("--interpolations", choices=("linear", "nearest", "cubic", "lanczos"))
    g.add_argument(
        "--mean-std",
        choices=("data", "cntk", "none"),
        help="normalisation: per-channel data mean/std, CNTK's (x - mean)/256, or none",
    )
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int)
    g.add_argument("--outputs", help="output folder (default outputs/)")
    g.add_argument("--resume", action="store_const", const=True, help="continue from outputs/checkpoint.pt")
    g.add_argument("--config", help="YAML file with any of these options (flags override it)")
    g.add_argument("--threads", type=int, help="torch CPU threads (0 = torch default)")
    g.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    g.add_argument("--workers", type=int, help="image reader: decoding processes (default: the reader's choice)")
    g.add_argument("--eval-batch-size", type=int)
    g.add_argument("--progress", choices=("auto", "bar", "log"), help="tqdm bars when interactive, log lines otherwise")
    g.add_argument("--experiment", help="experiment name for MLflow")
    g = p.add_argument_group("imbalanced data")
    g.add_argument(
        "--class-weights",
        metavar="none|balanced|FILE",
        help="loss weight per class: none, balanced (n / (classes * n_class)) or a YAML/JSON file of class: weight",
    )
    g.add_argument("--sampler", choices=SAMPLERS, help="uniform sweeps, or class-balanced sweeps (seeded)")
    g.add_argument(
        "--select-metric",
        choices=SELECT_METRICS,
        help="held-out score that picks the exported epoch (default last: the final weights)",
    )
    g = p.add_argument_group("classification from box annotations (docs/coco_why.md)")
    g.add_argument(
        "--from-boxes",
        choices=("none", *BOX_MODES),
        help="derive labels from COCO boxes (--data: COCO root or instances JSON): dominant category, "
        "every box cropped, multilabel (sigmoid + BCE), or context (the target's boxes masked out)",
    )
    g.add_argument("--box-context", type=float, help="crops: widen each box by this fraction per side")
    g.add_argument("--box-min-size", type=float, help="crops: skip boxes whose shorter side is under N pixels")
    g.add_argument("--threshold", type=float, help="multilabel: probability above which a label is predicted")
    return p


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config, accepting dashed or underscored keys; unknown keys are an error naming the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of option: value, got {type(raw).__name__}")
    values = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in _FIELDS:
            raise ValueError(f"{path}: unknown option {key!r}; known: {', '.join(sorted(_FIELDS))}")
        values[name] = value
    return values


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """Recipe defaults < YAML file < flags, validated."""
    args = vars(build_parser().parse_args(argv))
    file_values = load_yaml(args.pop("config")) if "config" in args else {}
    given = {**file_values, **args}
    task, dataset = resolve_task(given)
    model = given.get("model", DEFAULT_DETECTOR if task == DETECTION else TrainConfig.model)
    if model not in RECIPES:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(RECIPES)}")
    values: dict[str, Any] = {**RECIPES[model], **given, "model": model, "task": task}
    cfg = TrainConfig(**values, resolved=dataset)
    validate(cfg)
    return cfg


def resolve_task(given: dict[str, Any]) -> tuple[str, Dataset | None]:
    """``--task``, or what the settings imply, or what the data is: then ``--data`` is resolved here, once.

    Returns the task and the resolved data when it had to be resolved (the run takes it from
    ``TrainConfig.resolved``). Data that cannot be resolved is left for the run to report, with its
    own error, when it opens the data.
    """
    if "task" in given:
        return given["task"], None
    if given.get("from_boxes", "none") == "multilabel":
        return MULTILABEL, None  # the mode implies the task
    if given.get("from_boxes", "none") != "none":
        return CLASSIFICATION, None  # classification derived from box annotations
    if given.get("model") in DETECTORS:
        return DETECTION, None
    if "data" not in given:
        return CLASSIFICATION, None  # the default data is CIFAR-10
    from amlvision.training.data import resolve_data  # the run's one resolution, with its source options

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    try:
        dataset = resolve_data(TrainConfig(**{k: v for k, v in given.items() if k in fields}))
    except (ValueError, OSError):
        return CLASSIFICATION, None
    return (DETECTION if dataset.task == DETECTION else CLASSIFICATION), dataset


def validate(cfg: TrainConfig) -> None:
    if cfg.task == DETECTION or cfg.model in DETECTORS:
        validate_detection(cfg)
        return
    problems = []
    if cfg.reader not in READERS:
        problems.append(f"reader must be one of {READERS}, got {cfg.reader!r}")
    if cfg.engine not in ENGINES:
        problems.append(f"engine must be one of {ENGINES}, got {cfg.engine!r}")
    elif cfg.model not in (TF_MODELS if cfg.engine == "tensorflow" else MODELS):
        names = ", ".join(TF_MODELS if cfg.engine == "tensorflow" else MODELS)
        problems.append(f"model {cfg.model!r} does not exist on the {cfg.engine} engine (it has {names})")
    if cfg.engine == "tensorflow" and cfg.reader != "packed":
        problems.append("the tensorflow engine reads the packed format (--reader packed)")
    if not 0 <= cfg.ema < 1:
        problems.append(f"ema must be in [0, 1), got {cfg.ema}")
    if cfg.crop_type not in CROP_TYPES:
        problems.append(f"crop_type must be one of {CROP_TYPES}, got {cfg.crop_type!r}")
    if cfg.epochs < 1 or cfg.batch_size < 1:
        problems.append("epochs and batch_size must be positive")
    if cfg.translate < 0:
        problems.append(f"translate must be >= 0, got {cfg.translate}")
    if not 0 < cfg.side_ratio <= 1:
        problems.append(f"side_ratio must be in (0, 1], got {cfg.side_ratio}")
    if not 0 <= cfg.val_fraction < 1:
        problems.append(f"val_fraction must be in [0, 1), got {cfg.val_fraction}")
    if len(cfg.lr_steps) != len(cfg.lr_factors):
        problems.append("lr_steps and lr_factors need the same length")
    if len(cfg.momentum_steps) != len(cfg.momentum_values):
        problems.append("momentum_steps and momentum_values need the same length")
    if cfg.scale is not None and len(cfg.scale) != 2:
        problems.append("scale takes WIDTH HEIGHT")
    if cfg.sampler not in SAMPLERS:
        problems.append(f"sampler must be one of {SAMPLERS}, got {cfg.sampler!r}")
    if cfg.select_metric not in SELECT_METRICS:
        problems.append(f"select_metric must be one of {SELECT_METRICS}, got {cfg.select_metric!r}")
    if cfg.class_weights not in WEIGHT_MODES and not Path(cfg.class_weights).is_file():
        problems.append(f"class_weights must be one of {WEIGHT_MODES} or a file, got {cfg.class_weights!r}")
    if cfg.from_boxes != "none":
        if cfg.from_boxes not in BOX_MODES:
            problems.append(f"from_boxes must be none or one of {BOX_MODES}, got {cfg.from_boxes!r}")
        if cfg.reader != "packed" or cfg.engine != "pytorch":
            problems.append("--from-boxes derives packed data for the pytorch engine (--reader packed)")
        if cfg.box_context < 0 or cfg.box_min_size < 0:
            problems.append("box_context and box_min_size must be >= 0")
    if (cfg.task == MULTILABEL) != (cfg.from_boxes == "multilabel"):
        problems.append("--task multilabel trains on --from-boxes multilabel data (and that mode on that task)")
    if cfg.from_boxes == "multilabel":
        if not 0 < cfg.threshold < 1:
            problems.append(f"threshold must be in (0, 1), got {cfg.threshold}")
        if cfg.class_weights != "none" or cfg.sampler != "uniform":
            problems.append(
                "multilabel trains with --class-weights none and --sampler uniform (per-class sampling "
                "and weights assume one label per image)"
            )
    if cfg.task not in TASKS:
        problems.append(f"task must be one of {TASKS}, got {cfg.task!r}")
    elif cfg.engine == "tensorflow" and cfg.task != CLASSIFICATION:
        problems.append(f"the tensorflow engine trains classification only, not {cfg.task}")
    else:
        from amlvision.tasks import get_task

        try:
            get_task(cfg.task)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("invalid training configuration: " + "; ".join(problems))


def validate_detection(cfg: TrainConfig) -> None:
    problems = []
    if cfg.task != DETECTION:
        problems.append(f"model {cfg.model!r} is a detector; it needs --task detection, got {cfg.task!r}")
    if cfg.model not in DETECTORS:
        problems.append(f"--task detection needs a detector model ({', '.join(DETECTORS)}), got {cfg.model!r}")
    if cfg.engine != "pytorch":
        problems.append("detection trains on the pytorch engine")
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.eval_batch_size < 1:
        problems.append("epochs, batch_size and eval_batch_size must be positive")
    if cfg.min_size < 0 or cfg.max_size < 0 or (cfg.min_size and cfg.max_size and cfg.max_size < cfg.min_size):
        problems.append(f"min_size/max_size must be >= 0 with max_size >= min_size, got {cfg.min_size}/{cfg.max_size}")
    if not 0 <= cfg.val_fraction < 1:
        problems.append(f"val_fraction must be in [0, 1), got {cfg.val_fraction}")
    if problems:
        raise ValueError("invalid training configuration: " + "; ".join(problems))
