"""One small experiment-tracking interface with an Azure ML Run backend, an MLflow backend and a local file.

train.py talks only to :class:`Tracker`; :func:`open_tracker` decides where the calls go:

* Azure ML (SDK v1): ``azureml.core.Run.get_context()``. Outside Azure that is an *offline run*
  whose methods only print; we call it the same way (so the code path is exercised) but silence
  the prints.
* MLflow: when ``MLFLOW_TRACKING_URI`` is set (Azure ML SDK v2 jobs set it, and ``MLFLOW_RUN_ID``).
  When it points at Azure ML (``azureml://``) and the v1 run is online too, only MLflow logs, so the
  same job does not receive every metric twice.
* Local: always, ``outputs/logs/metrics.jsonl`` (one JSON object per call), so an offline run
  keeps a complete record.

Tracking must never end a training run: a backend error is reported once as a warning and that
backend is switched off.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def confusion_matrix_schema(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> dict[str, Any]:
    """Azure ML's JSON schema for ``Run.log_confusion_matrix`` (schema_type confusion_matrix, 1.0.0)."""
    return {
        "schema_type": "confusion_matrix",
        "schema_version": "1.0.0",
        "data": {"class_labels": [str(v) for v in labels], "matrix": [[int(v) for v in row] for row in matrix]},
    }


