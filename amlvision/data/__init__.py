"""Reading real image data from disk: image files, class folders, label files, map files, CTF, CIFAR batches.

- ``images``: decoding and the channel rule (the only image decoder in the project)
- ``collection``: ``LabeledImages``, one split of any source
- ``resolve``: ``--data`` resolved once into a typed ``Dataset`` (named kinds, sniffing as fallback, the kind registry)
- ``layouts``, ``folders``, ``labelfile``, ``names``, ``cifar``, ``ctfimages``, ``archives``: one reader per layout
- ``fingerprint``: the cheap fingerprint (content hash remembered by size + mtime)
- ``decoding``: parallel decoding for packing; ``summary``: ``amlvision inspect``; ``download``: verified downloads

See docs/data.md.
"""
