"""CNTK's image transforms (``cntk.io.transforms``) with CNTK's names and parameters.

``crop``, ``scale``, ``mean``, ``color`` build transform objects; ``build_transforms`` parses a
config list; ``TransformPipeline`` applies a list to decoded images. Pixel work runs in
torchvision / Pillow; docs/sources.md lists every place the result differs from CNTK's.
"""

from amlvision.transforms.base import ImageTransform
from amlvision.transforms.color import Color, color
from amlvision.transforms.crop import Crop, crop
from amlvision.transforms.mean import Mean, mean, read_mean_chw
from amlvision.transforms.pipeline import TRANSFORM_TYPES, TransformPipeline, build_transforms
from amlvision.transforms.scale import Scale, scale

__all__ = [
    "TRANSFORM_TYPES",
    "Color",
    "Crop",
    "ImageTransform",
    "Mean",
    "Scale",
    "TransformPipeline",
    "build_transforms",
    "color",
    "crop",
    "mean",
    "read_mean_chw",
    "scale",
]
