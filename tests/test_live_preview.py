"""InstaFlowLivePreview: the batch, encoded once, reaches the client that queued the prompt as a websocket
preview frame, decodes to SaveImage's picture within the encoder's loss, and nothing is written to disk.

The bound: mean |preview - SaveImage PNG| <= 3/255 over the 8-bit pixels of devtools.input_images'
256x256 picture at quality >= 50 (calibrated on it: JPEG 1.2/255 at quality 90, 2.2 at 50; WebP 1.2 and 2.0).
A swapped channel order or a flip moves that picture by 34/255 or more, so the bound tells them apart
(test_error_bound_fails_a_swapped_channel_order_and_a_flip).
"""
from __future__ import annotations

import asyncio
import io
import json
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from devtools.graphs import Graph
from devtools.input_images import input_picture, put_input_image
from devtools.preview_client import run_prompt_collecting_previews
from live_preview.image_encoding import encode_batch, grid_shape, tiled_uint8_chw
from live_preview.websocket_frames import legacy_frame, metadata_frame

MEAN_ERROR_BOUND_255 = 3.0
SIZE = 256


def decode(data: bytes) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(data)).convert("RGB"))


def tiles(grid: np.ndarray, batch: int, size: int) -> list[np.ndarray]:
    _, columns = grid_shape(batch)
    return [grid[(i // columns) * size:(i // columns + 1) * size, (i % columns) * size:(i % columns + 1) * size]
            for i in range(batch)]


def mean_error_255(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def as_image_batch(*pictures: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(pictures)).float() / 255


# ------------------------------------------------------------------------------------------ no server
def test_batch_is_tiled_row_major_in_a_near_square_grid():
    batch = torch.stack([torch.full((2, 3, 3), i / 10) for i in range(5)])  # image i: every pixel i/10
    grid = tiled_uint8_chw(batch)
    assert grid_shape(5) == (2, 3) and tuple(grid.shape) == (3, 4, 9)
    cell_values = [int(grid[0, r * 2, c * 3]) for r in range(2) for c in range(3)]
    assert cell_values == [0, 25, 51, 76, 102, 0]  # SaveImage's truncation of 255 * i/10; the sixth cell is empty


@pytest.mark.parametrize("image_format", ["jpeg", "webp"])
def test_error_bound_holds_for_the_encoder_at_quality_50_and_90(image_format):
    picture = input_picture(SIZE)
    for quality in (50, 90):
        data, _ = encode_batch(as_image_batch(picture), image_format, quality)
        assert mean_error_255(decode(data), picture) <= MEAN_ERROR_BOUND_255, (image_format, quality)


def test_error_bound_fails_a_swapped_channel_order_and_a_flip():
    picture = input_picture(SIZE)
    decoded = decode(encode_batch(as_image_batch(picture), "jpeg", 90)[0])
    for wrong in (decoded[..., ::-1], decoded[::-1], decoded[:, ::-1]):
        assert mean_error_255(wrong, picture) > 10 * MEAN_ERROR_BOUND_255


def test_unknown_format_is_refused_naming_it():
    with pytest.raises(ValueError, match="'png'"):
        encode_batch(as_image_batch(input_picture(8)), "png", 90)


def test_quality_outside_1_to_100_is_refused_naming_it():
    with pytest.raises(ValueError, match="101"):
        encode_batch(as_image_batch(input_picture(8)), "jpeg", 101)


def test_metadata_frame_is_length_then_json_then_image():
    payload = metadata_frame(b"IMAGE", {"node_id": "7"})
    (length,) = struct.unpack(">I", payload[:4])
    assert json.loads(payload[4:4 + length]) == {"node_id": "7"} and payload[4 + length:] == b"IMAGE"


def test_legacy_frame_is_jpeg_kind_then_image():
    assert legacy_frame(b"IMAGE") == struct.pack(">I", 1) + b"IMAGE"


# ------------------------------------------------------------------------------------------ on a server
def _batch_graph(server, image_format="jpeg", quality=90, save=True):
    """LoadImage A, B -> batch [A, B, A] (a 2x2 grid with one empty cell) -> SaveImage and the live preview."""
    first = put_input_image(server, "live_preview_a.png", input_picture(SIZE))
    second = put_input_image(server, "live_preview_b.png", input_picture(SIZE)[::-1, ::-1].copy())
    g = Graph()
    a, b = g.add("LoadImage", image=first), g.add("LoadImage", image=second)
    batch = g.add("ImageBatch", image1=g.add("ImageBatch", image1=a[0], image2=b[0])[0], image2=a[0])
    preview = g.add("InstaFlowLivePreview", images=batch[0], format=image_format, quality=quality)
    saved = g.add("SaveImage", images=batch[0], filename_prefix="live_preview_reference") if save else None
    return g, preview, saved


def _files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.oldest
@pytest.mark.parametrize("image_format", ["jpeg", "webp"])
def test_preview_decodes_to_save_images_pngs_within_the_bound(comfy_server, image_format):
    g, preview, saved = _batch_graph(comfy_server, image_format)
    run = asyncio.run(run_prompt_collecting_previews(comfy_server.url, g.api()))
    assert run.error is None, run.error
    pngs = comfy_server.images(comfy_server.get_json(f"/history/{run.prompt_id}")[run.prompt_id]["outputs"], saved.id)
    (frame,) = run.frames["queuer"]
    assert frame.metadata["image_type"] == f"image/{image_format}"
    grid = decode(frame.image)
    assert grid.shape == (2 * SIZE, 2 * SIZE, 3)
    for i, (tile, png) in enumerate(zip(tiles(grid, 3, SIZE), pngs)):
        assert mean_error_255(tile, png) <= MEAN_ERROR_BOUND_255, f"image {i}"
    assert grid[SIZE:, SIZE:].mean() <= MEAN_ERROR_BOUND_255  # the empty fourth cell: black, but for colour bleeding at its edge


@pytest.mark.oldest
def test_queuing_client_gets_one_type_4_frame_naming_node_and_prompt_and_a_bystander_gets_none(comfy_server):
    g, preview, _ = _batch_graph(comfy_server, save=False)
    run = asyncio.run(run_prompt_collecting_previews(comfy_server.url, g.api()))
    assert run.error is None, run.error
    (frame,) = run.frames["queuer"]
    assert frame.event_type == 4
    assert frame.metadata["node_id"] == frame.metadata["display_node_id"] == frame.metadata["real_node_id"] == preview.id
    assert frame.metadata["prompt_id"] == run.prompt_id
    assert run.frames["bystander"] == []


def test_client_without_the_metadata_flag_gets_a_type_1_jpeg_frame(comfy_server):
    g, _, _ = _batch_graph(comfy_server, image_format="webp", save=False)
    run = asyncio.run(run_prompt_collecting_previews(comfy_server.url, g.api(), announce_metadata=False))
    assert run.error is None, run.error
    (frame,) = run.frames["queuer"]
    assert frame.event_type == 1 and frame.image_kind == 1
    assert Image.open(io.BytesIO(frame.image)).format == "JPEG"


@pytest.mark.oldest
def test_graph_ending_in_the_live_preview_writes_nothing_and_returns_no_files(comfy_server):
    g, _, _ = _batch_graph(comfy_server, save=False)
    before = {d: _files_under(comfy_server.work_dir / d) for d in ("output", "temp")}
    run = asyncio.run(run_prompt_collecting_previews(comfy_server.url, g.api()))
    assert run.error is None, run.error
    assert {d: _files_under(comfy_server.work_dir / d) for d in ("output", "temp")} == before
    assert comfy_server.get_json(f"/history/{run.prompt_id}")[run.prompt_id]["outputs"] == {}
