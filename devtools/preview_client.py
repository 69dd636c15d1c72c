"""Websocket clients that queue a prompt and collect the binary preview frames it sends (aiohttp, one of
ComfyUI's own requirements, so the device check can use it too).

    result = asyncio.run(run_prompt_collecting_previews(server.url, prompt))
    result.frames["queuer"]  -> [PreviewFrame(event_type=4, metadata={...}, image=b"..."), ...]

The queuing client first announces `supports_preview_metadata` (as ComfyUI's frontend does) unless told not to;
a second, bystander client connects too and must receive nothing of this prompt.
"""
from __future__ import annotations

import asyncio
import json
import struct
import time
import uuid
from dataclasses import dataclass, field

import aiohttp

PREVIEW_IMAGE, PREVIEW_IMAGE_WITH_METADATA = 1, 4


@dataclass
class PreviewFrame:
    event_type: int
    image: bytes
    metadata: dict | None = None  # type 4
    image_kind: int | None = None  # type 1: 1 JPEG, 2 PNG
    received_s: float = 0.0  # seconds after POST /prompt was sent


@dataclass
class PromptRun:
    prompt_id: str = ""
    frames: dict = field(default_factory=lambda: {"queuer": [], "bystander": []})
    done_s: float = 0.0  # seconds from POST /prompt to the end of execution (execution_success)
    error: dict | None = None


def parse_frame(data: bytes, received_s: float = 0.0) -> PreviewFrame | None:
    (event_type,) = struct.unpack(">I", data[:4])
    if event_type == PREVIEW_IMAGE_WITH_METADATA:
        (length,) = struct.unpack(">I", data[4:8])
        return PreviewFrame(event_type, data[8 + length:], metadata=json.loads(data[8:8 + length]), received_s=received_s)
    if event_type == PREVIEW_IMAGE:
        return PreviewFrame(event_type, data[8:], image_kind=struct.unpack(">I", data[4:8])[0], received_s=received_s)
    return None


async def _connect(session, url, client_id, announce_metadata):
    ws = await session.ws_connect(f"{url.replace('http', 'ws', 1)}/ws?clientId={client_id}", max_msg_size=0)
    if announce_metadata:
        await ws.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
    return ws


async def _drain(ws, frames, t0, until):
    """Read `ws` until `until()` is true and nothing arrived for 0.2 s; binary frames to `frames`."""
    while True:
        try:
            message = await ws.receive(timeout=0.2)
        except asyncio.TimeoutError:
            if until():
                return
            continue
        if message.type == aiohttp.WSMsgType.BINARY:
            frame = parse_frame(message.data, time.perf_counter() - t0)
            if frame is not None:
                frames.append(frame)
        elif message.type == aiohttp.WSMsgType.TEXT:
            yield json.loads(message.data)
        elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return


async def run_prompt_collecting_previews(url: str, prompt: dict, *, announce_metadata: bool = True,
                                         timeout_s: float = 300.0) -> PromptRun:
    run, ended = PromptRun(), asyncio.Event()
    queuer_id, bystander_id = uuid.uuid4().hex, uuid.uuid4().hex
    async with aiohttp.ClientSession() as session:
        queuer = await _connect(session, url, queuer_id, announce_metadata)
        bystander = await _connect(session, url, bystander_id, True)
        await asyncio.sleep(0.05)  # the server reads the feature flags before the prompt arrives
        t0 = time.perf_counter()
        async with session.post(f"{url}/prompt", json={"prompt": prompt, "client_id": queuer_id}) as reply:
            body = await reply.json()
        if "prompt_id" not in body:
            raise RuntimeError(f"prompt rejected: {json.dumps(body)[:2000]}")
        run.prompt_id = body["prompt_id"]

        async def follow_queuer():
            async for message in _drain(queuer, run.frames["queuer"], t0, ended.is_set):
                data = message.get("data") or {}
                if data.get("prompt_id") != run.prompt_id:
                    continue
                if message["type"] in ("execution_success", "execution_error", "execution_interrupted"):
                    run.done_s = time.perf_counter() - t0
                    run.error = None if message["type"] == "execution_success" else data
                    ended.set()

        async def follow_bystander():
            async for _ in _drain(bystander, run.frames["bystander"], t0, ended.is_set):
                pass

        await asyncio.wait_for(asyncio.gather(follow_queuer(), follow_bystander()), timeout_s)
        await queuer.close()
        await bystander.close()
    return run
