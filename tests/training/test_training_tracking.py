"""Tracking: the offline Azure ML run stays harmless and everything lands in outputs/; MLflow logs to a file store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amlvision.training.loop import main
from amlvision.training.tracking import AzureMLBackend, Tracker, confusion_matrix_schema, open_tracker

from .helpers import train_args


def _records(outputs: Path) -> list[dict]:
    return [json.loads(line) for line in (outputs / "logs" / "metrics.jsonl").read_text().splitlines()]


def test_offline_azure_run_logs_everything_locally(fast_run: Path) -> None:
    records = _records(fast_run)
    epochs = [r for r in records if r["kind"] == "metrics" and "loss" in r["values"]]
    assert [r["step"] for r in epochs] == [1, 2]
    assert {"loss", "accuracy", "val_accuracy", "lr", "images_per_sec"} <= set(epochs[0]["values"])
    tags = next(r["values"] for r in records if r["kind"] == "tags")
    assert tags["model"] == "fast" and len(tags["git_commit"]) == 40 and len(tags["data_checksum"]) == 16
    matrix = next(r["values"] for r in records if r["kind"] == "confusion_matrix")
    assert matrix["schema_type"] == "confusion_matrix" and matrix["schema_version"] == "1.0.0"
    assert len(matrix["data"]["matrix"]) == 10
    table = next(r for r in records if r["kind"] == "table")
    assert table["name"] == "per_class_metrics" and len(table["values"]["f1"]) == 10
    assert {r["name"] for r in records if r["kind"] == "image"} == {
        "confusion_matrix",
        "confusion_matrix_normalized",
        "pr_curves",
        "roc_curves",
        "mistakes",
    }
    assert records[-1] == {**records[-1], "kind": "end", "status": "completed"}


def test_offline_run_calls_are_harmless(tmp_path: Path, capsys) -> None:
    backend = AzureMLBackend()  # the real azureml.core Run.get_context() outside Azure
    assert backend.offline
    png = tmp_path / "x.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    tracker = Tracker([backend])
    tracker.log_metrics({"loss": 1.0}, step=1)
    tracker.log_table("per_class", {"class": ["a", "b"], "f1": [0.5, 0.7]})
    tracker.log_confusion_matrix("cm", ["a", "b"], [[1, 0], [0, 1]])
    tracker.log_image("cm", png)
    tracker.set_tags({"model": "fast"})
    tracker.close()
    assert tracker.backends == [backend]  # nothing failed, so nothing was disabled
    assert "Attempted to log" not in capsys.readouterr().out  # offline prints are silenced


def test_failing_backend_never_stops_training(tmp_path: Path) -> None:
    class Broken(AzureMLBackend):
        def __init__(self):
            self.offline = True
            self.run = None  # every call raises AttributeError

    tracker = open_tracker(tmp_path)
    tracker.backends.append(Broken())
    tracker.log_metrics({"loss": 1.0}, step=1)
    assert [b.name for b in tracker.backends] == ["local", "azureml"]


def test_confusion_matrix_schema_is_azure_ml_json() -> None:
    schema = confusion_matrix_schema(["cat", "dog"], [[3, 1], [0, 4]])
    assert schema == {
        "schema_type": "confusion_matrix",
        "schema_version": "1.0.0",
        "data": {"class_labels": ["cat", "dog"], "matrix": [[3, 1], [0, 4]]},
    }


def test_mlflow_file_store_receives_metrics_tags_and_artifacts(
    cifar_packed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    outputs = tmp_path / "out"
    args = train_args(cifar_packed, outputs, "--batch-size", "64", "--epoch-size", "256", "--experiment", "tests")
    assert main(args) == 0
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=store.as_uri())
    experiment = client.get_experiment_by_name("tests")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2]
    assert run.data.metrics["final_accuracy"] == json.loads((outputs / "metrics.json").read_text())["accuracy"]
    assert run.data.tags["model"] == "resnet20" and run.data.params["batch_size"] == "64"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"confusion_matrix.json", "per_class_metrics.json", "metrics.json", "model.onnx"} <= artifacts
    assert (outputs / "logs" / "metrics.jsonl").is_file()  # the local record is kept as well
