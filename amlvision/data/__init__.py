"""Reading real image data from disk: image files, class folders, label files, map files, CTF, CIFAR batches.

- ``images``: decoding and the channel rule (the only image decoder in the project)
- ``collection``: ``LabeledImages``, one split of any source
- ``discover``: ``open_collection(path)``, which recognises the layout
- ``folders``, ``labelfile``, ``cifar``, ``ctfimages``, ``archives``: one reader per layout
- ``decoding``: parallel decoding for packing; ``summary``: ``amlvision inspect``; ``download``: verified downloads

See docs/data.md.
"""
