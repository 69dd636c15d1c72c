"""`scripts/demo.sh --download` end to end, against a fake Hugging Face hub on loopback.

The fake hub (devtools/fake_hub.py) serves XCLiu/instaflow_0_9B_from_sd_1_5 with the file layout of a
diffusers SD1.5 pipeline repository as published (model_index.json, unet/, text_encoder/, vae/ with both
.safetensors and .bin weights, tokenizer/, scheduler/, safety_checker/, feature_extractor/, README.md),
filled with a small random model, and the demo reaches it through the hub client's endpoint variable
(HF_ENDPOINT). The demo runs with the test audit hook (devtools/audit_hook), which refuses and records any
connection or name lookup that is not loopback. The exact file list of the real repository is not checked
from here; the layout is the standard one the hub tags as diffusers + safetensors.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from devtools.fake_hub import FakeHub

REPO_ROOT = Path(__file__).resolve().parent.parent
HOOK_DIR = REPO_ROOT / "devtools" / "audit_hook"
REPO_ID = "XCLiu/instaflow_0_9B_from_sd_1_5"
MODEL_NAME = "instaflow_0_9B_from_sd_1_5"
UNET = "unet/diffusion_pytorch_model.safetensors"
TEXT_ENCODER = "text_encoder/model.safetensors"
VAE = "vae/diffusion_pytorch_model.safetensors"
WANTED = {"model_index.json", UNET, TEXT_ENCODER, VAE}  # what Load InstaFlow Checkpoint reads


def tiny_safetensors(seed: int, numel: int) -> bytes:
    from safetensors.numpy import save

    rng = np.random.default_rng(seed)
    return save({"weight": rng.standard_normal(numel).astype(np.float16), "bias": rng.standard_normal(16).astype(np.float16)})


def repository_files() -> dict[str, bytes]:
    text = lambda obj: json.dumps(obj, indent=2).encode()
    files = {
        ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n",
        "README.md": b"---\nlicense: cc-by-nc-4.0\n---\n# InstaFlow-0.9B (test stand-in)\n",
        "model_index.json": text({"_class_name": "RectifiedFlowPipeline", "_diffusers_version": "0.21.0",
                                  "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
                                  "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
                                  "scheduler": ["diffusers", "PNDMScheduler"], "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
                                  "feature_extractor": ["transformers", "CLIPImageProcessor"]}),
        "scheduler/scheduler_config.json": text({"_class_name": "PNDMScheduler"}),
        "feature_extractor/preprocessor_config.json": text({"crop_size": 224}),
        "tokenizer/vocab.json": text({"a": 0}), "tokenizer/merges.txt": b"#version: 0.2\n",
        "tokenizer/special_tokens_map.json": text({}), "tokenizer/tokenizer_config.json": text({}),
    }
    for i, (part, weights, numel) in enumerate([("unet", "diffusion_pytorch_model", 12_000_000),
                                                ("text_encoder", "model", 200_000),
                                                ("vae", "diffusion_pytorch_model", 300_000),
                                                ("safety_checker", "model", 100_000)]):
        files[f"{part}/config.json"] = text({"part": part})
        data = tiny_safetensors(i, numel)
        files[f"{part}/{weights}.safetensors"] = data
        files[f"{part}/{'pytorch_model' if weights == 'model' else weights}.bin"] = b"PK\x03\x04" + data[::-1]
    return files


@pytest.fixture
def hub():
    with FakeHub({REPO_ID: repository_files()}) as fake:
        yield fake


def run_demo(hub: FakeHub, models: Path, audit_log: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY") and not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(models.parent / "hf_home"), NO_PROXY="127.0.0.1,localhost",
               PYTHONPATH=str(HOOK_DIR), INSTAFLOW_AUDIT_LOG=str(audit_log), PYTHONUNBUFFERED="1")
    return subprocess.run(["bash", str(REPO_ROOT / "scripts" / "demo.sh"), "--download", "--download-only",
                           "--models", str(models)], env=env, capture_output=True, text=True, timeout=300)


def network_attempts(audit_log: Path) -> list[dict]:
    if not audit_log.exists():
        return []
    records = [json.loads(line) for line in audit_log.read_text().splitlines()]
    return [r for r in records if r["event"].startswith("socket.")]


def folder_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts}


def test_download_fetches_only_what_the_loader_reads_shows_progress_and_resumes(hub, tmp_path):
    models, log = tmp_path / "models", tmp_path / "audit.jsonl"
    folder = models / "instaflow" / MODEL_NAME
    files = hub.repos[REPO_ID]
    half = len(files[UNET]) // 2
    hub.cut_after[UNET] = half  # the connection drops halfway through the UNet (24 MB: past one 10 MiB write)

    first = run_demo(hub, models, log)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "the download stopped" in first.stderr and "run the same command again to resume" in first.stderr
    assert not (folder / UNET).exists()

    second = run_demo(hub, models, log)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resuming an interrupted download" in second.stdout
    resumed = [r.range for r in hub.downloads(UNET)]
    assert resumed[0] is None and resumed[-1] is not None and resumed[-1].startswith("bytes=")
    assert 0 < int(resumed[-1].removeprefix("bytes=").split("-")[0]) <= half, resumed  # continued, not restarted
    assert f"{UNET}: 24.00 MB of 24.00 MB (100%)" in second.stdout  # progress lines
    for path in WANTED:
        assert (folder / path).read_bytes() == files[path], path
    assert folder_files(folder) == WANTED  # no .bin twins, safety checker, tokenizer, scheduler or README
    assert hub.requested_files() == WANTED
    assert f"ready for Load InstaFlow Checkpoint ({MODEL_NAME})" in second.stdout
    assert not network_attempts(log)


def test_truncated_or_corrupt_files_on_disk_are_reported_and_fetched_again(hub, tmp_path):
    models, log = tmp_path / "models", tmp_path / "audit.jsonl"
    folder = models / "instaflow" / MODEL_NAME
    files = hub.repos[REPO_ID]
    for path in WANTED:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(files[path])
    (folder / UNET).write_bytes(files[UNET][: len(files[UNET]) // 3])  # an interrupted copy
    flipped = bytearray(files[VAE])
    flipped[-5] ^= 0x01  # one bit off in the tensor data: same size, valid header
    (folder / VAE).write_bytes(bytes(flipped))

    result = run_demo(hub, models, log)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{UNET} " in result.stdout and "truncated" in result.stdout
    assert "corrupt: sha256" in result.stdout
    assert f"{TEXT_ENCODER} (" in result.stdout and "already here, verified" in result.stdout
    for path in WANTED:
        assert (folder / path).read_bytes() == files[path], path
    assert hub.requested_files() == {UNET, VAE}
    assert not network_attempts(log)


def test_a_file_that_arrives_corrupt_is_refused_and_deleted(hub, tmp_path):
    models, log = tmp_path / "models", tmp_path / "audit.jsonl"
    hub.corrupt.add(VAE)
    result = run_demo(hub, models, log)
    assert result.returncode == 1
    assert f"{VAE} from {REPO_ID} is corrupt" in result.stderr and "it was deleted" in result.stderr
    assert not (models / "instaflow" / MODEL_NAME / VAE).exists()
    assert not network_attempts(log)
