"""Download public datasets with their published checksum, refusing anything that does not match.

The file streams into ``<name>.partial`` beside its destination and is renamed into place only
after its md5 matches the published one; a mismatch deletes the partial file. Offline, the error
says exactly how to fetch the file elsewhere and hand it to amlvision.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import requests
from tqdm import tqdm

from amlvision.data.archives import cache_root


@dataclass(frozen=True)
class PublicDataset:
    name: str
    url: str
    md5: str
    filename: str
    url_env: str  # environment variable that overrides the URL (a mirror, or a local test server)


DATASETS = {
    "cifar10": PublicDataset(
        name="cifar10",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
        filename="cifar-10-python.tar.gz",
        url_env="AMLVISION_CIFAR10_URL",
    )
}


class DownloadError(RuntimeError):
    """A download failed; the message says why and what to do."""


class ChecksumMismatch(DownloadError):
    """The downloaded bytes do not have the published md5."""


class Offline(DownloadError):
    """The server could not be reached."""


def default_dest() -> Path:
    return cache_root() / "downloads"


def md5_file(path: str | Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def offline_message(dataset: PublicDataset, url: str, target: Path, reason: str) -> str:
    return (
        f"cannot reach {url} ({reason}).\n"
        f"To continue without this machine downloading it:\n"
        f"  1. on a machine with internet access, download {dataset.url}\n"
        f"  2. check it: md5sum {dataset.filename}  ->  {dataset.md5}\n"
        f"  3. either copy it to {target} and run this command again (it verifies the md5 and uses the file),\n"
        f"     or pass its path as the data source, e.g.\n"
        f"       amlvision pack /path/to/{dataset.filename} --to packed --out data/cifar10-packed\n"
        f"       make train DATA=/path/to/{dataset.filename}\n"
        f"  (a mirror URL can be set with {dataset.url_env}=https://...)"
    )


def fetch(
    name: str,
    dest: str | Path | None = None,
    *,
    url: str | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Return the verified archive of dataset ``name`` in ``dest``, downloading it if needed."""
    if name not in DATASETS:
        raise DownloadError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    dataset = DATASETS[name]
    url = url or os.environ.get(dataset.url_env) or dataset.url
    folder = Path(dest) if dest is not None else default_dest()
    target = folder / dataset.filename
    if target.is_file():
        actual = md5_file(target)
        if actual == dataset.md5:
            return target
        if progress:
            print(f"{target}: md5 {actual} is not the published {dataset.md5}; downloading it again")
    try:
        return download_verified(url, target, dataset.md5, timeout=timeout, progress=progress)
    except Offline as exc:
        raise Offline(offline_message(dataset, url, target, str(exc))) from exc


def download_verified(url: str, target: str | Path, md5: str, *, timeout: float = 30.0, progress: bool = True) -> Path:
    """Stream ``url`` to ``target`` and keep it only if its md5 is ``md5`` (``Offline``: unreachable)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with requests.get(url, stream=True, timeout=timeout) as response:
            response.raise_for_status()
            total = int(response.headers.get("content-length") or 0) or None
            with (
                open(partial, "wb") as fh,
                tqdm(total=total, unit="B", unit_scale=True, desc=target.name, disable=not progress) as bar,
            ):
                for block in response.iter_content(chunk_size=1 << 20):
                    fh.write(block)
                    digest.update(block)
                    bar.update(len(block))
    except (requests.ConnectionError, requests.Timeout) as exc:
        partial.unlink(missing_ok=True)
        raise Offline(type(exc).__name__) from exc
    except requests.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"{url}: HTTP {exc.response.status_code}; nothing was saved") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    actual = digest.hexdigest()
    if actual != md5:
        partial.unlink(missing_ok=True)
        raise ChecksumMismatch(
            f"{url}: md5 mismatch: expected {md5} (published), got {actual}; "
            f"the download was deleted and nothing was saved to {target}"
        )
    partial.replace(target)
    return target
