"""Download a file from a list of mirrors with urllib: md5 verified, written atomically, progress on stderr."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..serialization import atomic_write
from .errors import ChecksumError, DownloadError

_CHUNK = 1 << 16


class _Mismatch(Exception):
    pass


def cache_dir() -> Path:
    """The user cache folder for datasets: ``$XDG_CACHE_HOME/convnetpy``, by default ``~/.cache/convnetpy``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "convnetpy"


def download_file(urls: Sequence[str], dest, md5: str | None = None, *, timeout: float = 30.0,
                  progress: bool | None = None) -> Path:
    """Fetch the first of ``urls`` that answers to ``dest``, check its md5, and return ``dest``.

    The bytes go to a temporary file beside ``dest`` that is renamed over it only once complete and verified,
    so an interrupted or corrupted download leaves no file. A URL that fails (network or HTTP error, short
    read, wrong md5) is followed by the next one. Raises ChecksumError when a URL delivered bytes with the
    wrong md5 and none delivered good ones, DownloadError otherwise; both list every URL with its failure.
    ``progress``: show a tqdm bar on stderr (None: only when stderr is a terminal).
    """
    import http.client  # here, not at the top: with ssl and email, up to 7 MB that a process which
    import urllib.error  # downloads nothing (a training helper, say) should not pay

    dest = Path(dest)
    if not urls:
        raise DownloadError(f"no URL to download {dest.name} from")
    failures: list[tuple[str, str]] = []
    mismatch = False
    for url in urls:
        try:
            atomic_write(dest, lambda f, url=url: _fetch(url, f, md5, timeout, progress, dest.name))
            return dest
        except _Mismatch as e:
            mismatch = True
            failures.append((url, str(e)))
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
            failures.append((url, f"{type(e).__name__}: {e}"))
    tried = "\n".join(f"  {url}: {reason}" for url, reason in failures)
    if mismatch:
        raise ChecksumError(f"downloaded {dest.name} but its md5 checksum is wrong (corrupted, or not the "
                            f"published file), so nothing was saved at {dest}; URLs tried:\n{tried}")
    raise DownloadError(f"could not download {dest.name}; URLs tried:\n{tried}", failures)


def md5sum(path, chunk: int = 1 << 20) -> str:
    """Hex md5 of a file (md5 because that is what dataset authors publish)."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _fetch(url: str, f, md5: str | None, timeout: float, progress: bool | None, name: str) -> None:
    import urllib.request

    from .. import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"convnetpy/{__version__}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        total = response.length  # None when the server sends no Content-Length
        bar = _progress_bar(total, name, progress)
        h, n = hashlib.md5(usedforsecurity=False), 0
        try:
            while chunk := response.read(_CHUNK):
                f.write(chunk)
                h.update(chunk)
                n += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
    if total is not None and n < total:
        raise OSError(f"connection closed after {n} of {total} bytes")
    if md5 is not None and h.hexdigest() != md5.lower():
        raise _Mismatch(f"md5 {h.hexdigest()} of {n} bytes, expected {md5.lower()}")


def _progress_bar(total: int | None, name: str, enabled: bool | None):
    if enabled is False or (enabled is None and not sys.stderr.isatty()):
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a nicety; the download works without it
        return None
    return tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=False)
