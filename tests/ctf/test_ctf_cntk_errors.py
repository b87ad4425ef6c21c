"""``max_errors`` (CNTK ``maxErrors``) and ``strict=True`` (CNTK's exact grammar) on CNTK's own
reader test inputs (Tests/UnitTests/ReaderTests/Data/CNTKTextFormatReader, reproduced byte for
byte) and on small cases read off CNTK's TextParser / TextInputIndexBuilder."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

from amlvision import ctf

from .helpers import dense, sparse, write_text

# CNTK's invalid_inputs.txt (922 bytes, no final newline), read by CNTK's unit test
# CNTKTextFormatReader_invalid_inputs with A dense dim 1, B sparse dim 10 and maxErrors 99999.
INVALID_INPUTS = "\n".join(
    [
        "1 |A 1.0 |B 1:1     |# one of the samples in each sequence has to be valid,",
        "1 |A 1.0 |B 10:1    |# otherwise the sequence would be empty and the reader",
        "1 |A 1.0 1.0 |B 1:1 |# will raise an exception",
        "2 |A 2.0 |B 2:2",
        "2 |A 2,0 |B 2:2",
        "2 |A 2.0 |B 2::2",
        "2 |A 20. |B 2:2",
        "2 |A 2:0 |B 2:2",
        "2 |A 2.0 |B 2 ",
        "2 |A 2.0 |B 2.2",
        "2 |A 2.0 |B 2;2",
        "2 |A 2#0 |B 2:2",
        "2 |#AAAA 20 |B 2:2",
        "2 |A 2.0f |B 2:2",
        "2 |A 02.0 |B 2.2",
        "2 |A 2.0 |B 2.0:2.0",
        "2 |A 2.0 |B -2:2.0",
        "3 |A 3.0 |B 3:3",
        "3 | A 3.0 |B 3:3",
        "|A 3.0 |B 3:3",
        "| A 3.0 |B 3:3",
        " |A 3.0 |B 3:3",
        "3\t|A 3.0 |B 3:3",
        "|B 3:3",
        "|A 3.0",
        "|C 3.0",
        "4 |A 4.0 |B 4:4",
        "4| ",
        "|A 4.0 |B 4:4",
        "",
        "|",
        "|#",
        "|####\t|A 4.0|####|B 4:4",
        "5|A 5.|# the only well-formed sequence in this file|B 5:5",
        "123 |A 123 |B 1:23",
        "123 |A 124",
        "123 |B 1:24 |# sequence length will be mis-calculated here (3 instead of 2).",
        "6 |A 6.0 |B 6:6",
        "|# sparse suffix in A (totally fine, but should print a warning anyways) |A |B 6:6",
        "|A 6.0 6.0 |B 6:6",
        "|A 6.0 |B 6:6",
        "|A 6.0 |B 6:6",
    ]
)
AB = {"A": dense("A", 1), "B": sparse("B", 10)}


def _skipped_lines(caplog) -> list[int]:
    return [
        int(re.search(r":(\d+)[:;\s]", r.getMessage()).group(1)) for r in caplog.records if "skipped" in r.getMessage()
    ]


def test_cntk_invalid_inputs_strict_matches_cntk_control_output(tmp_path, caplog):
    path = write_text(tmp_path, INVALID_INPUTS, "invalid_inputs.txt")
    assert path.stat().st_size == 922
    with caplog.at_level(logging.WARNING, logger="amlvision.ctf"):
        seqs = ctf.read(path, AB, strict=True, max_errors=99999)
    # CNTK's control output (invalid_inputs_Control.txt) loads the sequences 1, 2, 3, 4, 5, 123, 6 and
    # reports "per-input number of samples is less than expected" as 2 vs 3, 9 vs 14, 7 vs 9, 3 vs 7, 2 vs 3
    assert [s.id for s in seqs] == [1, 2, 3, 4, 5, 123, 6]
    assert [max(s["A"].shape[0], s["B"].shape[0]) for s in seqs[:4]] == [2, 9, 7, 3]
    assert [s["A"].ravel().tolist() for s in seqs] == [
        [1, 1],
        [2, 2, 20, 2, 2, 2, 2, 2, 2],  # '20.' and '02.0' are numbers; '2,0' '2:0' '2#0' '2.0f' are not
        [3, 3, 3, 3, 3],  # '| A' is no input name; '|C' is undeclared
        [4, 4, 4],
        [5],
        [123, 124],
        [6, 0, 6, 6],  # CNTK zero-fills the empty 'A' ("sparse suffix") and drops 'A 6.0 6.0'
    ]
    assert [s["B"].indices.tolist() for s in seqs[:2]] == [[1, 1], [2, 2, 2, 2, 2, 2, 2]]
    assert seqs[5]["B"].toarray()[:, 1].tolist() == [23, 24]
    messages = [r.getMessage() for r in caplog.records]
    # the spots CNTK warns about, each named as file:line:column
    for expected in (
        "invalid_inputs.txt:2:13: input 'B' (stream 'B'): sparse index 10 >= dim 10",
        "invalid_inputs.txt:3:5: input 'A' (stream 'A') has 2 values, expected dim=1",
        "invalid_inputs.txt:5:6: input 'A' (stream 'A'): '2,0' is not a number",
        "invalid_inputs.txt:19:3: '|' must be followed by an input name",
        "invalid_inputs.txt:26: no sample of a declared input on this line",
        "invalid_inputs.txt:30: no sample of a declared input",  # the blank line
        "invalid_inputs.txt:4: sequence 2 has 14 lines but at most 9 samples per input",
        "invalid_inputs.txt:27: sequence 4 has 7 lines but at most 3 samples per input",
    ):
        assert any(expected in m for m in messages), expected
    # counted in CNTK's order: a sequence's line count is checked after its last line (named by its first)
    assert _skipped_lines(caplog) == [2, 3, 1, 5, 6, 8, 9, 10, 11, 12, 14, 15, 16, 17, 4] + [
        19,
        21,
        26,
        18,
        28,
        28,
        30,
        31,
        31,
        32,
        27,
        35,
        40,
    ]


def test_max_errors_stops_at_error_n_plus_one(tmp_path, caplog):
    path = write_text(tmp_path, INVALID_INPUTS, "invalid_inputs.txt")
    with caplog.at_level(logging.WARNING, logger="amlvision.ctf"), pytest.raises(ctf.CTFError) as info:
        ctf.read(path, AB, strict=True, max_errors=4)
    # errors 1-4 are skipped with a warning each; the 5th (line 6) stops the read
    assert _skipped_lines(caplog) == [2, 3, 1, 5]
    assert str(info.value).startswith(f"{path}:6:13: input 'B' (stream 'B'): '2::2' is not a sparse index:value pair")
    assert "error 5: more than max_errors=4" in str(info.value)


def test_default_max_errors_zero_stops_at_the_first_error(tmp_path):
    path = write_text(tmp_path, INVALID_INPUTS, "invalid_inputs.txt")
    with pytest.raises(ctf.CTFError, match=r"invalid_inputs\.txt:2:13: .*sparse index 10 >= dim 10$"):
        ctf.read(path, AB)


def test_lenient_max_errors_skips_malformed_one_line_sequences(tmp_path, caplog):
    path = write_text(tmp_path, "|a 1 2 3\n|a 1 x 3\n|a 4 5 6\n|a 7 8\n|a 9 9 9 9\n|a 0 0 0\n")
    with caplog.at_level(logging.WARNING, logger="amlvision.ctf"):
        seqs = ctf.read(path, {"x": dense("a", 3)}, max_errors=3)
    assert [s.id for s in seqs] == [0, 2, 5]  # lines 2, 4 and 5 dropped, ids stay line numbers
    assert np.concatenate([s["x"] for s in seqs]).tolist() == [[1, 2, 3], [4, 5, 6], [0, 0, 0]]
    assert _skipped_lines(caplog) == [2, 4, 5]
    assert sum("dropped" in r.getMessage() for r in caplog.records) == 3
    with pytest.raises(ctf.CTFError, match=r"data\.ctf:5:3: .*has 4 values.*error 3: more than max_errors=2"):
        ctf.read(path, {"x": dense("a", 3)}, max_errors=2)


def test_max_errors_counts_across_chunks_and_arrays(tmp_path):
    good = "|a 1 2 3 |b 1:1\n"
    text = good * 300 + "|a 1 2\n" + good * 300 + "|a 1 2 3 |b 7:1\n" + good * 10
    path = write_text(tmp_path, text)
    streams = {"x": dense("a", 3), "y": sparse("b", 5)}
    arrays = ctf.read_arrays(path, streams, max_errors=2, chunk_bytes=1000)
    assert len(arrays) == 610 and arrays.data["x"].shape == (610, 3) and arrays.data["y"].shape == (610, 5)
    assert 300 not in arrays.ids.tolist() and 601 not in arrays.ids.tolist()
    with pytest.raises(ctf.CTFError, match=r"data\.ctf:602:13: .*sparse index 7 >= dim 5"):
        ctf.read_arrays(path, streams, max_errors=1, chunk_bytes=1000)


def test_bad_max_errors():
    with pytest.raises(ValueError, match="max_errors"):
        ctf.read("unused", {"x": dense("a", 1)}, max_errors=-1)


# CNTK's contains_blank_lines.txt with the edge_cases.cntk configurations blank_lines
# (skipSequenceIds, maxErrors 0: "Reached the maximum number of allowed errors") and
# blank_lines_ignored (maxErrors = 2: one blank line in a sequence costs two errors).
BLANK_LINES = "1 |features 1.0\n\n2 |features 2.0\n"


def test_cntk_blank_lines_strict(tmp_path):
    path = write_text(tmp_path, BLANK_LINES, "contains_blank_lines.txt")
    streams = {"features": dense("features", 1)}
    with pytest.raises(ctf.CTFError, match=r"contains_blank_lines\.txt:2: no sample of a declared input"):
        ctf.read(path, streams, strict=True, skip_sequence_ids=True)
    with pytest.raises(ctf.CTFError, match=r":2: sequence 1 has no sample of input 'features'"):
        ctf.read(path, streams, strict=True, skip_sequence_ids=True, max_errors=5)  # CNTK: "Bailing out"
    seqs = ctf.read(path, streams, strict=True, max_errors=2)
    assert [(s.id, s["features"].ravel().tolist()) for s in seqs] == [(1, [1.0]), (2, [2.0])]
    with pytest.raises(ctf.CTFError, match=r":1: sequence 1 has 2 lines but at most 1 samples.*max_errors=1"):
        ctf.read(path, streams, strict=True, max_errors=1)
    # the lenient default skips blank lines, as before
    assert [s.id for s in ctf.read(path, streams)] == [1, 2]


# CNTK's duplicate_inputs.txt (edge_cases.cntk duplicate_inputs: F1, F2 dense dim 1, maxErrors 0 fails)
def test_cntk_duplicate_inputs(tmp_path):
    path = write_text(tmp_path, "1 |F1 1.0 |F2 2.0 |F2 3.0\n", "duplicate_inputs.txt")
    streams = {"f1": dense("F1", 1), "f2": dense("F2", 1)}
    with pytest.raises(ctf.CTFError, match=r"duplicate_inputs\.txt:1: sequence 1: input 'F2' has 2 samples in 1 lines"):
        ctf.read(path, streams, strict=True)
    (seq,) = ctf.read(path, streams, strict=True, max_errors=1)  # CNTK keeps both samples
    assert seq["f2"].ravel().tolist() == [2.0, 3.0]
    with pytest.raises(ctf.CTFError, match=r"duplicate_inputs\.txt:1:19: input 'F2' appears twice"):
        ctf.read(path, streams)
    (seq,) = ctf.read(path, streams, max_errors=1)  # lenient: the repeated sample is the error, dropped
    assert seq["f2"].ravel().tolist() == [2.0]


def test_strict_allows_a_repeated_input_when_lines_cover_it(tmp_path):
    """CNTK compares an input's samples with the lines of the sequence, not per line."""
    path = write_text(tmp_path, "1 |a 1 |a 2\n1 |b 3\n")
    (seq,) = ctf.read(path, {"x": dense("a", 1), "y": dense("b", 1)}, strict=True)
    assert seq["x"].ravel().tolist() == [1, 2] and seq["y"].ravel().tolist() == [3]


