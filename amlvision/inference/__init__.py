"""Model-directory inference with ONNX Runtime: the code path shared by ``amlvision predict`` and score.py.

Nothing here imports torch: the scoring image has no PyTorch, and the same modules must give
the same answers there and on a developer machine.
"""

from amlvision.inference.errors import InputError
from amlvision.inference.predictor import Prediction, Predictor
from amlvision.inference.preprocess import PreprocessConfig

__all__ = ["InputError", "Prediction", "Predictor", "PreprocessConfig"]
