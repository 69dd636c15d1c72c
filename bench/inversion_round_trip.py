"""Round-trip error of InstaFlowInversion by steps and fixed-point iterations, through a real ComfyUI server.

For every (steps, iterations) the graph inverts the test picture (devtools/input_images.py) with
InstaFlowInversion and regenerates it with stock SamplerCustomAdvanced (rectified_flow,
InstaFlowScheduler with the same steps, same prompt and cfg), then prints the RMS difference between
the regenerated and the encoded latent (scaled latent units, as the official pipelines use them) as a
Markdown table.

    bash scripts/bootstrap.sh   # the test environment (once)
    ~/.cache/comfyui-instaflow/venv/bin/python -m bench.inversion_round_trip [--steps 1 2 4 8] [--iterations 0 1 2 3 5]

Without --models it runs on the random-weight test model (devtools/random_models.py); --models
DIR --model NAME runs on a real model (e.g. 2_rectified_flow_from_sd_1_5 in DIR/instaflow/).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

from devtools.input_images import input_picture, put_input_image  # noqa: E402
from devtools.pack_identity import PACK_NAME  # noqa: E402
from devtools.inversion_graphs import InversionGraph, rms, saved_latent  # noqa: E402
from devtools.server import ComfyServer  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--iterations", type=int, nargs="+", default=[0, 1, 2, 3, 5])
    p.add_argument("--cfg", type=float, default=1.0)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--models", type=Path, help="a models folder (default: the random-weight test model)")
    p.add_argument("--model", help="the InstaFlowLoader name of the model in --models")
    return p.parse_args()


def main():
    args = parse_args()
    if args.models:
        root, name = args.models, args.model
    else:
        from devtools.random_models import ensure_random_instaflow
        models = ensure_random_instaflow()
        root, name = models.models_root, models.name
    with tempfile.TemporaryDirectory() as work, ComfyServer([root], [(PACK_NAME, REPO)], Path(work)) as server:
        image = put_input_image(server, "inversion_round_trip.png", input_picture(args.size))
        print(f"model {name}, {args.size}x{args.size}, cfg {args.cfg}; RMS(regenerated - encoded), scaled latent units")
        print("| steps | " + " | ".join(f"{k} iterations" for k in args.iterations) + " |")
        print("|---|" + "---|" * len(args.iterations))
        for steps in args.steps:
            ig = InversionGraph(name, image)
            encoded = ig.save_latent(ig.latent, "encoded")
            saves = {k: ig.save_latent(ig.regenerate(ig.invert(steps, k, cfg=args.cfg), steps, cfg=args.cfg)[0], f"rt{k}")
                     for k in args.iterations}
            start = time.monotonic()
            outputs = server.run(ig.g.api(), timeout=3600)
            x0 = saved_latent(server, outputs, encoded)
            errors = [rms(saved_latent(server, outputs, saves[k]) - x0) for k in args.iterations]
            print(f"| {steps} | " + " | ".join(f"{e:.2e}" for e in errors) + f" |  ({time.monotonic() - start:.0f} s)",
                  flush=True)
        print(f"encoded latent std {float(x0.std()):.3f}")


if __name__ == "__main__":
    main()
