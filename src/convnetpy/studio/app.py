"""The studio's web app: the routes, declared as a list, and ``create_app``.

The page (``static/``) talks to ``/api/...`` with JSON (and raw file bodies for uploads) and listens on the
``/ws`` WebSocket for what the trainer thread publishes. Safety, as Jupyter does it: on 127.0.0.1 only requests
for a local host name are served (a web page elsewhere cannot rebind a name to this server); on any other
address every request needs the token (``?token=`` once, then a cookie, or an ``Authorization: token ...``
header). Commands are POSTs with a JSON or file content type, which a foreign page cannot send without a CORS
preflight this app never grants, and a POST or WebSocket carrying another site's Origin is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import ConvnetpyError
from . import datasets, uploads, views
from .config import SetupError
from .hub import QUEUE_SIZE, Hub
from .session import Session, StudioError

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "convnetpy_studio_token"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
SIMPLE_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")  # sent without preflight


# -- helpers --------------------------------------------------------------------------------------------
def _error(e: Exception) -> JSONResponse:
    """The JSON error every route answers with: {"error": message, "field": where the page shows it}."""
    if isinstance(e, SetupError):
        return JSONResponse({"error": str(e), "field": e.field}, 400)
    if isinstance(e, uploads.UploadError):
        return JSONResponse({"error": str(e), "field": "upload"}, e.status)
    if isinstance(e, StudioError):
        return JSONResponse({"error": str(e), "field": "controls"}, 409)
    if isinstance(e, (FutureTimeout, TimeoutError)):
        return JSONResponse({"error": "the trainer is busy; try again in a moment", "field": "controls"}, 503)
    return JSONResponse({"error": str(e).strip() or type(e).__name__, "field": "request"}, 400)


async def _json(request: Request) -> dict:
    try:
        payload = await request.json()
    except ValueError:
        raise SetupError("the request body is not JSON", "request") from None
    if not isinstance(payload, dict):
        raise SetupError("the request body must be a JSON object", "request")
    return payload


def _session(request) -> Session:
    return request.app.state.session


def api(handler):
    """Run ``handler(request)`` and turn the errors users can cause into JSON answers."""
    async def endpoint(request: Request):
        try:
            result = await handler(request)
        except (ConvnetpyError, ValueError, IndexError, FutureTimeout, TimeoutError) as e:
            return _error(e)
        return result if isinstance(result, Response) else JSONResponse(result)
    return endpoint


def _flip_default() -> dict[str, bool]:
    from ..cli import FLIP_DEFAULT

    return FLIP_DEFAULT


# -- routes ---------------------------------------------------------------------------------------------
async def index(request: Request):
    response = FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})
    token = request.app.state.token
    if token and secrets.compare_digest(request.query_params.get("token", ""), token):
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
    return response


@api
async def options(request: Request):
    from .. import models
    from ..optim import OPTIMIZERS

    session = _session(request)
    return {"datasets": list(datasets.NAMED),
            "folders": [datasets.FOLDER + f for f in datasets.image_folders(session.data_dir)],
            "models": {name: fn() for name, fn in models.MODELS.items()}, "optimizers": list(OPTIMIZERS),
            "suggested": {"fashion-mnist-sample": "lenet5", "mnist": "lenet5", "fashion-mnist": "lenet5",
                          "cifar10": "cifar10net", "mnist1d": "mnist1d_cnn", "mnist1d-shuffled": "mnist1d_mlp"},
            "limits": {"image_bytes": uploads.MAX_IMAGE_BYTES, "checkpoint_bytes": uploads.MAX_CHECKPOINT_BYTES}}


@api
async def status(request: Request):
    return _session(request).status()


@api
async def validate(request: Request):
    payload = await _json(request)
    return await run_in_threadpool(_session(request).validate, payload.get("specs"))


@api
async def start(request: Request):
    payload = await _json(request)
    return await run_in_threadpool(_session(request).start, payload, _flip_default())


@api
async def continue_run(request: Request):
    payload = await _json(request)
    epochs = payload.get("epochs")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise SetupError(f"epochs must be a positive whole number, got {epochs!r}", "settings")
    return await run_in_threadpool(_session(request).resume_run, epochs)


@api
async def pause(request: Request):
    return _session(request).pause()


@api
async def resume(request: Request):
    return _session(request).resume()


@api
async def stop(request: Request):
    return await run_in_threadpool(_session(request).stop)


@api
async def settings(request: Request):
    payload = await _json(request)
    return await run_in_threadpool(_session(request).change, payload)


def _run(session: Session):
    if session.run is None:
        raise StudioError("no run yet: start one or load a checkpoint")
    return session.run


@api
async def example(request: Request):
    """Choose the test example the network view shows; answers with that view."""
    session = _session(request)
    run = _run(session)
    index = (await _json(request)).get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(run.test_labels):
        raise SetupError(f"index must be a test example from 0 to {len(run.test_labels) - 1}, got {index!r}",
                         "request")

    def show():
        run.example = index
        session.monitor.publish_network(run)
        return {"example": index}

    return await run_in_threadpool(session.call, show)


@api
async def explain(request: Request):
    """The formula of one unit of the network view's example: {"layer", "position": [f, row, col] or [f, i]}."""
    session = _session(request)
    run = _run(session)
    payload = await _json(request)
    layer, position = payload.get("layer"), payload.get("position")
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(run.net.layers):
        raise SetupError(f"layer must be a layer index from 0 to {len(run.net.layers) - 1}, got {layer!r}", "request")
    if not isinstance(position, list) or not all(isinstance(p, int) and not isinstance(p, bool) for p in position):
        raise SetupError(f"position must be a list of whole numbers, got {position!r}", "request")
    example = run.test_images[min(run.example, len(run.test_images) - 1)]
    return await run_in_threadpool(session.call, lambda: views.explain_unit(run.net, run.pre, example, layer,
                                                                            position))


