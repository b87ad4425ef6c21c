"""The scoring service behind score.py: request parsing, limits, HTTP responses, swagger schema.

``amlvision.serving.scoring`` is what score.py delegates to; it runs inside ``azmlinfsrv`` both in
the Docker scoring image and under ``amlvision serve``.
"""