@pytest.mark.parametrize(
    ("text", "line", "lenient"),
    [
        ("|a 1\n\n|a 2\n", 2, 2),  # blank line (a sequence of its own without ids)
        ("|a 1\n|# only a comment\n|a 2\n", 2, 2),
        ("|a 1\n|b 5\n|a 2\n", 2, 2),  # only an undeclared input
        ("|a 1\n|a 2\n\n", 3, 2),  # trailing blank line
        ("0 |a 1\n\n1 |a 2\n", 2, 2),  # blank line inside a sequence
        ("0 |a 1\n0 |# comment\n", 2, 1),
    ],
)
def test_strict_rejects_lines_without_declared_samples(tmp_path, text, line, lenient):
    path = write_text(tmp_path, text, "broken.ctf")
    with pytest.raises(ctf.CTFError, match=rf"broken\.ctf:{line}: no sample of a declared input"):
        ctf.read(path, {"x": dense("a", 1)}, strict=True)
    assert len(ctf.read(path, {"x": dense("a", 1)})) == lenient  # the lenient default skips these lines


def test_strict_rejects_an_empty_file(tmp_path):
    for text in (b"", b"\xef\xbb\xbf"):  # CNTK: "Input file is empty", also after a byte order mark
        path = write_text(tmp_path, text, "empty.ctf")
        with pytest.raises(ctf.CTFError, match=r"empty\.ctf: the file is empty"):
            ctf.read(path, {"x": dense("a", 1)}, strict=True)
        assert ctf.read(path, {"x": dense("a", 1)}) == []


