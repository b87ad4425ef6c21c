"""amlvision.inference: preprocessing by preprocess.json, the ONNX Runtime predictor, `amlvision predict`."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from amlvision.inference import InputError, Predictor, PreprocessConfig
from amlvision.inference.decode import decode_image_bytes, decode_image_file
from amlvision.testing.tiny_model import build_tiny_cnn


@pytest.fixture(scope="module")
def predictor(model_dir: Path) -> Predictor:
    return Predictor(model_dir, threads=1)


def test_onnx_predictor_matches_the_pytorch_model_it_was_exported_from(predictor, model_dir, test_files):
    torch.set_num_threads(1)
    meta = json.loads((model_dir / "tiny_model.json").read_text())
    model = build_tiny_cnn(meta["n_classes"])
    model.load_state_dict(torch.load(model_dir / "model.pt", weights_only=True))
    model.eval()
    x = predictor.preprocess.images_to_input([decode_image_file(p, channels=3) for p in test_files])
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(x)).double(), dim=1).numpy()
    np.testing.assert_allclose(predictor.probabilities(x), expected, atol=1e-5)


def test_images_are_normalised_with_the_model_mean_and_std(predictor, model_dir, test_files):
    raw = json.loads((model_dir / "preprocess.json").read_text())
    pixels = np.asarray(Image.open(test_files[0]).convert("RGB"), dtype=np.float32)  # independent decode
    expected = (pixels - np.float32(raw["mean"])) / np.float32(raw["std"])
    got = predictor.preprocess.images_to_input([decode_image_file(test_files[0], channels=3)])
    assert got.shape == (1, 3, 32, 32) and got.dtype == np.float32
    np.testing.assert_allclose(got[0].transpose(1, 2, 0), expected, rtol=1e-6, atol=1e-5)


def test_images_of_other_sizes_and_formats_are_resized_bilinearly(predictor, test_files):
    big = Image.open(test_files[1]).convert("RGB").resize((97, 61), Image.Resampling.NEAREST)
    for fmt in ("PNG", "BMP", "TIFF"):
        buf = io.BytesIO()
        big.save(buf, format=fmt)
        decoded = decode_image_bytes(buf.getvalue(), name=fmt, channels=3)
        expected = np.asarray(big.resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float32)
        got = predictor.preprocess.pixels_nchw([decoded])[0].transpose(1, 2, 0)
        np.testing.assert_array_equal(got, expected)


def test_gray_images_are_replicated_to_rgb(predictor):
    buf = io.BytesIO()
    Image.fromarray(np.arange(32 * 32, dtype=np.uint8).reshape(32, 32) % 251).save(buf, format="JPEG")
    pixels = predictor.preprocess.pixels_nchw([decode_image_bytes(buf.getvalue(), name="g", channels=3)])[0]
    np.testing.assert_array_equal(pixels[0], pixels[1])
    np.testing.assert_array_equal(pixels[1], pixels[2])


def test_arrays_in_nchw_nhwc_raw_or_normalised_give_the_same_input(predictor, test_files):
    pre = predictor.preprocess
    image = decode_image_file(test_files[2], channels=3)
    expected = pre.images_to_input([image])
    nhwc = image[None].astype(np.float32)
    np.testing.assert_array_equal(pre.array_to_input(nhwc.tolist()), expected)
    np.testing.assert_array_equal(pre.array_to_input(nhwc.transpose(0, 3, 1, 2)), expected)
    np.testing.assert_array_equal(pre.array_to_input(nhwc[0].transpose(2, 0, 1)), expected)  # one CHW image
    np.testing.assert_array_equal(pre.array_to_input(expected, normalized=True), expected)
    np.testing.assert_array_equal(pre.array_to_input(image[None].tolist(), layout="nhwc"), expected)


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        (np.zeros((2, 3, 31, 32)), {}, "the model needs [N, 3, 32, 32]"),
        (np.zeros((3, 32)), {}, "got 2 dimensions"),
        (np.full((1, 3, 32, 32), np.nan), {}, "NaN or infinite"),
        (np.full((1, 3, 32, 32), 300.0), {}, "outside 0-255"),
        (np.zeros((1, 3, 32, 32)), {"layout": "CHWN"}, "'layout' must be"),
        (np.zeros((0, 3, 32, 32)), {}, "holds no images"),
    ],
)
def test_bad_arrays_are_refused_with_a_reason(predictor, data, kwargs, message):
    with pytest.raises(InputError, match=None) as info:
        predictor.preprocess.array_to_input(data, **kwargs)
    assert message in str(info.value)


def test_preprocess_json_errors_name_the_file_and_field(tmp_path):
    bad = tmp_path / "preprocess.json"
    bad.write_text(json.dumps({"height": 32, "width": 32, "channels": 3, "mean": [0, 0], "std": [1, 1, 0]}))
    with pytest.raises(ValueError, match="preprocess.json: mean and std need 3 values"):
        PreprocessConfig.load(bad)
    bad.write_text(json.dumps({"width": 32, "channels": 3}))
    with pytest.raises(ValueError, match="preprocess.json: invalid or missing field"):
        PreprocessConfig.load(bad)


def test_predictor_checks_the_model_directory_against_the_contract(model_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing model.onnx"):
        Predictor(tmp_path)
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    (copy / "labels.json").write_text(json.dumps(["a", "b"]))
    with pytest.raises(ValueError, match="10 outputs but labels.json names 2 classes"):
        Predictor(copy)


def test_decoder_refuses_bombs_and_non_images_naming_the_source():
    with pytest.raises(InputError, match=r"upload\.png: not a PNG/JPEG/TIFF/BMP file"):
        decode_image_bytes(b"GIF89a....", name="upload.png", channels=3)
    from tests.serving.conftest import png_bomb

    with pytest.raises(InputError, match="bomb.png: refused as a decompression bomb"):
        decode_image_bytes(png_bomb(), name="bomb.png", channels=3, max_pixels=1_000_000)


def _predict_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "amlvision", "predict", *args], capture_output=True, text=True)


def test_predict_cli_prints_top_k_labels_per_file(model_dir, test_files, predict_answer):
    done = _predict_cli(str(model_dir), *map(str, test_files[:4]), "--top-k", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 4
    for line, answer in zip(lines, predict_answer[:4], strict=True):
        path, ranked = line.split("\t")
        assert path == answer["file"]
        labels = ranked.split()[::2]
        assert labels == [t["label"] for t in answer["top_k"][:2]]


def test_predict_json_answers_are_ranked_probabilities(predict_answer):
    for answer in predict_answer:
        probs = [t["probability"] for t in answer["top_k"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-9
        assert answer["label"] == answer["top_k"][0]["label"]


def test_predictor_is_accurate_above_chance_on_the_whole_test_split(predictor, cifar_subset):
    files = sorted((cifar_subset / "test").glob("*/*.png"))
    predictions = predictor.predict_files(files, k=1)
    accuracy = np.mean([p.label == f.parent.name for p, f in zip(predictions, files, strict=True)])
    assert accuracy > 0.2, accuracy  # 500 images, 10 classes: chance is 0.10; the model trained for seconds


def test_predict_cli_names_a_bad_file_and_exits_2(model_dir, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    done = _predict_cli(str(model_dir), str(bad))
    assert done.returncode == 2
    assert f"{bad}: not a PNG/JPEG/TIFF/BMP file" in done.stderr


def test_serving_code_never_imports_torch():
    # The scoring image has no PyTorch: everything score.py, predict, serve and call import must work without it.
    code = (
        "import sys, amlvision.serving.entry, amlvision.commands.predict, amlvision.commands.serve, "
        "amlvision.commands.call; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'torchvision', 'sklearn', 'scipy')); print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_scoring_image_pins_match_the_tested_environment():
    # The container must run the same ONNX Runtime / numpy / Pillow as the tests, or answers could drift.
    from importlib.metadata import version

    from packaging.requirements import Requirement

    lines = (Path(__file__).resolve().parents[2] / "requirements-score.txt").read_text().splitlines()
    pins = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    assert {p.name for p in pins} >= {"onnxruntime", "numpy", "pillow", "azureml-inference-server-http"}
    for pin in pins:
        assert pin.specifier.contains(version(pin.name)), f"{pin} but the test environment has {version(pin.name)}"
