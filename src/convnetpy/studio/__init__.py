"""The studio: a live training page in the browser (``convnetpy studio``), ConvNetJS's CIFAR-10 demo rebuilt.

Needs the extra: ``pip install 'convnetpy[studio]'`` (Starlette, uvicorn, websockets); the engine stays NumPy-only.

    from convnetpy.studio import create_app      # an ASGI app, e.g. for Starlette's TestClient
    from convnetpy.studio import serve           # what ``convnetpy studio`` runs

Modules: ``app`` (routes, safety), ``session`` (the trainer thread and its controls), ``monitor`` (events to
statistics and pictures, throttled), ``views`` (JSON for layers, filters, test cards), ``config`` (the page's
setup, checked), ``datasets``, ``uploads``, ``hub`` (messages to the open tabs), ``timing``, ``server``;
``static/`` holds the page.
"""

__all__ = ["create_app", "serve"]


def __getattr__(name: str):
    """``create_app`` and ``serve`` import the web stack on first use: the session, views and checks below them
    need NumPy only."""
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "serve":
        from .server import serve

        return serve
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
