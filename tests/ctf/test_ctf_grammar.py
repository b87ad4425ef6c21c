"""The CTF grammar as CNTK's CNTKTextFormatReader documents and implements it, case by case."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse as sp

from amlvision import ctf

from .helpers import dense, sparse, write_text


def test_sequence_ids_group_consecutive_lines(tmp_path):
    path = write_text(tmp_path, "0 |a 1 2\n0 |a 3 4\n1 |a 5 6\n")
    seqs = ctf.read(path, {"x": dense("a", 2)})
    assert [s.id for s in seqs] == [0, 1]
    assert [s.line for s in seqs] == [1, 3]
    np.testing.assert_array_equal(seqs[0]["x"], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(seqs[1]["x"], [[5, 6]])
    assert seqs[0]["x"].dtype == np.float32


def test_line_without_id_continues_the_current_sequence(tmp_path):
    path = write_text(tmp_path, "7 |a 1\n|a 2\n8 |a 3\n")
    seqs = ctf.read(path, {"x": dense("a", 1)})
    assert [(s.id, s["x"].ravel().tolist()) for s in seqs] == [(7, [1, 2]), (8, [3])]


def test_repeated_id_after_another_starts_a_new_sequence(tmp_path):
    seqs = ctf.read(write_text(tmp_path, "1 |a 1\n2 |a 2\n1 |a 3\n"), {"x": dense("a", 1)})
    assert [s.id for s in seqs] == [1, 2, 1]


def test_without_ids_each_line_is_a_sequence_numbered_by_line(tmp_path):
    path = write_text(tmp_path, "|a 1\n|a 2\n\n|a 3\n")
    seqs = ctf.read(path, {"x": dense("a", 1)})
    assert [s.id for s in seqs] == [0, 1, 3]  # 0-based line numbers, blank line skipped
    assert [s.line for s in seqs] == [1, 2, 4]
    assert [s["x"].shape for s in seqs] == [(1, 1)] * 3


def test_skip_sequence_ids_makes_every_line_a_sequence(tmp_path):
    path = write_text(tmp_path, "5 |a 1\n5 |a 2\n6 |a 3\n")
    seqs = ctf.read(path, {"x": dense("a", 1)}, skip_sequence_ids=True)
    assert [(s.id, s["x"].item()) for s in seqs] == [(0, 1), (1, 2), (2, 3)]


def test_id_directly_followed_by_pipe(tmp_path):
    seqs = ctf.read(write_text(tmp_path, "0|a 1\n0|a 2\n5|a 3\n"), {"x": dense("a", 1)})
    assert [(s.id, len(s)) for s in seqs] == [(0, 2), (5, 1)]


def test_several_streams_with_aliases_in_any_order(tmp_path):
    path = write_text(tmp_path, "|F 1 2 3 |L 0 1\n|L 1 0 |F 4 5 6\n")
    seqs = ctf.read(path, {"features": dense("F", 3), "labels": dense("L", 2)})
    np.testing.assert_array_equal(seqs[1]["features"], [[4, 5, 6]])
    np.testing.assert_array_equal(seqs[1]["labels"], [[1, 0]])
    assert set(seqs[0].data) == {"features", "labels"}


def test_sparse_samples_are_csr_rows(tmp_path):
    path = write_text(tmp_path, "0 |s 3:1.5 10:-2\n0 |s\n0 |s 19:4\n")
    (seq,) = ctf.read(path, {"s": sparse("s", 20)})
    matrix = seq["s"]
    assert sp.isspmatrix_csr(matrix) and matrix.shape == (3, 20)
    assert matrix.dtype == np.float32
    expected = np.zeros((3, 20), dtype=np.float32)
    expected[0, 3], expected[0, 10], expected[2, 19] = 1.5, -2, 4
    np.testing.assert_array_equal(matrix.toarray(), expected)
    assert np.diff(matrix.indptr).tolist() == [2, 0, 1]  # the empty sample is kept (CNTK allows it)


def test_dense_and_sparse_streams_together(tmp_path):
    path = write_text(tmp_path, "|labels 2:1 |features 0.5 0.25\n|features 1 2 |labels 0:1\n")
    seqs = ctf.read(path, {"labels": sparse("labels", 3), "features": dense("features", 2)})
    assert [s["labels"].indices.tolist() for s in seqs] == [[2], [0]]
    np.testing.assert_array_equal(seqs[0]["features"], [[0.5, 0.25]])


@pytest.mark.parametrize(
    "line",
    [
        "|# a comment 1 2 3 |a 1 2",
        "|a 1 2 |# trailing comment",
        "|a 1 |# comment between samples |b 9\t|a2 ignored",
        "|# escaped |# pipe inside a comment |a 1 2",
        "|#|a 1 2",
    ],
)
def test_comments_run_to_the_next_pipe_or_end_of_line(tmp_path, line):
    (seq,) = ctf.read(write_text(tmp_path, line + "\n"), {"x": dense("a", 2 if "1 2" in line else 1)})
    assert seq["x"].ravel().tolist()[0] == 1


def test_comment_only_lines_are_skipped(tmp_path):
    path = write_text(tmp_path, "|# header written by a tool\n|a 1\n|# note\n|a 2\n")
    seqs = ctf.read(path, {"x": dense("a", 1)})
    assert [s["x"].item() for s in seqs] == [1, 2]
    assert [s.line for s in seqs] == [2, 4]


def test_scientific_notation_and_signs(tmp_path):
    path = write_text(tmp_path, "|a 1e-3 -2.5E+4 +7 3. -0.5 1.25e2 -0 12345678901\n")
    (seq,) = ctf.read(path, {"x": dense("a", 8)})
    np.testing.assert_array_equal(
        seq["x"][0], np.array([1e-3, -2.5e4, 7, 3, -0.5, 125, 0, 12345678901], dtype=np.float32)
    )


def test_integers_take_the_exact_fast_path_up_to_fifteen_digits(tmp_path):
    values = [0, 7, 255, 1000, 4294967295, 999999999999999, 1234567890123456789]
    arrays = ctf.read_arrays(
        write_text(tmp_path, "|a " + " ".join(map(str, values)) + "\n"),
        {"x": dense("a", len(values))},
        dtype=np.float32,
    )
    np.testing.assert_array_equal(arrays.data["x"][0], np.array(values, dtype=np.float64).astype(np.float32))


def test_random_floats_read_back_as_python_parses_them(tmp_path):
    rng = np.random.default_rng(3)
    values = rng.standard_normal((50, 7)) * 10.0 ** rng.integers(-8, 8, (50, 7))
    text = "".join("|a " + " ".join(repr(v) for v in row.tolist()) + "\n" for row in values)
    arrays = ctf.read_arrays(write_text(tmp_path, text), {"x": dense("a", 7)})
    np.testing.assert_array_equal(arrays.data["x"], values.astype(np.float32))


def test_blank_and_whitespace_only_lines(tmp_path):
    seqs = ctf.read(write_text(tmp_path, "\n  \n0 |a 1\n\t\n0 |a 2\n\n"), {"x": dense("a", 1)})
    assert len(seqs) == 1 and seqs[0]["x"].ravel().tolist() == [1, 2]


def test_missing_final_newline(tmp_path):
    seqs = ctf.read(write_text(tmp_path, "|a 1 2\n|a 3 4"), {"x": dense("a", 2)})
    np.testing.assert_array_equal(seqs[-1]["x"], [[3, 4]])


def test_crlf_line_endings(tmp_path):
    seqs = ctf.read(write_text(tmp_path, b"0 |a 1 2 |s 1:1\r\n0 |a 3 4\r\n"), {"x": dense("a", 2), "s": sparse("s", 2)})
    np.testing.assert_array_equal(seqs[0]["x"], [[1, 2], [3, 4]])
    assert seqs[0]["s"].shape == (1, 2)


def test_tabs_and_spaces_are_interchangeable(tmp_path):
    seqs = ctf.read(write_text(tmp_path, "0\t|a\t1\t 2  \t|s\t0:5 \t1:6\n"), {"x": dense("a", 2), "s": sparse("s", 2)})
    np.testing.assert_array_equal(seqs[0]["x"], [[1, 2]])
    np.testing.assert_array_equal(seqs[0]["s"].toarray(), [[5, 6]])


def test_utf8_byte_order_mark_is_skipped(tmp_path):
    seqs = ctf.read(write_text(tmp_path, b"\xef\xbb\xbf0 |a 1\n"), {"x": dense("a", 1)})
    assert seqs[0].id == 0


def test_a_stream_may_be_missing_from_some_lines_of_a_sequence(tmp_path):
    path = write_text(tmp_path, "0 |a 1 |b 1 0\n0 |a 2\n0 |a 3\n1 |b 0 1\n1 |a 4\n")
    seqs = ctf.read(path, {"a": dense("a", 1), "b": dense("b", 2)})
    assert [s["a"].shape[0] for s in seqs] == [3, 1]
    assert [s["b"].shape[0] for s in seqs] == [1, 1]
    assert len(seqs[0]) == 3


def test_undeclared_inputs_are_ignored_as_in_cntk(tmp_path):
    path = write_text(tmp_path, "|extra 1 2 3 |a 1\n|a 2 |other 0:1\n|only_undeclared 5\n")
    seqs = ctf.read(path, {"x": dense("a", 1)})
    assert [s["x"].item() for s in seqs] == [1, 2]


def test_pad_short_dense_fills_zeros_like_cntk(tmp_path):
    path = write_text(tmp_path, "|a 1 2\n|a\n|a 5 6 7 8\n")
    seqs = ctf.read(path, {"x": dense("a", 4)}, pad_short_dense=True)
    np.testing.assert_array_equal(np.vstack([s["x"] for s in seqs]), [[1, 2, 0, 0], [0, 0, 0, 0], [5, 6, 7, 8]])


def test_alias_that_prefixes_another_alias(tmp_path):
    path = write_text(tmp_path, "|a 1 |ab 2 3 |a1 4\n")
    (seq,) = ctf.read(path, {"a": dense("a", 1), "ab": dense("ab", 2), "a1": dense("a1", 1)})
    assert (seq["a"].item(), seq["ab"].tolist(), seq["a1"].item()) == (1, [[2, 3]], 4)


def test_chunked_reading_matches_whole_file_reading(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for seq_id in range(300):
        for line_in_sequence in range(int(rng.integers(1, 6))):
            parts = [f"{seq_id} "]
            if line_in_sequence == 0 or rng.random() < 0.8:
                parts.append("|d " + " ".join(str(int(v)) for v in rng.integers(0, 300, 4)) + " ")
            parts.append("|s " + " ".join(f"{j}:{rng.standard_normal():.4g}" for j in sorted(rng.choice(50, 3, False))))
            lines.append("".join(parts))
    text = "\n".join(lines) + "\n"
    path = write_text(tmp_path, text)
    streams = {"d": dense("d", 4), "s": sparse("s", 50)}
    whole = ctf.read(path, streams)
    small = list(ctf.iter_sequences(path, streams, chunk_bytes=97))
    assert [s.id for s in small] == [s.id for s in whole] == list(range(300))
    for a, b in zip(small, whole, strict=True):
        assert a.line == b.line
        np.testing.assert_array_equal(a["d"], b["d"])
        np.testing.assert_array_equal(a["s"].toarray(), b["s"].toarray())


def test_read_arrays_offsets_index_the_sequences(tmp_path):
    path = write_text(tmp_path, "3 |a 1\n3 |a 2\n4 |a 3\n9 |a 4\n9 |a 5\n9 |a 6\n")
    arrays = ctf.read_arrays(path, {"x": dense("a", 1)})
    assert arrays.ids.tolist() == [3, 4, 9]
    assert arrays.offsets["x"].tolist() == [0, 2, 3, 6]
    assert arrays.sample_lines["x"].tolist() == [1, 2, 3, 4, 5, 6]
    assert [s["x"].ravel().tolist() for s in arrays.sequences()] == [[1, 2], [3], [4, 5, 6]]


def test_empty_file_has_no_sequences(tmp_path):
    assert ctf.read(write_text(tmp_path, ""), {"x": dense("a", 1)}) == []
    arrays = ctf.read_arrays(write_text(tmp_path, "\n\n", "blank.ctf"), {"x": dense("a", 3)})
    assert len(arrays) == 0 and arrays.data["x"].shape == (0, 3)


def test_stream_definitions_are_validated():
    with pytest.raises(ValueError, match="positive int"):
        ctf.StreamDef("a", 0)
    with pytest.raises(ValueError, match="whitespace"):
        ctf.StreamDef("a b", 3)
    with pytest.raises(ValueError, match="share the alias"):
        ctf.read("unused", {"x": dense("a", 1), "y": dense("a", 2)})


@pytest.mark.parametrize("chunk_bytes", [7, 64, 1 << 20])
def test_read_arrays_across_chunks_matches_read(tmp_path, chunk_bytes):
    rng = np.random.default_rng(5)
    rows = [rng.integers(0, 10 ** int(rng.integers(1, 6)), int(rng.integers(1, 4))).tolist() for _ in range(200)]
    text = "".join(
        f"{i // 3} |a {' '.join(map(str, [r[0], r[-1]]))} |s {r[0] % 9}:{len(r)}\n" for i, r in enumerate(rows)
    )
    path = write_text(tmp_path, text)
    streams = {"x": dense("a", 2), "s": sparse("s", 9)}
    arrays = ctf.read_arrays(path, streams, chunk_bytes=chunk_bytes)
    seqs = ctf.read(path, streams)
    assert arrays.data["x"].shape == (200, 2) and arrays.data["s"].shape == (200, 9)
    np.testing.assert_array_equal(arrays.data["x"], np.vstack([s["x"] for s in seqs]))
    np.testing.assert_array_equal(arrays.data["s"].toarray(), np.vstack([s["s"].toarray() for s in seqs]))
    assert arrays.offsets["x"].tolist() == [0, *np.cumsum([len(s["x"]) for s in seqs]).tolist()]
    assert arrays.ids.tolist() == [s.id for s in seqs] == list(range(67))


def test_vectorised_number_check_agrees_with_the_grammar_regex():
    from amlvision.ctf.numbers import NUMBER, reals_are_valid

    rng = np.random.default_rng(11)
    alphabet = np.array(list("019.eE+- "))
    disagreements = []
    for length in range(1, 9):
        for _ in range(400):
            text = "".join(rng.choice(alphabet, length))
            expected = all(NUMBER.fullmatch(token.encode()) for token in text.split())
            if reals_are_valid(text.encode()) != expected:
                disagreements.append(text)
    assert disagreements == []
