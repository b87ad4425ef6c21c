"""``amlvision download``: md5 enforcement and the offline message, over real loopback HTTP."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from amlvision import cli
from amlvision.data.download import (
    DATASETS,
    ChecksumMismatch,
    DownloadError,
    Offline,
    download_verified,
    fetch,
)


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving ``tmp_path / "www"``."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # keep test output quiet
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_wrong_md5_is_refused_and_deleted(server, tmp_path: Path) -> None:
    url, root = server
    (root / "cifar-10-python.tar.gz").write_bytes(b"not the real archive" * 1000)
    dest = tmp_path / "dest"
    with pytest.raises(ChecksumMismatch) as info:
        fetch("cifar10", dest, url=f"{url}/cifar-10-python.tar.gz", progress=False)
    actual = hashlib.md5(b"not the real archive" * 1000).hexdigest()
    assert f"expected {DATASETS['cifar10'].md5}" in str(info.value) and f"got {actual}" in str(info.value)
    assert list(dest.iterdir()) == []  # neither the file nor a .partial is left


def test_matching_md5_is_kept(server, tmp_path: Path) -> None:
    url, root = server
    payload = bytes(range(256)) * 5000
    (root / "blob.bin").write_bytes(payload)
    target = download_verified(
        f"{url}/blob.bin", tmp_path / "d" / "blob.bin", hashlib.md5(payload).hexdigest(), progress=False
    )
    assert target.read_bytes() == payload and sorted(p.name for p in target.parent.iterdir()) == ["blob.bin"]


def test_http_error_saves_nothing(server, tmp_path: Path) -> None:
    url, _ = server
    with pytest.raises(DownloadError, match="HTTP 404; nothing was saved"):
        fetch("cifar10", tmp_path / "d", url=f"{url}/missing.tar.gz", progress=False)
    assert list((tmp_path / "d").iterdir()) == []


def test_offline_says_exactly_what_to_do(tmp_path: Path, capsys) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/cifar-10-python.tar.gz"
    with pytest.raises(Offline) as info:
        fetch("cifar10", tmp_path / "d", url=url, timeout=5, progress=False)
    message = str(info.value)
    assert f"cannot reach {url}" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert DATASETS["cifar10"].md5 in message and str(tmp_path / "d" / "cifar-10-python.tar.gz") in message
    assert "amlvision pack /path/to/cifar-10-python.tar.gz" in message
    assert cli.main(["download", "cifar10", "--dest", str(tmp_path / "d"), "--url", url, "--quiet"]) == 1
    assert "To continue without this machine downloading it" in capsys.readouterr().err


def test_existing_file_with_wrong_md5_is_not_trusted(server, tmp_path: Path) -> None:
    url, root = server
    (root / "c.tgz").write_bytes(b"still wrong")
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "cifar-10-python.tar.gz").write_bytes(b"stale")
    with pytest.raises(ChecksumMismatch):
        fetch("cifar10", dest, url=f"{url}/c.tgz", progress=False)
    assert (dest / "cifar-10-python.tar.gz").read_bytes() == b"stale"  # an unverified download never replaces anything