class Backend:
    """Base class; every method is optional for a backend."""

    name = "backend"

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def set_tags(self, tags: Mapping[str, str]) -> None: ...

    def log_table(self, name: str, table: Mapping[str, Sequence[Any]]) -> None: ...

    def log_confusion_matrix(self, name: str, labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> None: ...

    def log_image(self, name: str, path: Path) -> None: ...

    def log_artifact(self, path: Path) -> None: ...

    def close(self, status: str) -> None: ...


class LocalBackend(Backend):
    """Appends every call to ``<outputs>/logs/metrics.jsonl``."""

    name = "local"

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "metrics.jsonl"
        self._fh = open(self.path, "a", encoding="utf-8")

    def _write(self, kind: str, **payload: Any) -> None:
        self._fh.write(json.dumps({"kind": kind, "time": time.time(), **payload}, default=str) + "\n")
        self._fh.flush()

    def log_metrics(self, metrics, step):
        self._write("metrics", step=step, values=dict(metrics))

    def log_params(self, params):
        self._write("params", values=dict(params))

    def set_tags(self, tags):
        self._write("tags", values=dict(tags))

    def log_table(self, name, table):
        self._write("table", name=name, values={k: list(v) for k, v in table.items()})

    def log_confusion_matrix(self, name, labels, matrix):
        self._write("confusion_matrix", name=name, values=confusion_matrix_schema(labels, matrix))

    def log_image(self, name, path):
        self._write("image", name=name, path=str(path))

    def close(self, status):
        self._write("end", status=status)
        self._fh.close()


def read_local_log(path: str | Path) -> list[dict[str, Any]]:
    """The records ``LocalBackend`` wrote (``outputs/logs/metrics.jsonl``, or the outputs folder itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / "logs" / "metrics.jsonl" if (path / "logs").is_dir() else path / "metrics.jsonl"
    records = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
            if not isinstance(record, dict) or "kind" not in record:
                raise ValueError(f"{path}:{number}: expected an object with a 'kind' field")
            records.append(record)
    return records


def metric_history(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The ``metrics`` records as columns: ``step`` plus one list per metric name (``None`` where absent)."""
    rows = [r for r in records if r.get("kind") == "metrics"]
    names = list(dict.fromkeys(name for r in rows for name in r.get("values", {})))
    columns: dict[str, list[Any]] = {"step": [r.get("step") for r in rows]}
    for name in names:
        columns[name] = [r.get("values", {}).get(name) for r in rows]
    return columns


class AzureMLBackend(Backend):
    """``azureml.core.Run.get_context()``; offline runs are called the same way with their prints silenced."""

    name = "azureml"

    def __init__(self, run: Any = None):
        if run is None:
            from azureml.core import Run

            run = Run.get_context()
        self.run = run
        self.offline = type(run).__name__ == "_OfflineRun" or str(getattr(run, "id", "")).startswith("OfflineRun")

    def _quiet(self):
        return contextlib.redirect_stdout(io.StringIO()) if self.offline else contextlib.nullcontext()

    def log_metrics(self, metrics, step):
        with self._quiet():
            for key, value in metrics.items():
                self.run.log(key, float(value))

    def log_params(self, params):
        self.set_tags({f"param.{k}": v for k, v in params.items()})

    def set_tags(self, tags):
        with self._quiet():
            self.run.set_tags({k: str(v) for k, v in tags.items()})

    def log_table(self, name, table):
        with self._quiet():
            self.run.log_table(name, {k: list(v) for k, v in table.items()})
            keys = list(table)
            for row in zip(*(table[k] for k in keys), strict=True):
                self.run.log_row(f"{name}_rows", **dict(zip(keys, row, strict=True)))

    def log_confusion_matrix(self, name, labels, matrix):
        with self._quiet():
            self.run.log_confusion_matrix(name, confusion_matrix_schema(labels, matrix))

    def log_image(self, name, path):
        with self._quiet():
            self.run.log_image(name, path=str(path))

    def close(self, status):
        # Azure ML completes a submitted run itself when the script exits; nothing to do.
        pass


class MLflowBackend(Backend):
    """MLflow tracking (``MLFLOW_TRACKING_URI``); reuses the job's active run when Azure ML started one."""

    name = "mlflow"

    def __init__(self, experiment: str, run_name: str | None = None):
        uri = os.environ.get("MLFLOW_TRACKING_URI", "")
        if uri.startswith("file:") or "://" not in uri:
            # A local file store was asked for explicitly; MLflow 3 refuses it unless this is set.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        import mlflow

        self.mlflow = mlflow
        if not os.environ.get("MLFLOW_RUN_ID") and not os.environ.get("MLFLOW_EXPERIMENT_NAME"):
            mlflow.set_experiment(experiment)
        self.active = mlflow.active_run() or mlflow.start_run(run_name=run_name)
        self._owns_run = mlflow.active_run() is self.active

    def log_metrics(self, metrics, step):
        self.mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def log_params(self, params):
        self.mlflow.log_params({k: str(v)[:500] for k, v in params.items()})

    def set_tags(self, tags):
        self.mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_table(self, name, table):
        self.mlflow.log_dict({k: list(v) for k, v in table.items()}, f"{name}.json")

    def log_confusion_matrix(self, name, labels, matrix):
        self.mlflow.log_dict(confusion_matrix_schema(labels, matrix), f"{name}.json")

    def log_image(self, name, path):
        self.mlflow.log_artifact(str(path), artifact_path="images")

    def log_artifact(self, path):
        self.mlflow.log_artifact(str(path))

    def close(self, status):
        if self._owns_run and not os.environ.get("MLFLOW_RUN_ID"):
            self.mlflow.end_run(status="FINISHED" if status == "completed" else "FAILED")


class Tracker:
    """Fan-out to the backends; a failing backend is disabled with one warning instead of ending training."""

    def __init__(self, backends: Sequence[Backend]):
        self.backends = list(backends)

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.backends]

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        for backend in list(self.backends):
            try:
                getattr(backend, method)(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - tracking must never end training
                log.warning(
                    "tracking backend %s failed in %s (%s: %s); disabling it",
                    backend.name,
                    method,
                    type(exc).__name__,
                    exc,
                )
                self.backends.remove(backend)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self._call("log_metrics", metrics, step)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._call("log_params", params)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._call("set_tags", tags)

    def log_table(self, name: str, table: Mapping[str, Sequence[Any]]) -> None:
        self._call("log_table", name, table)

    def log_confusion_matrix(self, name: str, labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> None:
        self._call("log_confusion_matrix", name, labels, matrix)

    def log_image(self, name: str, path: Path) -> None:
        self._call("log_image", name, Path(path))

    def log_artifact(self, path: Path) -> None:
        self._call("log_artifact", Path(path))

    def close(self, status: str = "completed") -> None:
        self._call("close", status)


class NullTracker(Tracker):
    """For non-main ranks: rank 0 alone logs."""

    def __init__(self):
        super().__init__([])


def open_tracker(outputs: Path, experiment: str = "amlvision", run_name: str | None = None) -> Tracker:
    """The backends this environment supports (see module docstring)."""
    backends: list[Backend] = [LocalBackend(Path(outputs) / "logs")]
    azure: AzureMLBackend | None = None
    try:
        azure = AzureMLBackend()
    except Exception as exc:  # noqa: BLE001 - azureml-core missing or broken must not stop training
        log.warning("Azure ML run context unavailable (%s); logging locally", exc)
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri:
        try:
            backends.append(MLflowBackend(experiment, run_name))
        except Exception as exc:  # noqa: BLE001
            log.warning("MLflow tracking at %s unavailable (%s: %s)", uri, type(exc).__name__, exc)
        if azure is not None and not azure.offline and uri.startswith("azureml"):
            azure = None
    if azure is not None:
        backends.insert(1, azure)
    return Tracker(backends)
