"""Messages across threads: every tab gets each message once, as JSON without NaN; slow tabs lose the oldest."""

from __future__ import annotations

import asyncio
import json
import threading

from convnetpy.studio.hub import QUEUE_SIZE, Hub


def test_publish_from_another_thread_reaches_every_tab():
    hub = Hub()

    async def tabs():
        loop = asyncio.get_running_loop()
        queues = [asyncio.Queue(QUEUE_SIZE), asyncio.Queue(QUEUE_SIZE)]
        for q in queues:
            hub.add(loop, q)
        assert hub.watching == 2
        thread = threading.Thread(target=hub.publish, args=({"type": "stats", "loss": float("nan"), "n": 3},))
        thread.start()
        got = [json.loads(await asyncio.wait_for(q.get(), 5)) for q in queues]
        thread.join()
        hub.remove(queues[0])
        assert hub.watching == 1
        return got

    assert asyncio.run(tabs()) == [{"type": "stats", "loss": None, "n": 3}] * 2


def test_a_slow_tab_keeps_the_newest_messages():
    hub = Hub()

    async def slow():
        q = asyncio.Queue(QUEUE_SIZE)
        hub.add(asyncio.get_running_loop(), q)
        for i in range(QUEUE_SIZE + 10):
            hub.publish({"type": "stats", "i": i})
        await asyncio.sleep(0.05)
        return [json.loads(q.get_nowait())["i"] for _ in range(q.qsize())]

    assert asyncio.run(slow()) == list(range(10, QUEUE_SIZE + 10))


def test_the_latest_pictures_are_remembered_for_new_tabs():
    hub = Hub()
    hub.publish({"type": "network", "example": 1})
    hub.publish({"type": "network", "example": 2})
    hub.publish({"type": "stats", "i": 0})
    assert json.loads(hub.latest["network"])["example"] == 2 and "stats" not in hub.latest
    hub.forget("network")
    assert "network" not in hub.latest
