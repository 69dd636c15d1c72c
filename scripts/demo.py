"""Demo: a headless ComfyUI runs the bundled one-step example workflow and writes the PNG.

Uses the real InstaFlow-0.9B weights when they are in the models folder, downloads them only when
asked (--download: only the files the loader reads, resumable, each one checked; scripts/hub_download.py),
and otherwise runs on the random-weight test model and says so.
Run through scripts/demo.sh, which builds the environment first.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

from scripts import hub_download
from devtools.comfyui_source import cache_root  # noqa: E402
from devtools.pack_identity import PACK_NAME  # noqa: E402
from devtools.server import ComfyServer  # noqa: E402
from devtools.ui_workflow import ui_to_api  # noqa: E402

HUB_REPO = "XCLiu/instaflow_0_9B_from_sd_1_5"
MODEL_NAME = "instaflow_0_9B_from_sd_1_5"
WORKFLOW = REPO / "example_workflows" / "instaflow_one_step_txt2img.json"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=Path, default=cache_root() / "models",
                   help="ComfyUI-style models folder holding instaflow/%s (default: %%(default)s)" % MODEL_NAME)
    p.add_argument("--download", action="store_true",
                   help=f"download what the loader reads from {HUB_REPO} (unet, text encoder and VAE safetensors, "
                        "~4.3 GB) into MODELS/instaflow/ first; resumes, and checks every file against the hub")
    p.add_argument("--download-only", action="store_true", help="with --download: fetch and check, then stop")
    p.add_argument("--out", type=Path, default=Path("demo_output"), help="where the PNG goes (default: %(default)s)")
    p.add_argument("--prompt", default=None, help="replace the example's prompt")
    p.add_argument("--seed", type=int, default=None, help="replace the example's seed")
    return p.parse_args()


def choose_model(args) -> tuple[Path, str, bool]:
    """(models root, InstaFlowLoader name, real weights?)."""
    real = args.models / "instaflow" / MODEL_NAME
    if hub_download.has_verified_layout(real):
        return args.models, MODEL_NAME, True
    from devtools.random_models import ensure_random_instaflow

    random_model = ensure_random_instaflow()
    return random_model.models_root, random_model.name, False


def main() -> int:
    args = parse_args()
    if args.download:
        folder = args.models / "instaflow" / MODEL_NAME
        try:
            hub_download.download(HUB_REPO, folder, log=lambda line: print(line, flush=True))
        except hub_download.DownloadError as e:
            print(f"ERROR: {e}", file=sys.stderr)
            return 1
        print(f"{folder}: ready for Load InstaFlow Checkpoint ({MODEL_NAME})", flush=True)
        if args.download_only:
            return 0
    models_root, model_name, real = choose_model(args)
    if not real:
        print(f"NOTE: no InstaFlow weights in {args.models / 'instaflow' / MODEL_NAME}; running on the RANDOM-WEIGHT "
              "test model, so the image will look like noise. Use --download for the real InstaFlow-0.9B.", flush=True)
    workflow = json.loads(WORKFLOW.read_text())
    with tempfile.TemporaryDirectory(prefix="instaflow-demo-") as work:
        server = ComfyServer(models_root, [(PACK_NAME, REPO)], Path(work))
        t0 = time.perf_counter()
        with server:
            started = time.perf_counter() - t0
            prompt = ui_to_api(workflow, server.object_info())
            for node in prompt.values():
                if node["class_type"] == "InstaFlowLoader":
                    node["inputs"]["ckpt_name"] = model_name
                if node["class_type"] == "CLIPTextEncode" and args.prompt is not None:
                    node["inputs"]["text"] = args.prompt
                if node["class_type"] == "InstaFlowSampler" and args.seed is not None:
                    node["inputs"]["seed"] = args.seed
            save_id = next(k for k, v in prompt.items() if v["class_type"] == "SaveImage")
            t1 = time.perf_counter()
            outputs = server.run(prompt, timeout=1800)
            ran = time.perf_counter() - t1
            images = server.images(outputs, save_id)
    from PIL import Image

    args.out.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        path = args.out / f"instaflow_demo_{i:02d}.png"
        Image.fromarray(image).save(path)
        print(f"wrote {path.resolve()} ({image.shape[1]}x{image.shape[0]}, {'real InstaFlow-0.9B' if real else 'random weights'})")
    print(f"server start {started:.1f} s; workflow (model load + one step + decode) {ran:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
