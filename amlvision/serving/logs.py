"""Logging of the scoring server: azmlinfsrv loads ``logging.json`` (beside this module) at start-up.

Why a file: azmlinfsrv configures logging itself with ``logging.config.dictConfig`` from the first
``logging.json`` it finds in ``AML_APP_ROOT`` or beside the entry script (the Docker image copies this
one to /var/azureml-app). Ours is azmlinfsrv's own configuration plus two things: the ``amlvision``
loggers write to the server's log (the model that was loaded, the reason for every 400, each with
the request id the server assigned), and :class:`SkipModelIdScan` drops one misleading traceback.
"""

from __future__ import annotations

import logging

MODEL_ID_SCAN = "Error while fetching model IDs"


class SkipModelIdScan(logging.Filter):
    """Drop azmlinfsrv's "Error while fetching model IDs" traceback.

    azmlinfsrv's App Insights client lists ``$AZUREML_MODEL_DIR/<model>/<version>/`` to label telemetry,
    even with App Insights off, and logs a NotADirectoryError traceback for every file of a flat model
    folder (``model.onnx``, ``metrics.json``, ...). The folder is valid; the scan is only for telemetry.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != MODEL_ID_SCAN
