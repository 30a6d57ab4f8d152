"""The studio's HTTP and WebSocket API through Starlette's TestClient: controls, live settings, errors, safety."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from convnetpy.checkpoint import load_checkpoint
from studio_helpers import BAR_SPECS, FASHION_SPECS, session_of, setup_payload, wait_until

pytest.importorskip("starlette", reason="the studio extra is not installed: pip install -e '.[studio]'")

WS = "ws://127.0.0.1/ws"


def png(shape=(14, 14), value=200) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full(shape, value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def state(client) -> str:
    return client.get("/api/status").json()["state"]


def steps(client) -> int:
    return session_of(client).run.trainer.state.global_step


def started(client, **settings):
    response = client.post("/api/start", json=setup_payload(**settings))
    assert response.status_code == 200, response.json()
    wait_until(lambda: steps(client) > 0, what="a first step")
    return response.json()


# -- the page and its options ----------------------------------------------------------------------------
def test_page_and_vendored_chart_library_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'data-testid="spec-editor"' in page.text
    for path in ("/static/studio.js", "/static/studio.css", "/static/vendor/uPlot.iife.min.js",
                 "/static/vendor/uPlot-LICENSE"):
        assert client.get(path).status_code == 200, path
    assert "cdn" not in page.text.lower()  # offline: nothing loaded from elsewhere


def test_options_list_datasets_models_and_folders_inside_the_data_dir(client):
    options = client.get("/api/options").json()
    assert {"mnist", "fashion-mnist", "cifar10", "mnist1d", "fashion-mnist-sample"} <= set(options["datasets"])
    assert {"folder:bars", "folder:digits"} <= set(options["folders"])
    assert options["models"]["lenet5"][0] == {"type": "input", "shape": [1, 28, 28]}


# -- controls -------------------------------------------------------------------------------------------
def test_start_pause_resume_stop(client):
    first = started(client)
    assert first["state"] == "running"
    paused = client.post("/api/pause", json={}).json()
    assert paused["state"] == "paused" and paused["seq"] > first["seq"]  # the page keeps the newest status
    wait_until(lambda: session_of(client)._paused, what="the pause")
    paused_at = steps(client)
    import time

    time.sleep(0.3)
    assert steps(client) <= paused_at + 1  # at most the step that was running when pause was pressed
    assert client.post("/api/resume", json={}).json()["state"] == "running"
    wait_until(lambda: steps(client) > paused_at + 2, what="training to go on after resume")
    assert client.post("/api/stop", json={}).status_code == 200
    wait_until(lambda: state(client) == "stopped", what="the stop")
    run_dir = session_of(client).run.run_dir
    _, _, saved = load_checkpoint(run_dir / "checkpoint.npz")  # the checkpoint writer saved at the stop
    assert saved["state"]["global_step"] == steps(client)


def test_controls_that_do_not_fit_the_state_are_refused_with_409(client):
    assert client.post("/api/pause", json={}).status_code == 409
    started(client)
    again = client.post("/api/start", json=setup_payload())
    assert again.status_code == 409 and "running" in again.json()["error"]
    client.post("/api/stop", json={})


def test_run_to_the_end_finishes_and_continue_goes_on(client):
    client.post("/api/start", json=setup_payload(epochs=1))
    wait_until(lambda: state(client) == "finished", what="one epoch")
    refused = client.post("/api/continue", json={"epochs": 1})
    assert refused.status_code == 400 and "epochs above 1" in refused.json()["error"]
    assert client.post("/api/continue", json={"epochs": 2}).json()["state"] == "running"
    wait_until(lambda: state(client) == "finished", what="the second epoch")
    assert session_of(client).run.trainer.state.epoch == 2


def test_live_settings_change_between_steps_and_are_marked(client):
    started(client, optimizer="sgd", momentum=0.9)
    answer = client.post("/api/settings", json={"lr": 0.05, "momentum": 0.5, "weight_decay": 0.001})
    assert answer.status_code == 200 and answer.json()["when"] == "next step"
    trainer = session_of(client).run.trainer
    wait_until(lambda: trainer.config.lr == 0.05, what="the new learning rate")
    wait_until(lambda: trainer.optimizer.lr == pytest.approx(0.05), what="the optimizer's learning rate")
    assert (trainer.optimizer.momentum, trainer.optimizer.weight_decay) == (0.5, 0.001)
    assert (trainer.config.momentum, trainer.config.weight_decay) == (0.5, 0.001)
    labels = [m["label"] for m in session_of(client).monitor.marks]
    assert "learning rate 0.01 \u2192 0.05" in labels and "momentum 0.9 \u2192 0.5" in labels
    client.post("/api/stop", json={})


def test_batch_size_change_is_applied_and_training_goes_on(client):
    started(client, batch_size=8)
    trainer = session_of(client).run.trainer
    client.post("/api/settings", json={"batch_size": 16})
    wait_until(lambda: trainer.config.batch_size == 16, what="the new batch size")
    step = steps(client)
    wait_until(lambda: steps(client) > step + 2, what="steps at the new size")
    assert state(client) == "running"
    assert any("batch size 8 \u2192 16" == m["label"] for m in session_of(client).monitor.marks)
    client.post("/api/stop", json={})


@pytest.mark.parametrize("payload, message", [
    ({"lr": -1}, "lr must be between"),
    ({"lr": "fast"}, "lr must be a number"),
    ({"batch_size": 2.5}, "batch_size must be a whole number"),
    ({"dropout": 0.5}, "cannot change dropout"),
])
def test_bad_live_settings_are_refused(client, payload, message):
    started(client)
    answer = client.post("/api/settings", json=payload)
    assert answer.status_code == 400 and message in answer.json()["error"]
    assert answer.json()["field"] == "settings"
    client.post("/api/stop", json={})


# -- bad specs and datasets -------------------------------------------------------------------------------
@pytest.mark.parametrize("specs, message", [
    ('[{"type": "input", "shape": [1, 12, 12]}, {"type": "conv", "filter": 4, "size": 3}]',
     "layer 1 (conv): unknown key 'filter' (did you mean 'filters'?)"),
    ('[{"type": "input", "shape": [1, 12, 12]},\n {"type": "conv" "filters": 4}]',
     "the specs are not valid JSON: Expecting ',' delimiter at line 2, column 18"),
    ('[{"type": "input", "shape": [1, 12, 12]}, {"type": "conv", "filters": 4, "size": 13}, '
     '{"type": "softmax", "classes": 3}]', "layer 1 (conv) on input [1, 12, 12]"),
    ('__import__("os").system("echo pwned")', "the specs are not valid JSON"),
    ('{"type": "input"}', "a net is a non-empty list of layer specs"),
])
def test_bad_specs_are_refused_naming_the_layer(client, specs, message):
    for route, payload in (("/api/validate", {"specs": specs}),
                           ("/api/start", {**setup_payload(), "specs": specs})):
        answer = client.post(route, json=payload)
        assert answer.status_code == 400
        assert answer.json()["field"] == "spec" and message in answer.json()["error"], answer.json()
    assert state(client) == "idle"


def test_a_net_too_big_is_refused_before_its_weights_exist(client):
    specs = [{"type": "input", "shape": [3, 512, 512]}, {"type": "fc", "neurons": 100_000},
             {"type": "softmax", "classes": 3}]
    answer = client.post("/api/validate", json={"specs": json.dumps(specs)})
    assert answer.status_code == 400
    assert "the net has 78,643,600,003 parameters; the studio trains at most" in answer.json()["error"]


def test_a_net_that_does_not_fit_the_dataset_is_refused(client):
    answer = client.post("/api/start", json=setup_payload(specs=FASHION_SPECS))  # 28x28, 10 classes on 3 classes
    assert answer.status_code == 400 and answer.json()["field"] == "spec"
    assert "the net has 10 classes, the dataset 3" in answer.json()["error"]


@pytest.mark.parametrize("dataset, message", [
    ("folder:../../etc", "outside the data directory"),
    ("folder:/etc", "not a path relative to the data directory"),
    ("folder:nothing-here", "no folder 'nothing-here'"),
    ("imagenet", "unknown dataset 'imagenet'"),
])
def test_dataset_paths_cannot_leave_the_data_dir(client, dataset, message):
    answer = client.post("/api/start", json=setup_payload(dataset=dataset))
    assert answer.status_code == 400 and answer.json()["field"] == "dataset"
    assert message in answer.json()["error"]


def test_a_symlink_out_of_the_data_dir_is_refused(make_client, tmp_path, data_dir):
    link = data_dir / "escape"
    link.symlink_to(tmp_path, target_is_directory=True)
    try:
        answer = make_client().post("/api/start", json=setup_payload(dataset="folder:escape"))
        assert "outside the data directory" in answer.json()["error"]
    finally:
        link.unlink()


# -- uploads -------------------------------------------------------------------------------------------
def test_upload_an_image_gets_its_top3(client):
    started(client)
    answer = client.post("/api/predict", content=png(), headers={"Content-Type": "image/png"})
    assert answer.status_code == 200
    top3 = answer.json()["top3"]
    assert len(top3) == 3 and {t["name"] for t in top3} == {"horizontal", "vertical", "diagonal"}
    assert sum(t["p"] for t in top3) == pytest.approx(1, abs=1e-5)
    assert answer.json()["input"]["shape"] == [1, 12, 12]
    client.post("/api/stop", json={})


@pytest.mark.parametrize("body, type_, status, message", [
    (b"GIF89a not really", "image/gif", 400, "not an image this studio reads"),
    (b"%PDF-1.4 ...", "application/octet-stream", 400, "not an image"),
    (b"", "image/png", 400, "the upload is empty"),
    (b"x" * (5 * 2**20 + 1), "image/png", 413, "at most 5,242,880"),
])
def test_bad_uploads_get_a_message_not_a_crash(client, body, type_, status, message):
    started(client)
    answer = client.post("/api/predict", content=body, headers={"Content-Type": type_})
    assert answer.status_code == status and message in answer.json()["error"]
    assert state(client) == "running"  # training goes on
    client.post("/api/stop", json={})


def test_a_huge_image_is_refused_before_decoding(client):
    started(client)
    buffer = io.BytesIO()
    Image.new("L", (5000, 5000)).save(buffer, format="PNG")  # small file, 25 million pixels
    answer = client.post("/api/predict", content=buffer.getvalue(), headers={"Content-Type": "image/png"})
    assert answer.status_code == 400 and "5000x5000 pixels" in answer.json()["error"]
    client.post("/api/stop", json={})


def test_predict_before_any_run_says_so(client):
    answer = client.post("/api/predict", content=png(), headers={"Content-Type": "image/png"})
    assert answer.status_code == 409 and "no run yet" in answer.json()["error"]


# -- the network view ------------------------------------------------------------------------------------
def test_explain_a_unit_and_choose_an_example(client):
    started(client)
    client.post("/api/pause", json={})
    answer = client.post("/api/explain", json={"layer": 1, "position": [1, 3, 4]})  # the ReLU after the conv
    assert answer.status_code == 200 and answer.json()["formula"].startswith("relu(sum(patch*weights) + bias)")
    assert np.array(answer.json()["patch"]).shape == (1, 3, 3)
    bad = client.post("/api/explain", json={"layer": 2, "position": [0, 0, 0]})  # max pooling
    assert bad.status_code == 400 and "click a unit of a conv layer" in bad.json()["error"]
    outside = client.post("/api/explain", json={"layer": 0, "position": [0, 99, 0]})
    assert outside.status_code == 400 and "outside" in outside.json()["error"]
    assert client.post("/api/example", json={"index": 7}).json() == {"example": 7}
    assert session_of(client).run.example == 7
    assert client.post("/api/example", json={"index": 10_000}).status_code == 400
    client.post("/api/stop", json={})


# -- the live feed ---------------------------------------------------------------------------------------
def test_websocket_streams_stats_network_and_tests(client):
    with client.websocket_connect(WS) as ws:
        assert ws.receive_json()["type"] == "hello"
        started(client)
        seen: dict[str, dict] = {}
        for _ in range(1000):  # a bounded wait: training keeps the messages coming
            message = ws.receive_json()
            seen[message["type"]] = message
            if {"stats", "network", "tests"} <= set(seen):
                break
        assert seen["stats"]["examples_seen"] > 0 and "images_per_second" in seen["stats"]
        layers = seen["network"]["layers"]
        assert [len(layer["activations"]["shape"]) for layer in layers][:3] == [3, 3, 3]  # conv, relu, pool maps
        assert layers[0]["filters"]["shape"] == [4, 1, 3, 3] and "filter_grads" in layers[0]
        cards = seen["tests"]["cards"]
        assert len(cards) == 12 and all(len(card["top3"]) == 3 for card in cards)
        assert np.array(seen["tests"]["confusion"]).shape == (3, 3)
        client.post("/api/stop", json={})


def test_a_second_tab_gets_the_run_so_far(client):
    started(client)
    wait_until(lambda: session_of(client).monitor.points, what="chart points")
    with client.websocket_connect(WS) as ws:
        hello = ws.receive_json()
        assert hello["status"]["state"] == "running" and hello["series"]
        assert hello["setup"]["classes"] == ["diagonal", "horizontal", "vertical"]
    client.post("/api/stop", json={})


def test_no_pictures_are_computed_while_nobody_watches(client):
    started(client)
    wait_until(lambda: steps(client) > 20, what="20 steps")
    assert "network" not in session_of(client).hub.latest
    client.post("/api/stop", json={})


# -- checkpoints -------------------------------------------------------------------------------------------
def test_download_then_load_a_checkpoint_to_inspect_and_continue(client, make_client):
    started(client)
    client.post("/api/stop", json={})
    wait_until(lambda: state(client) == "stopped", what="the stop")
    download = client.get("/api/checkpoint")
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    step = steps(client)

    other = make_client()
    loaded = other.post("/api/checkpoint", content=download.content,
                        headers={"Content-Type": "application/octet-stream"})
    assert loaded.status_code == 200 and loaded.json()["state"] == "loaded"
    assert other.post("/api/predict", content=png(), headers={"Content-Type": "image/png"}).status_code == 200
    assert other.post("/api/continue", json={}).json()["state"] == "running"
    wait_until(lambda: steps(other) > step, what="training on from the checkpoint")
    other.post("/api/stop", json={})


def test_loading_a_file_that_is_not_a_checkpoint_says_so(client):
    answer = client.post("/api/checkpoint", content=b"PK\x03\x04 not a zip",
                         headers={"Content-Type": "application/octet-stream"})
    assert answer.status_code == 400 and "not a checkpoint the studio can load" in answer.json()["error"]
    assert state(client) == "idle"


# -- safety -----------------------------------------------------------------------------------------------
def test_token_is_required_on_every_request_when_set(make_client):
    client = make_client(token="s3cret", allowed_hosts=None)
    assert client.get("/").status_code == 403
    assert client.get("/api/status").status_code == 403
    assert client.post("/api/start", json=setup_payload()).status_code == 403
    assert client.get("/api/status", headers={"Authorization": "token wrong"}).status_code == 403
    assert client.get("/api/status", headers={"Authorization": "token s3cret"}).status_code == 200
    page = client.get("/?token=s3cret")  # the printed URL: sets a cookie for the page's own requests
    assert page.status_code == 200 and "convnetpy_studio_token" in page.headers["set-cookie"]
    assert client.get("/api/status").status_code == 200  # the cookie now goes along
    client.cookies.clear()
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect), client.websocket_connect(WS) as ws:
        ws.receive_json()
    with client.websocket_connect(WS + "?token=s3cret") as ws:
        assert ws.receive_json()["type"] == "hello"


def test_without_a_token_only_local_host_names_are_served(make_client):
    client = make_client()
    assert client.get("/api/status").status_code == 200
    rebound = client.get("/api/status", headers={"Host": "evil.example:8000"})
    assert rebound.status_code == 403 and "127.0.0.1" in rebound.text


def test_other_sites_can_neither_command_nor_watch(client):
    evil = {"Origin": "http://evil.example"}
    answer = client.post("/api/start", json=setup_payload(), headers=evil)
    assert answer.status_code == 403 and state(client) == "idle"
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect), client.websocket_connect(WS, headers=evil) as ws:
        ws.receive_json()
    same = {"Origin": "http://127.0.0.1"}
    assert client.post("/api/validate", json={"specs": "[]"}, headers=same).status_code == 400  # served
    assert client.get("/api/status", headers=evil).status_code == 200  # reading is harmless: CORS hides it


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_cross_site_simple_posts_are_refused(client, content_type):
    answer = client.post("/api/start", content=json.dumps(setup_payload()), headers={"Content-Type": content_type})
    assert answer.status_code == 415
    assert state(client) == "idle"


def test_close_stops_training_and_keeps_the_checkpoint(make_client):
    client = make_client()
    started(client, specs=BAR_SPECS)
    run_dir = session_of(client).run.run_dir
    client.__exit__(None, None, None)  # the server's shutdown (Ctrl-C)
    assert session_of(client).state == "stopped"
    assert (run_dir / "checkpoint.npz").is_file()
