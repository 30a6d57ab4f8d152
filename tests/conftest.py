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


@pytest.fixture(params=["numpy", "compiled"])
def kernels(request, monkeypatch):
    """Run a test with the NumPy kernels, then with the compiled (Numba) ones on every shape they accept.

    The compiled convolutions normally leave short reductions and much-widened weight-gradient rows to BLAS
    (``functional.conv``); here they take every convolution they can, so random small shapes test them.
    """
    from convnetpy.functional import compiled
    from convnetpy.functional import conv as conv_module

    if request.param == "compiled" and not compiled.installed:
        pytest.skip("Numba is not installed")
    monkeypatch.setattr(conv_module, "COMPILED_MIN_REDUCTION", 0)
    monkeypatch.setattr(conv_module, "COMPILED_MAX_WIDENING", float("inf"))
    before = compiled.available()
    compiled.use_compiled(request.param == "compiled")
    yield request.param
    compiled.use_compiled(before)
