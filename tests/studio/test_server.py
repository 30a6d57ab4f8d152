"""``convnetpy studio`` as a real process: it prints its URL, asks for a token off 127.0.0.1, and Ctrl-C stops the
training cleanly, keeping the checkpoint."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from convnetpy import cli
from studio_helpers import setup_payload, wait_until

pytest.importorskip("starlette", reason="the studio extra is not installed: pip install -e '.[studio]'")


def launch(*args: str) -> tuple[subprocess.Popen, str]:
    """Start the studio; return the process and the URL it printed."""
    process = subprocess.Popen([sys.executable, "-m", "convnetpy.cli", "studio", "--port", "0", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    match = re.search(r"open (http://\S+)", line)
    if match is None:
        process.kill()
        raise AssertionError(f"no URL in {line!r}; stderr: {process.stderr.read()}")
    return process, match.group(1)


def test_ctrl_c_stops_training_and_keeps_the_checkpoint(data_dir, tmp_path):
    process, url = launch("--data-dir", str(data_dir), "--out", str(tmp_path / "runs"))
    try:
        assert url.startswith("http://127.0.0.1:") and "token" not in url
        wait_until(lambda: request(url + "api/status")[0] == 200, what="the server")
        assert request(url + "api/start", setup_payload())[0] == 200
        wait_until(lambda: request(url + "api/status")[1]["examples_seen"] > 0, what="training")
        out, err = interrupt(process)
    finally:
        process.kill()
    assert process.returncode == 0, err
    kept = re.search(r"the last checkpoint is (\S+)", out)
    assert kept, out
    from convnetpy.checkpoint import load_checkpoint

    _, _, saved = load_checkpoint(kept.group(1))
    assert saved["state"]["global_step"] > 0 and saved["dataset"].endswith("bars")


def test_another_address_requires_the_printed_token(tmp_path):
    process, url = launch("--host", "127.0.0.2", "--out", str(tmp_path / "runs"))
    try:
        base, token = url.split("?token=")
        wait_until(lambda: request(f"{base}api/status?token={token}")[0] == 200, what="the server")
        assert request(base + "api/status")[0] == 403
        assert request(base + "api/status?token=wrong")[0] == 403
        assert request(f"{base}api/status?token={token}")[1]["state"] == "idle"
        out, _ = interrupt(process)
    finally:
        process.kill()
    assert "every request needs the token" in out


def interrupt(process: subprocess.Popen) -> tuple[str, str]:
    """Ctrl-C, then what the process printed after its URL line (stdout, stderr)."""
    process.send_signal(signal.SIGINT)
    out = process.stdout.read()  # the same buffered reader as launch's readline: nothing is lost
    process.wait(timeout=60)
    return out, process.stderr.read()


def request(url: str, payload: dict | None = None) -> tuple[int, dict]:
    """(status, JSON answer) of a GET, or of a POST of ``payload``; (0, {}) while nothing listens."""
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, {}
    except OSError:
        return 0, {}


def test_studio_flags(capsys):
    with pytest.raises(SystemExit):
        cli.main(["studio", "--help"])
    text = capsys.readouterr().out
    assert all(flag in text for flag in ("--host", "--port", "--data-dir", "--out"))


def test_a_busy_port_is_one_line_of_error(capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert cli.main(["studio", "--port", str(s.getsockname()[1])]) == cli.EXIT_ERROR
    assert re.match(r"convnetpy: error: cannot listen on 127.0.0.1:\d+", capsys.readouterr().err)



def test_without_the_extra_the_command_says_what_to_install(monkeypatch, capsys):
    for module in [m for m in sys.modules if m.split(".")[0] == "starlette"] + ["convnetpy.studio.app",
                                                                                "convnetpy.studio.server"]:
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, "starlette", None)  # import starlette (and starlette.anything) now fails
    assert cli.main(["studio"]) == cli.EXIT_USAGE
    assert "pip install 'convnetpy[studio]'" in capsys.readouterr().err
