"""The downloader against a local HTTP server: verified and cached, corrupt -> nothing left, unreachable -> clear."""

import hashlib

import pytest

from convnetpy.data import ChecksumError, DownloadError, download_file, md5sum

BODY = bytes(range(256)) * 1000
MD5 = hashlib.md5(BODY).hexdigest()


def test_good_file_is_verified_and_saved(tmp_path, http_server):
    http_server.files["/f.bin"] = BODY
    dest = tmp_path / "cache" / "f.bin"
    assert download_file([http_server.url + "f.bin"], dest, MD5, progress=False) == dest
    assert dest.read_bytes() == BODY and md5sum(dest) == MD5
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.bin"]  # no temporary file left


def test_progress_bar_does_not_break_the_download(tmp_path, http_server, capsys):
    http_server.files["/f.bin"] = BODY
    download_file([http_server.url + "f.bin"], tmp_path / "f.bin", MD5, progress=True)
    assert (tmp_path / "f.bin").read_bytes() == BODY


def test_mirrors_are_tried_in_order(tmp_path, http_server):
    http_server.files["/b/f.bin"] = BODY
    download_file([http_server.url + "a/f.bin", http_server.url + "b/f.bin"], tmp_path / "f.bin", MD5)
    assert http_server.hits == ["/a/f.bin", "/b/f.bin"]


def test_corrupted_file_leaves_nothing(tmp_path, http_server):
    http_server.files["/f.bin"] = BODY[:-1] + b"\x00"
    dest = tmp_path / "f.bin"
    with pytest.raises(ChecksumError, match="md5 checksum is wrong") as e:
        download_file([http_server.url + "f.bin"], dest, MD5)
    assert f"expected {MD5}" in str(e.value) and http_server.url + "f.bin" in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_corrupted_file_does_not_replace_a_good_one(tmp_path, http_server):
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old")
    http_server.files["/f.bin"] = b"bad"
    with pytest.raises(ChecksumError):
        download_file([http_server.url + "f.bin"], dest, MD5)
    assert dest.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_short_read_leaves_nothing(tmp_path, http_server):
    http_server.files["/f.bin"] = (BODY[:1000], len(BODY))  # the server announces more than it sends
    with pytest.raises(DownloadError, match="f.bin"):
        download_file([http_server.url + "f.bin"], tmp_path / "f.bin", None, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_and_missing(tmp_path, http_server, closed_port_url):
    urls = [closed_port_url + "f.bin", http_server.url + "missing.bin"]
    with pytest.raises(DownloadError) as e:
        download_file(urls, tmp_path / "f.bin", MD5, timeout=5)
    message = str(e.value)
    assert all(url in message for url in urls)
    assert "Connection refused" in message or "URLError" in message
    assert "404" in message
    assert [url for url, _ in e.value.failures] == urls
    assert list(tmp_path.iterdir()) == []


def test_no_urls(tmp_path):
    with pytest.raises(DownloadError, match="no URL"):
        download_file([], tmp_path / "f.bin")