@pytest.mark.parametrize("text", ["\n|a 1\n", " |a 1\n", "x |a 1\n", "|# c\n|a 1\n"])
def test_strict_decides_the_mode_from_the_first_byte(tmp_path, text):
    path = write_text(tmp_path, text, "broken.ctf")
    if text.startswith("|"):  # one sequence per line: the comment line is an empty sequence
        with pytest.raises(ctf.CTFError, match=r"broken\.ctf:1: no sample"):
            ctf.read(path, {"x": dense("a", 1)}, strict=True)
    else:  # CNTK: "Expected a sequence id at the offset 0"
        with pytest.raises(ctf.CTFError, match=r"broken\.ctf:1:1: expected a sequence id or '\|'"):
            ctf.read(path, {"x": dense("a", 1)}, strict=True)
    assert ctf.read(path, {"x": dense("a", 1)}, max_errors=1)[0]["x"].item() == 1.0


def test_strict_accepts_what_cntk_accepts(tmp_path):
    text = "0\t|a 1 |b\n0 |b 1:2 |a\n|a 5|# c|b 0:1\n7|a 3 4|c 9|b 2:1e-3\n"
    seqs = ctf.read(write_text(tmp_path, text), {"x": dense("a", 2), "y": sparse("b", 3)}, strict=True)
    assert [s.id for s in seqs] == [0, 7]
    assert seqs[0]["x"].tolist() == [[1, 0], [0, 0], [5, 0]]  # short and empty dense samples zero-filled
    assert seqs[0]["y"].toarray().tolist() == [[0, 0, 0], [0, 2, 0], [1, 0, 0]]  # empty sparse sample
    assert seqs[1]["x"].tolist() == [[3, 4]] and seqs[1]["y"].toarray().tolist() == [[0, 0, np.float32(1e-3)]]


