"""Malformed CTF input: every error is a CTFError naming file, line and (where useful) column."""

from __future__ import annotations

import re

import numpy as np
import pytest

from amlvision import ctf

from .helpers import dense, sparse, write_text

STREAMS = {"x": dense("a", 3), "s": sparse("s", 5)}


def _error(tmp_path, text: str, streams=STREAMS, **options) -> str:
    path = write_text(tmp_path, text, "broken.ctf")
    with pytest.raises(ctf.CTFError) as info:
        ctf.read(path, streams, **options)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert message.startswith(f"{path}:"), message
    return message


def _line_col(message: str) -> tuple[int, int | None]:
    match = re.match(r".*?broken\.ctf:(\d+)(?::(\d+))?: ", message)
    assert match, message
    return int(match.group(1)), (int(match.group(2)) if match.group(2) else None)


def test_too_few_dense_values(tmp_path):
    message = _error(tmp_path, "|a 1 2 3\n|a 1 2\n")
    assert _line_col(message) == (2, 3) and "has 2 values, expected dim=3" in message


def test_too_many_dense_values_even_when_padding(tmp_path):
    message = _error(tmp_path, "|a 1 2 3\n|a 1 2 3\n|a 1 2 3 4\n", pad_short_dense=True)
    assert _line_col(message)[0] == 3 and "has 4 values" in message


def test_empty_dense_sample(tmp_path):
    assert "has 0 values" in _error(tmp_path, "|a\n")


def test_sparse_index_not_below_dim(tmp_path):
    message = _error(tmp_path, "|a 1 2 3 |s 0:1\n|a 1 2 3 |s 4:1 5:2\n")
    assert _line_col(message) == (2, 17) and "sparse index 5 >= dim 5" in message


@pytest.mark.parametrize("token", ["abc", "nan", "inf", ".5", "1e", "0x10", "1.2.3", "--1", "1,5", "1e+"])
def test_non_numeric_dense_token(tmp_path, token):
    message = _error(tmp_path, f"|a 1 2 3\n|a 1 {token} 3\n")
    assert _line_col(message) == (2, 6), message
    assert repr(token) in message and "is not a number" in message


@pytest.mark.parametrize("token", ["1", "a:1", "1:x", "1:", ":1", "-1:2", "1:2:3"])
def test_malformed_sparse_pair(tmp_path, token):
    message = _error(tmp_path, f"|a 1 2 3 |s {token}\n")
    assert _line_col(message) == (1, 13) and "index:value" in message


def test_line_without_pipe(tmp_path):
    message = _error(tmp_path, "|a 1 2 3\n1 2 3\n")
    assert _line_col(message) == (2, 1) and "expected '|'" in message


def test_bad_sequence_id(tmp_path):
    message = _error(tmp_path, "0 |a 1 2 3\nx1 |# comment only\n")
    assert _line_col(message) == (2, 1) and "sequence id" in message


def test_pipe_without_input_name(tmp_path):
    message = _error(tmp_path, "|a 1 2 3 | 4\n")
    assert _line_col(message) == (1, 10) and "input name" in message


def test_unknown_alias_is_an_error_when_asked(tmp_path):
    message = _error(tmp_path, "|a 1 2 3\n|a 1 2 3 |b 4\n", unknown_alias="error")
    assert _line_col(message) == (2, 10) and "unknown input name 'b'" in message


def test_duplicate_input_on_one_line(tmp_path):
    message = _error(tmp_path, "|a 1 2 3 |a 4 5 6\n")
    assert _line_col(message) == (1, 10) and "appears twice" in message


def test_stream_without_samples_in_a_sequence(tmp_path):
    message = _error(tmp_path, "0 |a 1 2 3 |s 1:1\n1 |a 1 2 3\n1 |a 4 5 6\n")
    assert _line_col(message) == (2, None) and "sequence 1 has no sample of input 's'" in message


def test_error_line_numbers_survive_chunking(tmp_path):
    text = "|a 1 2 3\n" * 500 + "|a 1 2 x\n" + "|a 1 2 3\n" * 10
    message = _error(tmp_path, text, {"x": dense("a", 3)}, chunk_bytes=100)
    assert _line_col(message) == (501, 8)


def test_crlf_does_not_shift_columns(tmp_path):
    message = _error(tmp_path, "|a 1 2 3\r\n|a 1 2\r\n")
    assert _line_col(message) == (2, 3)


def test_uint8_arrays_reject_values_outside_0_255(tmp_path):
    path = write_text(tmp_path, "|a 1 2 3\n|a 1 256 3\n", "broken.ctf")
    with pytest.raises(ctf.CTFError, match=r"broken\.ctf:2:3: .*integers in \[0, 255\]"):
        ctf.read_arrays(path, {"x": dense("a", 3)}, dtype=np.uint8)
    path.write_text("|a 1 2.5 3\n")
    with pytest.raises(ctf.CTFError, match=r"broken\.ctf:1:3: "):
        ctf.read_arrays(path, {"x": dense("a", 3)}, dtype=np.uint8)


def test_bad_option_values():
    with pytest.raises(ValueError, match="unknown_alias"):
        ctf.read("unused", STREAMS, unknown_alias="warn")
