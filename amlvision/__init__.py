"""amlvision: pack real image data, train a CNN fast, evaluate it, export ONNX and serve it.

The package is organised by what it does:

- ``amlvision.formats``    the bottom layer: files on disk (packed format, CNTK map files, mean XML,
                           dataset.json, split names, the atomic-directory helper); imports nothing above
- ``amlvision.ctf``        CNTK Text Format reader and writer (formats layer)
- ``amlvision.data``       ``--data`` resolved once into a ``Dataset`` (``data.resolve``), readers per layout
- ``amlvision.pack``       converting any source into ctf / map / packed
- ``amlvision.sources``    minibatch sources (CNTK "deserializers") for training
- ``amlvision.transforms`` CNTK image transforms executed with torchvision / Pillow
- ``amlvision.training``   models, training loop, tracking, evaluation, ONNX export
- ``amlvision.inference``  preprocessing + ONNX Runtime prediction, shared by ``predict`` and ``score.py``
- ``amlvision.serving``    scoring server helpers, deployment objects and the HTTP client
- ``amlvision.commands``   one module per ``amlvision`` sub-command
"""

__version__ = "0.1.0"