# CNTK's missing_trailing_newline.txt (edge_cases.cntk: features dim 1; maxErrors 0 fails, 2 passes)
def test_cntk_missing_trailing_newline(tmp_path):
    path = write_text(tmp_path, "1|features 1.0\n1|features 2.0|features 3.0", "missing_trailing_newline.txt")
    streams = {"features": dense("features", 1)}
    with pytest.raises(ctf.CTFError, match=r"missing_trailing_newline\.txt:1: sequence 1: input 'features' has 3"):
        ctf.read(path, streams, strict=True)  # the error is the repeated input, not the missing newline
    (seq,) = ctf.read(path, streams, strict=True, max_errors=2)
    assert seq["features"].ravel().tolist() == [1.0, 2.0, 3.0]  # the unterminated last line is read


def test_strict_reads_ids_only_at_the_start_of_a_line(tmp_path):
    """CNTK's indexer takes the digits at the very start of a line as its id; anything else before
    the first '|' is one error (the parser's "Unexpected character in place of a name prefix")."""
    path = write_text(tmp_path, "0 |a 1\n 7 |a 2\n1 2 |a 3\n", "ids.ctf")
    streams = {"x": dense("a", 1)}
    with pytest.raises(ctf.CTFError, match=r"ids\.ctf:2:2: expected '\|' \(a sample or a comment\), found '7'"):
        ctf.read(path, streams, strict=True)
    with pytest.raises(ctf.CTFError, match=r"ids\.ctf:3:3: expected '\|'.*found '2'.*max_errors=1"):
        ctf.read(path, streams, strict=True, max_errors=1)
    seqs = ctf.read(path, streams, strict=True, max_errors=2)
    assert [(s.id, s["x"].ravel().tolist()) for s in seqs] == [(0, [1, 2]), (1, [3])]  # ' 7' continues sequence 0
