"""Send an IMAGE batch to the client that queued the prompt as one binary websocket preview (ComfyUI glue).

Frames (ComfyUI `server.py` PromptServer.send_bytes / encode_bytes and `protocol.py` BinaryEventTypes, in
0.3.52, 0.3.75 and 0.33.0 alike): 4-byte big-endian event type, then the payload.
- Type 4, PREVIEW_IMAGE_WITH_METADATA: 4-byte big-endian length of a UTF-8 JSON object {node_id, prompt_id,
  display_node_id, parent_node_id, real_node_id, image_type (a MIME type)}, the JSON, then the image. The
  frontend shows it on the node named by display_node_id. ComfyUI's own previews use it only for clients whose
  first websocket message was `feature_flags` with `supports_preview_metadata` (comfy_execution/progress.py,
  comfy_api/feature_flags.py); older frontends log an unknown message for it.
- Type 1, PREVIEW_IMAGE: 4-byte image kind (1 JPEG, 2 PNG), then the image; the frontend shows it on the node
  it was told is executing. Clients without the flag get this, always as JPEG (type 1 has no WebP kind).
PromptServer.send (what send_sync queues for) re-encodes any type-4 payload itself from a PIL image, so type 4
goes to send_bytes directly on the server's loop; type 1 goes through the queue, after the `executing` message
that names this node.
"""
from __future__ import annotations

import asyncio
import json
import logging
import struct

import torch

from .image_encoding import MIME_TYPES, encode_batch

PREVIEW_IMAGE = 1  # protocol.py BinaryEventTypes; read from ComfyUI when it has them (_event_types)
PREVIEW_IMAGE_WITH_METADATA = 4
JPEG_KIND = 1
log = logging.getLogger("InstaFlow")
_ENCODERS_LOGGED: set = set()


def metadata_frame(image: bytes, metadata: dict) -> bytes:
    """Type-4 payload (after the event type): metadata length, metadata JSON, image."""
    encoded = json.dumps(metadata).encode("utf-8")
    return struct.pack(">I", len(encoded)) + encoded + image


def legacy_frame(jpeg: bytes) -> bytes:
    """Type-1 payload (after the event type): image kind JPEG, image."""
    return struct.pack(">I", JPEG_KIND) + jpeg


def _event_types():
    try:
        from protocol import BinaryEventTypes
    except ImportError:  # before protocol.py the types lived in server.py
        from server import BinaryEventTypes
    return getattr(BinaryEventTypes, "PREVIEW_IMAGE", PREVIEW_IMAGE), getattr(BinaryEventTypes, "PREVIEW_IMAGE_WITH_METADATA", None)


def _supports_metadata(server, sid) -> bool:
    try:
        from comfy_api import feature_flags
    except ImportError:
        return False
    return bool(feature_flags.supports_feature(server.sockets_metadata, sid, "supports_preview_metadata"))


def _node_metadata(dynprompt, image_type: str) -> dict:
    from comfy_execution.utils import get_executing_context

    context = get_executing_context()
    if context is None:
        raise RuntimeError("InstaFlowLivePreview runs outside a ComfyUI prompt: no node or prompt id to address the preview to")
    node_id = context.node_id
    known = dynprompt is not None
    return {"node_id": node_id, "prompt_id": context.prompt_id,
            "display_node_id": dynprompt.get_display_node_id(node_id) if known else node_id,
            "parent_node_id": dynprompt.get_parent_node_id(node_id) if known else None,
            "real_node_id": dynprompt.get_real_node_id(node_id) if known else node_id,
            "image_type": image_type}


def _receivers(server) -> list:
    """The client that queued the prompt; with no client id (an API script), every connected client, as
    ComfyUI's own `executed` messages go to everyone then."""
    sid = getattr(server, "client_id", None)
    if sid is not None:
        return [sid] if sid in server.sockets else []
    return list(server.sockets)


def send_live_preview(images: torch.Tensor, image_format: str, quality: int, dynprompt=None) -> dict:
    """Encode the batch once per frame kind needed and send it; returns what was done (for logs and tests)."""
    try:
        from server import PromptServer

        server = PromptServer.instance
    except (ImportError, AttributeError):
        server = None
    if server is None:  # ComfyUI run without its server (e.g. an in-process executor): nobody to show it to
        return {"sent": [], "why_not": "no ComfyUI server in this process"}
    legacy_type, metadata_type = _event_types()
    receivers = _receivers(server)
    if not receivers:
        return {"sent": [], "why_not": "the client that queued the prompt is not connected"}
    with_metadata = [sid for sid in receivers if metadata_type is not None and _supports_metadata(server, sid)]
    legacy = [sid for sid in receivers if sid not in with_metadata]
    done = {"sent": [], "encoder": None}
    if with_metadata:
        image, done["encoder"] = encode_batch(images, image_format, quality)
        payload = metadata_frame(image, _node_metadata(dynprompt, MIME_TYPES[image_format]))
        for sid in with_metadata:
            asyncio.run_coroutine_threadsafe(server.send_bytes(metadata_type, payload, sid), server.loop)
            done["sent"].append((sid, metadata_type))
    if legacy:
        jpeg, encoder = encode_batch(images, "jpeg", quality)
        done["encoder"] = done["encoder"] or encoder
        for sid in legacy:
            server.send_sync(legacy_type, legacy_frame(jpeg), sid)
            done["sent"].append((sid, legacy_type))
    if done["encoder"] not in _ENCODERS_LOGGED:  # once per encoder: says whether nvJPEG served (the device check reads it)
        _ENCODERS_LOGGED.add(done["encoder"])
        log.info("InstaFlow Live Preview: encoding with %s", done["encoder"])
    return done
