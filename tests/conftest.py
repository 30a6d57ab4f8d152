"""Fixtures shared by every test folder."""

import socket

import pytest


@pytest.fixture
def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens (a port just bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
