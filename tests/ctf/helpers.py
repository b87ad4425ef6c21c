"""Small helpers shared by the CTF tests."""

from __future__ import annotations

from pathlib import Path

from amlvision import ctf


def write_text(tmp_path: Path, text: str | bytes, name: str = "data.ctf") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def dense(alias: str, dim: int) -> ctf.StreamDef:
    return ctf.StreamDef(alias, dim)


def sparse(alias: str, dim: int) -> ctf.StreamDef:
    return ctf.StreamDef(alias, dim, is_sparse=True)
