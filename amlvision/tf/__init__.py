"""TensorFlow as train.py's second engine (``--engine tensorflow``); see docs/tensorflow.md.

Only names live here: TensorFlow itself is imported by the submodules, and train.py imports them only
when ``--engine tensorflow`` is chosen, so the PyTorch engine and the scoring image never load it.
"""

TF_MODELS = ("tf-cifar10", "keras-cnn")
