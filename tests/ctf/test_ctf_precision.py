"""Precision (``dtype``, CNTK ``precision``) on every reader API, and CNTK's zero-fill of short or
empty dense samples, on CNTK's own test input empty_samples.txt."""

from __future__ import annotations

import numpy as np
import pytest

from amlvision import ctf

from .helpers import dense, sparse, write_text

BIG = "1.42057e+044"  # a double-precision value of CNTK's reader tests: beyond float32


def _all_apis(path, streams, **options) -> dict[str, dict[str, object]]:
    """The first sequence's data through read, iter_sequences, read_arrays and iter_arrays."""
    arrays = ctf.read_arrays(path, streams, **options)
    first = next(iter(ctf.iter_arrays(path, streams, **options)))
    return {
        "read": ctf.read(path, streams, **options)[0].data,
        "iter_sequences": next(ctf.iter_sequences(path, streams, **options)).data,
        "read_arrays": next(arrays.sequences()).data,
        "iter_arrays": next(first.sequences()).data,
    }


def test_float64_keeps_1_42057e44_exact_on_every_api(tmp_path):
    path = write_text(tmp_path, f"|x {BIG} -6.4265e+020 1e-3 3. |s 2:{BIG} 0:-1.15459e-009\n")
    streams = {"x": dense("x", 4), "s": sparse("s", 3)}
    for api, data in _all_apis(path, streams, dtype=np.float64).items():
        x, s = data["x"], data["s"].toarray()
        assert x.dtype == np.float64 and data["s"].dtype == np.float64, api
        assert x[0].tolist() == [float(BIG), -6.4265e20, 1e-3, 3.0], api  # exact: correctly rounded parse
        assert np.isfinite(x).all() and s[0].tolist() == [-1.15459e-009, 0.0, float(BIG)], api
    # per stream: float64 features, float32 (default) for the rest is refused for the big sparse value
    with pytest.raises(ctf.CTFError, match=r"data\.ctf:1:40: input 's' \(stream 's'\) holds a value beyond"):
        ctf.read(path, streams, dtype={"x": np.float64})


def test_float32_overflow_is_an_error_naming_the_sample(tmp_path):
    path = write_text(tmp_path, "|x 1 2\n|x 3 " + BIG + "\n", "double.ctf")
    for reader in (ctf.read, ctf.read_arrays, lambda *a, **k: list(ctf.iter_sequences(*a, **k))):
        with pytest.raises(ctf.CTFError) as info:
            reader(path, {"x": dense("x", 2)})  # float32 is the default
        message = str(info.value)
        assert message.startswith(f"{path}:2:3: input 'x' (stream 'x') holds a value beyond the range of float32")
        assert "dtype=np.float64" in message
    assert ctf.read_arrays(path, {"x": dense("x", 2)}, dtype=np.float64).data["x"][1, 1] == float(BIG)


def test_float64_overflow_and_integer_dtypes(tmp_path):
    path = write_text(tmp_path, "|x 1e999\n", "huge.ctf")
    with pytest.raises(ctf.CTFError, match=r"huge\.ctf:1:3: .*beyond the range of float64"):
        ctf.read(path, {"x": dense("x", 1)}, dtype=np.float64)
    path = write_text(tmp_path, "|x 255 0 |y 1:200\n")
    (seq,) = ctf.read(path, {"x": dense("x", 2), "y": sparse("y", 2)}, dtype=np.uint8)
    assert seq["x"].dtype == np.uint8 and seq["y"].dtype == np.uint8 and seq["y"].toarray().tolist() == [[0, 200]]
    with pytest.raises(ctf.CTFError, match=r"data\.ctf:1:3: .*not integers in \[-128, 127\]"):
        ctf.read(path, {"x": dense("x", 2), "y": sparse("y", 2)}, dtype=np.int8)


def test_bad_dtype():
    with pytest.raises(ValueError, match="float or integer"):
        ctf.read("unused", {"x": dense("x", 1)}, dtype=np.complex64)


# CNTK's empty_samples.txt, read by CNTK's unit test CNTKTextFormatReader_empty_samples (float,
# features F0 dense dim 10, labels F1 sparse dim 10, maxErrors 0): empty and short dense samples
# are zero-filled, empty sparse samples have no non-zeros.
EMPTY_SAMPLES = (
    "0\t|F0\t|F1\n"
    "0 |F0 0.00237069 0.0782801 0.591209 7.75188 -251.7\t|F1 4:0.507021 6:0.449726 9:-0.84449\n"
    "1|F0 -0.178212 -0.000865256 -3.1326 -0.790603 0.384027 1.20503 -0.523549 -1.48734 1.6809 -248.139"
    "|F1 2:-0.0692516 3:8.61866 5:0.596823\n"
    "1 |F1 |F0 -1.01105 0.0265603 1.00086 -2.20208 0.673256 -2.71453 -58.6547 -612.675 -1.15459e-009 "
    "-6.72083e-005\n"
    "2\t|F0 0.0338812 -4.22605 -0.194759 0.0113556 -0.232183 -6.4265e+020 -1.00135e-007 0.00160272 "
    "0.00277114 -2992.55\t|F1\n"
    "2|F0 -5.04812\n"
)
F0F1 = {"features": dense("F0", 10), "labels": sparse("F1", 10)}


@pytest.mark.parametrize("options", [{"strict": True}, {"pad_short_dense": True}])
def test_cntk_empty_samples_are_zero_filled(tmp_path, options):
    path = write_text(tmp_path, EMPTY_SAMPLES, "empty_samples.txt")
    seqs = ctf.read(path, F0F1, dtype=np.float64, **options)
    assert [(s.id, len(s)) for s in seqs] == [(0, 2), (1, 2), (2, 2)]  # CNTK's epoch: 6 samples
    features = np.concatenate([s["features"] for s in seqs])
    lines = EMPTY_SAMPLES.splitlines()
    expected = np.zeros((6, 10))
    for row, line in enumerate(lines):
        text = line.split("|F0")[1].split("|")[0].split()
        expected[row, : len(text)] = [float(t) for t in text]
    assert features.tolist() == expected.tolist()  # exact in float64, zero-filled as CNTK does
    assert features[0].tolist() == [0.0] * 10 and features[5, 1:].tolist() == [0.0] * 9
    labels = [s["labels"] for s in seqs]
    assert [np.diff(m.indptr).tolist() for m in labels] == [[0, 3], [3, 0], [0]]
    assert labels[0].toarray()[1, [4, 6, 9]].tolist() == [0.507021, 0.449726, -0.84449]


def test_zero_fill_is_off_by_default_and_too_many_values_stay_errors(tmp_path):
    path = write_text(tmp_path, EMPTY_SAMPLES, "empty_samples.txt")
    with pytest.raises(ctf.CTFError, match=r"empty_samples\.txt:1:6: input 'F0' \(stream 'features'\) has 0 values"):
        ctf.read(path, F0F1)
    path = write_text(tmp_path, "|a 1 2 3 4\n", "long.ctf")
    with pytest.raises(ctf.CTFError, match=r"long\.ctf:1:3: .*has 4 values, expected dim=3"):
        ctf.read(path, {"x": dense("a", 3)}, strict=True)
