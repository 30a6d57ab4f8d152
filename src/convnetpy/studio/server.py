"""``convnetpy studio``: bind, print the URL, serve with uvicorn until Ctrl-C, then stop training cleanly."""

from __future__ import annotations

import secrets
import socket
import sys

from .app import LOCAL_HOSTS, create_app

LOCAL_ADDRESSES = ("127.0.0.1", "localhost", "::1")


def url_for(host: str, port: int, token: str | None) -> str:
    """The address to open: IPv6 hosts in brackets, 0.0.0.0 and :: shown as this machine's name."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(host: str = "127.0.0.1", port: int = 8000, data_dir=None, out_dir="runs/studio",
          token: str | None = None) -> int:
    """Run the studio until interrupted. Any address but 127.0.0.1 (or localhost) requires a token, made up here
    unless given. Returns the exit code."""
    import uvicorn

    local = host in LOCAL_ADDRESSES
    if not local and not token:
        token = secrets.token_urlsafe(24)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    port = sock.getsockname()[1]
    app = create_app(data_dir, out_dir, token=None if local else token,
                     allowed_hosts=LOCAL_HOSTS if local else None)
    print(f"convnetpy studio: open {url_for(host, port, None if local else token)}", flush=True)
    if not local:
        print(f"convnetpy studio: listening on {host}, so every request needs the token in that URL", flush=True)
    print("convnetpy studio: Ctrl-C stops the server; a running training stops after its current step and keeps "
          f"its checkpoint in {out_dir}/", file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled, after the clean shutdown
        pass
    return 0