@api
async def predict(request: Request):
    """The top-3 classes of an uploaded image (or signal, for a 1D net), and the input as the net sees it."""
    session = _session(request)
    run = _run(session)
    body = await uploads.read_body(request, uploads.MAX_IMAGE_BYTES)
    shape = run.image_shape
    x = uploads.decode_signal(body, shape) if len(shape) == 2 else uploads.decode_image(body, shape)

    def classify():
        import numpy as np

        from ..train import predict_log_proba

        probs = np.exp(predict_log_proba(run.net, run.pre, x[None]))[0]
        return {"top3": views.top3(probs, run.classes), "input": views.encode_example(x)}

    return await run_in_threadpool(session.call, classify)


@api
async def download_checkpoint(request: Request):
    session = _session(request)
    path = await run_in_threadpool(session.checkpoint)
    run = session.run
    name = f"convnetpy-{run.dataset.replace(datasets.FOLDER, '').replace('/', '-')}-step{run.trainer.state.global_step}"
    return Response(path.read_bytes(), media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{name}.npz"'})


@api
async def upload_checkpoint(request: Request):
    session = _session(request)
    body = await uploads.read_body(request, uploads.MAX_CHECKPOINT_BYTES)
    session.out_dir.mkdir(parents=True, exist_ok=True)
    path = session.out_dir / f".upload-{secrets.token_hex(6)}.npz"
    try:
        path.write_bytes(body)
        return await run_in_threadpool(session.load, path)
    finally:
        path.unlink(missing_ok=True)


async def events(websocket: WebSocket):
    """The live feed: a "hello" with the session so far, then every message the trainer thread publishes."""
    session: Session = websocket.app.state.session
    hub: Hub = websocket.app.state.hub
    await websocket.accept()
    queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
    hub.add(asyncio.get_running_loop(), queue)
    pump = None
    try:
        for text in await run_in_threadpool(session.hello):
            await websocket.send_text(text)
        run = session.run
        if run is not None and "network" not in hub.latest and session.state not in ("running", "preparing"):
            session.submit(lambda: session.monitor.publish_views(run))  # inspecting: draw it once

        async def forward():
            while True:
                await websocket.send_text(await queue.get())

        pump = asyncio.create_task(forward())
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    except WebSocketDisconnect:
        pass
    finally:
        hub.remove(queue)
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump


ROUTES = [
    Route("/", index),
    Route("/api/options", options),
    Route("/api/status", status),
    Route("/api/validate", validate, methods=["POST"]),
    Route("/api/start", start, methods=["POST"]),
    Route("/api/continue", continue_run, methods=["POST"]),
    Route("/api/pause", pause, methods=["POST"]),
    Route("/api/resume", resume, methods=["POST"]),
    Route("/api/stop", stop, methods=["POST"]),
    Route("/api/settings", settings, methods=["POST"]),
    Route("/api/example", example, methods=["POST"]),
    Route("/api/explain", explain, methods=["POST"]),
    Route("/api/predict", predict, methods=["POST"]),
    Route("/api/checkpoint", download_checkpoint, methods=["GET"]),
    Route("/api/checkpoint", upload_checkpoint, methods=["POST"]),
    WebSocketRoute("/ws", events),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]


# -- safety ---------------------------------------------------------------------------------------------
class Guard:
    """ASGI middleware: the token (when one is set), local host names (when not), and nothing that changes the
    session or reads its feed from another site: no foreign Origin on a POST or WebSocket (browsers do not apply
    CORS to WebSockets), no POST of the content types a form can send without a preflight."""

    def __init__(self, app, token: str | None, allowed_hosts) -> None:
        self.app, self.token, self.allowed_hosts = app, token, allowed_hosts

    def _refusal(self, scope) -> tuple[int, str] | None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.token:
            given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
            auth = headers.get("authorization", "")
            cookies = dict(c.strip().split("=", 1) for c in headers.get("cookie", "").split(";") if "=" in c)
            candidates = (given, auth[6:] if auth.startswith("token ") else "", cookies.get(COOKIE, ""))
            if not any(c and secrets.compare_digest(c, self.token) for c in candidates):
                return 403, "this studio needs its token: open the URL printed when the server started"
        elif self.allowed_hosts is not None:
            host = headers.get("host", "").rsplit(":", 1)[0] if not headers.get("host", "").startswith("[") \
                else headers["host"].split("]")[0] + "]"
            if host not in self.allowed_hosts:
                return 403, f"host {host!r} is not served: open the studio at 127.0.0.1"
        origin = headers.get("origin")
        changes = scope["type"] == "websocket" or scope.get("method") not in ("GET", "HEAD")
        if changes and origin and urlsplit(origin).netloc != headers.get("host"):
            return 403, f"requests from {origin} are not served: open the studio's own page"
        if scope["type"] == "http" and scope.get("method") == "POST":
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind in SIMPLE_TYPES or not kind:
                return 415, "send JSON (application/json) or a file (application/octet-stream, image/...)"
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            refusal = self._refusal(scope)
            if refusal is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                code, message = refusal
                await PlainTextResponse(message, code)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(data_dir=None, out_dir="runs/studio", *, token: str | None = None, allowed_hosts=LOCAL_HOSTS,
               download: bool = True, **session_options) -> Guard:
    """The studio app. ``token``: required on every request when set (give one whenever the server listens on
    more than 127.0.0.1). ``allowed_hosts``: Host names served without a token (None: any).
    ``session_options``: stats_interval, viz_interval, viz_budget (see ``Monitor``)."""
    hub = Hub()
    session = Session(hub, Path(data_dir) if data_dir else None, Path(out_dir), download=download, **session_options)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        kept = await run_in_threadpool(session.close)
        if kept is not None:
            print(f"convnetpy studio: stopped; the last checkpoint is {kept}", flush=True)

    app = Starlette(routes=ROUTES, lifespan=lifespan)
    app.state.session, app.state.hub, app.state.token = session, hub, token
    guarded = Guard(app, token, allowed_hosts)
    guarded.state = app.state  # tests reach the session through the app they were given
    return guarded
