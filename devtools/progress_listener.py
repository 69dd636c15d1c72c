"""The server's websocket messages (progress, executing, execution_interrupted, ...), collected in a thread.

    with ProgressListener(server) as events:
        prompt_id = server.queue(prompt)
        events.wait_for(lambda m: m["type"] == "progress" and m["data"]["prompt_id"] == prompt_id)

ComfyUI sends progress to the client id that queued the prompt, so the listener connects as
server.client_id. aiohttp is one of ComfyUI's own requirements.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time


class ProgressListener:
    def __init__(self, server, timeout: float = 30.0):
        self.url = f"ws://127.0.0.1:{server.port}/ws?clientId={server.client_id}"
        self.timeout = timeout
        self.messages: list[dict] = []  # each with "received" (time.monotonic()) added
        self._lock = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()
        self._error: BaseException | None = None

    async def _listen(self) -> None:
        import aiohttp

        self._stop = asyncio.Event()
        try:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(self.url, heartbeat=None) as ws:
                    self._connected.set()
                    stop = asyncio.ensure_future(self._stop.wait())
                    while not self._stop.is_set():
                        receive = asyncio.ensure_future(ws.receive())
                        done, _ = await asyncio.wait({receive, stop}, return_when=asyncio.FIRST_COMPLETED)
                        if receive not in done:
                            receive.cancel()
                            break
                        message = receive.result()
                        if message.type == aiohttp.WSMsgType.TEXT:
                            data = json.loads(message.data)
                            data["received"] = time.monotonic()
                            with self._lock:
                                self.messages.append(data)
                                self._lock.notify_all()
                        elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                            break
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self._error = exc
            self._connected.set()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._listen())
        self._loop.close()

    def __enter__(self) -> "ProgressListener":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._connected.wait(self.timeout) or self._error is not None:
            raise RuntimeError(f"could not connect to {self.url}: {self._error!r}")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(self.timeout)

    def wait_for(self, predicate, timeout: float | None = None) -> dict:
        """The first message (already received or arriving) for which predicate(message) is true."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = 0
        with self._lock:
            while True:
                for message in self.messages[seen:]:
                    if predicate(message):
                        return message
                seen = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching websocket message within {timeout or self.timeout:.0f}s; "
                                       f"last: {self.messages[-3:]}")
                self._lock.wait(left)

    def of_prompt(self, prompt_id: str, kind: str) -> list[dict]:
        with self._lock:
            return [m for m in self.messages if m.get("type") == kind and (m.get("data") or {}).get("prompt_id") == prompt_id]
