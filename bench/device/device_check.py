"""The device check: one command that proves InstaFlow's CUDA path in ComfyUI and measures it.

    bash bench/device/run_on_device.sh     on the GPU machine (docs/performance.md: the device call)
    bash bench/device/dry_run.sh           the same script on a CPU with tiny sizes (CI runs it)

Phases, in order; each one's result is written to OUT/device_check.json and OUT/device_check.md as soon
as it ends. A phase that fails is recorded with its error and the next one runs; a phase that would not
fit in the time budget (--budget-s) is skipped, and the report says so.
 1. models: the tests' full-size random InstaFlow (diffusers folder and single file), ControlNet and
    LoRAs, built here from their recipes (no download); random TAESD weights; 1,000 clutter files in the
    model folders the pack lists.
 2. start: a ComfyUI server (HTTP) and an in-process worker (PromptExecutor, no HTTP) with the pack,
    started together; each one's start time and cold first prompt (model load included).
 3. bench: for each batch size, rounds of: the one-step example workflow through the server (POST
    /prompt until every PNG is fetched), the same in-process, the official one-step loop with diffusers
    modules in ComfyUI's dtypes, and the component floors (CLIP encode, one UNet call, one VAE decode),
    plus SaveImage's PNG encoding of the batch. Medians after warm-up.
 4. pack cost: time per warm prompt in the pack's code outside the model calls (devtools/pack_cost.py),
    with the clutter in the model folders.
 5. equivalence: ComfyUI on this device in its default dtypes vs the fp32 reference (TF32 off): one
    step, stock KSampler on the single file, SamplerCustom 4 steps cfg 1.5, batch 2, ControlNet, LoRA;
    the three broken conventions must miss by a wide margin; the reference run in ComfyUI's dtypes gives
    the precision floor the tolerance is checked against.
 6. live_output, cuda_graph_node: the pack's Live Preview (fast) node vs SaveImage, and its CUDA Graph node vs
    eager (bench/device/live_phases.py).
 7. options: each speed option against the baseline in alternating rounds, same seeds: websocket image
    output, TAESD decode, channels_last, an exact CUDA graph of the UNet call, TorchCompileModel
    (cudagraphs, inductor); then the best exact combination; the targets are checked.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import os
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from PIL import Image

import devtools.server as harness_server
from bench.device import live_phases
from bench.run_benchmark import PROMPT, ServerClient, node_id, with_seed, workflow_prompt
from devtools import extra_models
from devtools.comfyui_source import comfyui_path
from devtools.comparison import comfy_noise
from devtools.control_image import depth_like_image
from devtools.graphs import Graph, decode_and_save, encode
from devtools.inprocess_comfy import InProcessComfy
from devtools.input_images import put_input_image
from devtools.pack_identity import PACK_NAME
from devtools.reference_rf import ReferenceInstaFlow, to_uint8

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

TOLERANCE = 2 / 255  # the CPU suite's (devtools/comparison.py): mean absolute 8-bit pixel difference
WIDE_MARGIN = 4 * TOLERANCE
PROFILES = {
    # The GPU machine: 512x512 as the issue asks; runs sized to fit well under the 10-minute call.
    "device": dict(size=512, batches=[1, 8, 16], runs=10, warmup=3, equivalence_size=512, option_batches=[1, 16],
                   option_runs=6, option_warmup=2, pack_cost_runs=5, component_repeat=5, models="full-size"),
    # CPU dry run (CI): every phase and option once, at 64x64, so the script cannot rot between device draws; on
    # the tests' reduced SD1.5 stand-in (devtools/reduced_sd15.py: the same graphs and loaders, a single file
    # instead of a folder, about 7x cheaper per UNet call on a CPU).
    "dry": dict(size=64, batches=[1, 2], runs=1, warmup=0, equivalence_size=64, option_batches=[1],
                option_runs=1, option_warmup=0, pack_cost_runs=1, component_repeat=1, models="reduced"),
}
PHASES = ["bench", "unet_variants", "pack_cost", "equivalence", "live_output", "cuda_graph_node", "options"]
OPTIONS = ["ws_output", "taesd_decode", "channels_last", "cuda_graph", "compile_cudagraphs", "compile_inductor"]
# Rough seconds an option needs before its first measured round on a GPU (compilation); options that
# would not fit in the remaining budget are skipped.
OPTION_SETUP_S = {"compile_cudagraphs": 60, "compile_inductor": 150}
SAME_IMAGE_255 = 0.5  # an option "keeps the image" when it moves it by at most this much on average (a quarter of the tolerance)
TARGETS = {"batch1_ms": 35.0, "batch16_images_per_s": 30.0}  # H100, one step, 512x512, through the server
NEGATIVE = "blurry, low quality"
SEED = 1234


# ------------------------------------------------------------------------------------------ bookkeeping
class Report:
    def __init__(self, out: Path, budget_s: float):
        self.out, self.t0, self.budget_s = out, time.monotonic(), budget_s
        self.data = {"phases": {}, "skipped": {}, "errors": {}}
        out.mkdir(parents=True, exist_ok=True)

    def remaining(self) -> float:
        return self.budget_s - (time.monotonic() - self.t0)

    def phase(self, name, fn, *, needs_s=0.0):
        if self.remaining() < needs_s:
            self.data["skipped"][name] = f"{self.remaining():.0f} s of the budget left, the phase needs about {needs_s:.0f} s"
            print(f"[device-check] skip {name}: {self.data['skipped'][name]}", flush=True)
            self.write()
            return None
        print(f"[device-check] {name} ({self.remaining():.0f} s of the budget left)", flush=True)
        t0 = time.monotonic()
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - record and go on to the next phase
            self.data["errors"][name] = f"{type(e).__name__}: {e}\n{traceback.format_exc()[-4000:]}"
            print(f"[device-check] {name} FAILED: {type(e).__name__}: {e}", flush=True)
            result = None
        else:
            self.data["phases"][name] = result
        self.data.setdefault("phase_seconds", {})[name] = round(time.monotonic() - t0, 1)
        self.write()
        return result

    def write(self):
        self.data["elapsed_s"] = round(time.monotonic() - self.t0, 1)
        tmp = self.out / "device_check.json.partial"
        tmp.write_text(json.dumps(self.data, indent=2, default=str))
        tmp.replace(self.out / "device_check.json")
        try:
            text = markdown(self.data)
        except Exception as e:  # noqa: BLE001 - the JSON has every figure; a table bug must not stop the check
            text = f"# InstaFlow device check\n\n(the tables could not be written: {type(e).__name__}: {e}; see device_check.json)\n"
        (self.out / "device_check.md").write_text(text)


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def ms_since(t0):
    sync()
    return (time.perf_counter() - t0) * 1000


def median(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


# ------------------------------------------------------------------------------------------ references
class MixedReference(ReferenceInstaFlow):
    """The official one-step math with diffusers modules, each part in its own dtype (ComfyUI's choice)."""

    def __init__(self, diffusers_dir, device, unet_dtype, vae_dtype, text_dtype):
        super().__init__(diffusers_dir, device=device, dtype=unet_dtype)
        self.vae.to(vae_dtype)
        self.text_encoder.to(text_dtype)

    @torch.no_grad()
    def encode_prompt(self, prompt):
        return super().encode_prompt(prompt).to(self.dtype)

    @torch.no_grad()
    def decode(self, latents):
        return super().decode(latents.to(self.vae.dtype))


def move_reference(ref, device):
    for module in (ref.unet, ref.vae, ref.text_encoder):
        module.to(device)
    ref.device = torch.device(device)


def fp32_reference(diffusers_dir, device):
    torch.backends.cuda.matmul.allow_tf32 = False  # a true fp32 reference: no TF32 matrix or convolution math
    torch.backends.cudnn.allow_tf32 = False
    return ReferenceInstaFlow(diffusers_dir, device=device, dtype=torch.float32)


def diff(ours, expected) -> dict:
    ours = np.stack(ours).astype(np.float64) if isinstance(ours, list) else np.asarray(ours, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if ours.shape != expected.shape:
        raise ValueError(f"shapes differ: {ours.shape} vs {expected.shape}")
    d = np.abs(ours - expected)
    return {"mean_255": round(float(d.mean()), 4), "max_255": int(d.max())}


def decode_pngs(blobs) -> np.ndarray:
    return np.stack([np.array(Image.open(io.BytesIO(b)).convert("RGB")) for b in blobs])


# ------------------------------------------------------------------------------------------ the check
class DeviceCheck:
    def __init__(self, args):
        self.args = args
        self.profile = PROFILES[args.profile]
        self.cuda = torch.cuda.is_available()
        self.device = "cuda" if self.cuda else "cpu"
        self.report = Report(args.out, args.budget_s)
        self.work = Path(tempfile.mkdtemp(prefix="instaflow-device-"))
        self.server = self.inproc = self.ref = None
        self.models = {}
        self.dtypes = {}
        self._seeds = 0

    # -------------------------------------------------------------- phase 0/1
    def environment(self):
        env = {"profile": self.args.profile, "stand_in": self.profile["models"], "python": platform.python_version(),
               "torch": torch.__version__, "cuda": torch.version.cuda, "cpu_count": os.cpu_count(),
               "date": time.strftime("%Y-%m-%d %H:%M:%S"), "comfyui": _comfy_version(), "comfy_args": self.args.comfy_args}
        if self.cuda:
            props = torch.cuda.get_device_properties(0)
            env.update(device=torch.cuda.get_device_name(0), gpu_memory_gib=round(props.total_memory / 2**30, 1),
                       multiprocessors=props.multi_processor_count, capability=f"{props.major}.{props.minor}")
        else:
            env["device"] = "CPU: " + _cpu_name()
        for name in ("diffusers", "transformers", "tokenizers", "huggingface_hub", "numpy"):
            try:
                env[name] = __import__(name).__version__
            except Exception as e:  # noqa: BLE001
                env[name] = f"unavailable: {e}"
        return env

    def build_models(self):
        from devtools.random_controlnet import ensure_random_controlnet, ensure_reduced_controlnet
        from devtools.random_lora import ensure_random_loras, ensure_reduced_loras
        from devtools.random_models import ensure_random_instaflow
        from devtools.reduced_sd15 import ensure_reduced_instaflow

        reduced = self.profile["models"] == "reduced"
        t0 = time.monotonic()
        instaflow = ensure_reduced_instaflow() if reduced else ensure_random_instaflow()
        built = {"instaflow_s": time.monotonic() - t0}
        controlnet = (ensure_reduced_controlnet if reduced else ensure_random_controlnet)(instaflow)
        loras = (ensure_reduced_loras if reduced else ensure_random_loras)(instaflow)
        taesd_root = extra_models.ensure_random_taesd()
        clutter = extra_models.make_clutter(self.work / "clutter")
        built["all_s"] = time.monotonic() - t0
        self.models = {"instaflow": instaflow, "controlnet": controlnet, "loras": loras, "taesd": taesd_root,
                       "clutter": clutter}
        return {**{k: round(v, 1) for k, v in built.items()}, "clutter_files": extra_models.CLUTTER_FILES,
                "roots": [str(r) for r in self.roots()]}

    def object_info(self):
        if getattr(self, "_object_info", None) is None:
            self._object_info = self.server.object_info()
        return self._object_info

    def roots(self):
        m = self.models
        return [m["instaflow"].models_root, m["controlnet"].models_root, m["loras"].models_root, m["taesd"], m["clutter"]]

    # -------------------------------------------------------------- phase 2
    def start(self):
        harness_server.MODEL_FOLDERS.update(vae_approx="vae_approx", perflow="perflow")  # TAESD, PeRFlow folders
        web = self.work / "web"
        web.mkdir(exist_ok=True)
        (web / "index.html").write_text("<html><body>InstaFlow device check</body></html>\n")
        comfy_args = ["--front-end-root", str(web), *self.args.comfy_args]  # no frontend package needed
        (self.work / "server").mkdir()
        (self.work / "inprocess").mkdir()
        packs = [(PACK_NAME, REPO), ("instaflow_test_nodes", REPO / "tests" / "comfy_test_nodes"),
                 ("instaflow_bench_nodes", HERE / "bench_nodes")]
        self.inproc = InProcessComfy(self.roots(), self.work / "inprocess", [*([] if self.cuda else ["--cpu"]), *comfy_args])
        self.server = harness_server.ComfyServer(self.roots(), packs, self.work / "server", extra_args=comfy_args,
                                                 cpu=not self.cuda, startup_timeout=300)
        self.server.start()
        inproc_start = self.inproc.wait_ready()
        failed = self.server.failed_custom_nodes()
        self.base = workflow_prompt(self.object_info(), self.models["instaflow"].name, self.profile["size"], 1)
        save = node_id(self.base, "SaveImage")
        t0 = time.perf_counter()
        asyncio.run(ServerClient(self.server.url).run_all([with_seed(self.base, 1)], save, 1))
        server_first = (time.perf_counter() - t0) * 1000
        reply = self.inproc.ask(cmd="workflow", prompt=with_seed(self.base, 1), outputs=[save])
        comp = self.inproc.ask(cmd="components", loader=node_id(self.base, "InstaFlowLoader"), prompt=PROMPT,
                               size=self.profile["size"], batch=1)
        self.dtypes = {"unet": comp["unet_dtype"], "vae": comp["vae_dtype"]}
        return {"server_start_s": round(self.server.start_seconds, 1), "server_first_prompt_ms": round(server_first),
                "inprocess_start_s": round(inproc_start, 1), "inprocess_first_prompt_ms": round(reply["ms"]),
                "comfy_dtypes": self.dtypes, "failed_packs": failed,
                "note": "cold = the first prompt after start: model files read (from the page cache here: just built) "
                        "and moved to the device"}

    # -------------------------------------------------------------- phase 3
    def _bench_reference(self):
        if self.ref is None:
            unet_dtype, vae_dtype = _dtype(self.dtypes.get("unet")), _dtype(self.dtypes.get("vae"))
            self.ref = MixedReference(self.models["instaflow"].diffusers_dir, self.device, unet_dtype, vae_dtype, unet_dtype)
        return self.ref

    def bench(self):
        ref = self._bench_reference()
        rows = []
        for batch in self.profile["batches"]:
            if self.report.remaining() < 20:
                self.report.data["skipped"][f"bench batch {batch}"] = "time budget"
                continue
            rows.append(self._bench_batch(ref, batch))
            self.report.data["phases"]["bench"] = {"rows": rows, "reference_dtypes": _ref_dtypes(ref)}
            self.report.write()
        return {"rows": rows, "reference_dtypes": _ref_dtypes(ref)}

    def _bench_batch(self, ref, batch):
        size, p = self.profile["size"], self.profile
        prompt = workflow_prompt(self.object_info(), self.models["instaflow"].name, size, batch)
        save, loader = node_id(prompt, "SaveImage"), node_id(prompt, "InstaFlowLoader")
        client = ServerClient(self.server.url)
        keys = ("server", "server_exec", "inprocess", "reference", "c_clip", "c_unet", "c_vae", "r_unet", "r_vae", "png4", "png1")
        rows = {k: [] for k in keys}
        for i in range(p["warmup"] + p["runs"]):
            seed = 1000 + i
            e2e, exec_ms = asyncio.run(client.run_all([with_seed(prompt, seed)], save, batch))[0]
            pngs = client.last_images
            reply = self.inproc.ask(cmd="workflow", prompt=with_seed(prompt, seed), outputs=[save])
            noise = comfy_noise(seed, batch, size)
            t0 = time.perf_counter()
            ref.generate(PROMPT, noise)
            reference = ms_since(t0)
            comp = self.inproc.ask(cmd="components", loader=loader, prompt=PROMPT, size=size, batch=batch)
            r_unet, r_vae = _reference_components(ref, noise)
            png4, png1 = _png_encode_ms(pngs, batch)
            if i < p["warmup"]:
                continue
            for k, v in zip(keys, (e2e, exec_ms, reply["ms"], reference, comp["clip_ms"], comp["unet_ms"], comp["vae_ms"],
                                   r_unet, r_vae, png4, png1)):
                rows[k].append(v)
        m = {k: median(v) for k, v in rows.items()}
        floor = m["c_unet"] + m["c_vae"]
        return {"batch": batch, "size": size, **{f"{k}_ms": round(v, 2) for k, v in m.items()},
                "floor_ms": round(floor, 2), "images_per_s": round(batch * 1000 / m["server"], 2),
                "http_queue_fetch_ms": round(m["server"] - m["server_exec"], 2),
                "executor_png_save_ms": round(m["server_exec"] - floor, 2),
                "ratio_vs_reference": round(m["server"] / m["reference"], 3),
                "raw_server_ms": [round(v, 2) for v in rows["server"]]}

    # -------------------------------------------------------------- phase 3b: UNet variants alone
    def unet_variants(self):
        loader = node_id(self.base, "InstaFlowLoader")
        out = []
        for batch in self.profile["option_batches"]:
            comp = self.inproc.ask(cmd="components", loader=loader, prompt=PROMPT, size=self.profile["size"], batch=batch,
                                   variants=["channels_last", "cuda_graph"], repeat=self.profile["component_repeat"])
            out.append({"batch": batch, **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in comp.items()}})
        return out

    # -------------------------------------------------------------- phase 4
    def pack_cost(self):
        prompt = with_seed(self.base, 5)
        result = self.inproc.ask(cmd="pack_cost", prompt=prompt, outputs=[node_id(prompt, "SaveImage")],
                                 seed_node=node_id(prompt, "InstaFlowSampler"), runs=self.profile["pack_cost_runs"])
        result.pop("traceback", None)
        result["clutter_files"] = extra_models.CLUTTER_FILES
        result["target_ms"] = 1.0
        result["total_ms"] = result["pack_own_ms"] + result["comfy_helpers_ms"] + result["sync_ms"]  # under cProfile
        result["meets_target"] = result["pack_ms_median"] < result["target_ms"]  # devtools/pack_meter.py: no profiler
        return result

    def close_inprocess(self):
        if self.inproc is not None:
            self.inproc.close()
            self.inproc = None
        self.ref = None
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()

    # -------------------------------------------------------------- phase 5
    def equivalence(self):
        size = self.profile["equivalence_size"]
        models = self.models["instaflow"]
        ref32 = fp32_reference(models.diffusers_dir, self.device)
        cases = {}

        def expected(batch=1, **kw):
            return to_uint8(ref32.generate(PROMPT, comfy_noise(SEED, batch, size).to(self.device), **kw))

        def record(name, graph, save, want, broken=False):
            images = self.server.images(self.server.run(graph.api(), timeout=300), save.id)
            d = diff(images, want)
            d["pass"] = d["mean_255"] / 255 > WIDE_MARGIN if broken else d["mean_255"] / 255 <= TOLERANCE
            cases[name] = d
            self.report.data["phases"]["equivalence"] = {"cases": cases}
            self.report.write()

        one = expected()
        # Precision floor: the same reference, in ComfyUI's dtypes on this device, vs fp32.
        unet_dtype, vae_dtype = _dtype(self.dtypes.get("unet")), _dtype(self.dtypes.get("vae"))
        if unet_dtype == vae_dtype == torch.float32:
            floor = {"mean_255": 0.0, "max_255": 0, "note": "ComfyUI runs fp32 here: the reference is its own floor"}
        else:
            half = MixedReference(models.diffusers_dir, self.device, unet_dtype, vae_dtype, unet_dtype)
            floor = diff(to_uint8(half.generate(PROMPT, comfy_noise(SEED, 1, size).to(self.device))), one)
            del half
            gc.collect()

        g, save = _loader_graph(models.name, size, 1)
        record("one_step InstaFlowLoader+InstaFlowSampler", g, save, one)
        g, save = _ksampler_graph(models.single_file.name, size)
        record("one_step single file + ModelSamplingInstaFlow + KSampler", g, save, one)
        g, save = _sampler_custom_graph(models.single_file.name, size, steps=4, cfg=1.5)
        record("4 steps cfg 1.5 SamplerCustom", g, save, expected(steps=4, guidance_scale=1.5, negative_prompt=NEGATIVE))
        g, save = _loader_graph(models.name, size, 2)
        record("batch 2", g, save, expected(batch=2))
        for variant in ("flipped_sign", "timestep_reversed", "timestep_unscaled"):
            g, save = _ksampler_graph(models.single_file.name, size, variant=variant)
            record(f"broken: {variant} (must fail)", g, save, one, broken=True)

        from devtools import reference_controlnet

        control = depth_like_image(size)
        image_name = put_input_image(self.server, "device_check_control.png", control)
        cn_ref = reference_controlnet.ReferenceInstaFlowControlNet(ref32, self.models["controlnet"].diffusers_dir)
        cn_ref.controlnet.to(self.device)
        to_tensor = reference_controlnet.control_image_tensor
        reference_controlnet.control_image_tensor = lambda img: to_tensor(img).to(self.device)
        try:
            want = to_uint8(cn_ref.generate(PROMPT, comfy_noise(SEED, 1, size).to(self.device), control))
        finally:
            reference_controlnet.control_image_tensor = to_tensor
        del cn_ref
        g, save = _controlnet_graph(models.name, self.models["controlnet"].name, image_name, size)
        record("ControlNet one step", g, save, want)

        from devtools.reference_lora import merge_kohya_lora

        lora = self.models["loras"].kohya
        move_reference(ref32, "cpu")  # the merge reads the LoRA on the CPU; the reference is not used after this
        merge_kohya_lora(ref32, lora, 0.8, 0.8)
        move_reference(ref32, self.device)
        want = expected()
        g, save = _lora_graph(models.name, lora.name, size)
        record("LoRA (Kohya, 0.8/0.8) one step", g, save, want)
        ok = all(c["pass"] for c in cases.values())
        return {"cases": cases, "size": size, "tolerance_255": TOLERANCE * 255, "wide_margin_255": WIDE_MARGIN * 255,
                "precision_floor": floor, "comfy_dtypes": self.dtypes,
                "floor_within_half_tolerance": floor["mean_255"] <= TOLERANCE * 255 / 2, "all_pass": ok}

    # -------------------------------------------------------------- phase 6
    def options(self):
        results = {"rows": [], "not_run": {}}
        for option in self.args.options:
            for batch in self.profile["option_batches"]:
                needs = (OPTION_SETUP_S.get(option, 0) if self.cuda else 0) + 10
                if self.report.remaining() < needs:
                    results["not_run"][f"{option} batch {batch}"] = f"time budget ({self.report.remaining():.0f} s left)"
                    continue
                try:
                    results["rows"].append(self._option(option, batch))
                except Exception as e:  # noqa: BLE001
                    results["rows"].append({"option": option, "batch": batch, "error": f"{type(e).__name__}: {e}"})
                self.report.data["phases"]["options"] = results
                self.report.write()
        results["kept"] = _winners(results["rows"])
        combo = [o for o in results["kept"] if o != "taesd_decode"]
        results["best"] = []
        for name, chosen in (("best", combo), ("best + TAESD", combo + ["taesd_decode"])):
            if not combo or (name.endswith("TAESD") and "taesd_decode" not in self.args.options):
                continue  # nothing kept: the baseline is the best path
            for batch in self.profile["option_batches"]:
                if self.report.remaining() < 15:
                    results["not_run"][f"{name} batch {batch}"] = "time budget"
                    continue
                try:
                    row = self._option(chosen, batch)
                    row["label"] = name
                    results["best"].append(row)
                except Exception as e:  # noqa: BLE001
                    results["best"].append({"option": chosen, "label": name, "batch": batch, "error": f"{type(e).__name__}: {e}"})
                self.report.data["phases"]["options"] = results
                self.report.write()
        results["targets"] = _targets(self.report.data, results)
        return results

    def _option(self, option, batch):
        chosen = option if isinstance(option, list) else [option]
        base = workflow_prompt(self.object_info(), self.models["instaflow"].name, self.profile["size"], batch)
        variant, via = apply_options(base, chosen)
        save_base, save_variant = node_id(base, "SaveImage"), _output_id(variant)
        p = self.profile
        plain, fast = ServerClient(self.server.url), ServerClient(self.server.url, via=via)
        rows = {"base": [], "base_exec": [], "option": [], "option_exec": []}
        first_ms = None
        seed = 5000 + 100 * self._seeds
        for i in range(p["option_warmup"] + p["option_runs"]):
            # A new seed for every prompt: with a seed the other path already ran, ComfyUI would serve the nodes the
            # two graphs share (sampler, decoder) from its cache.
            e2e_o, exec_o = asyncio.run(fast.run_all([with_seed(variant, seed + 2 * i)], save_variant, batch))[0]
            if first_ms is None:
                first_ms = e2e_o
            e2e_b, exec_b = asyncio.run(plain.run_all([with_seed(base, seed + 2 * i + 1)], save_base, batch))[0]
            if i >= p["option_warmup"]:
                for k, v in zip(rows, (e2e_b, exec_b, e2e_o, exec_o)):
                    rows[k].append(v)
        self._seeds += 1
        # The image check: the baseline at the option's last seed (its shared nodes may come from the cache).
        asyncio.run(plain.run_all([with_seed(base, seed + 2 * i)], save_base, batch))
        diffs = diff(decode_pngs(fast.last_images), decode_pngs(plain.last_images))
        m = {k: median(v) for k, v in rows.items()}
        state = _speed_state(self.server)
        return {"option": "+".join(chosen), "batch": batch, "base_ms": round(m["base"], 2), "base_exec_ms": round(m["base_exec"], 2),
                "option_ms": round(m["option"], 2), "option_exec_ms": round(m["option_exec"], 2),
                "speedup": round(m["base"] / m["option"], 3), "images_per_s": round(batch * 1000 / m["option"], 2),
                "first_call_ms": round(first_ms), "image_vs_base": diffs,
                "exact": diffs.get("max_255") == 0, "equivalent": diffs.get("mean_255", 99) <= SAME_IMAGE_255,
                "speed_state": state if any("graph" in c for c in chosen) else None}

    # -------------------------------------------------------------- all
    def run(self):
        r = self.report
        r.data["environment"] = self.environment()
        r.write()
        try:
            if r.phase("models", self.build_models) is None:
                return 1
            if r.phase("start", self.start) is None:
                return 1
            chosen = set(self.args.phases)
            if "bench" in chosen:
                r.phase("bench", self.bench, needs_s=20)
            if self.cuda and "unet_variants" in chosen:
                r.phase("unet_variants", self.unet_variants, needs_s=20)
            if "pack_cost" in chosen:
                r.phase("pack_cost", self.pack_cost, needs_s=10)
            self.close_inprocess()
            if "equivalence" in chosen:
                r.phase("equivalence", self.equivalence, needs_s=30)
            self.close_inprocess()  # frees the fp32 reference too (gc, CUDA cache)
            if "live_output" in chosen:
                r.phase("live_output", lambda: live_phases.live_output(self), needs_s=20)
            if "cuda_graph_node" in chosen:
                r.phase("cuda_graph_node", lambda: live_phases.cuda_graph_node(self), needs_s=20)
            if "options" in chosen:
                r.phase("options", self.options, needs_s=20)
        finally:
            self.close_inprocess()
            if self.server is not None:
                log = self.server.log_tail(400)
                self.server.stop()
                (self.args.out / "server_log_tail.txt").write_text(log)
            r.data["done"] = True
            r.write()
            shutil.rmtree(self.work, ignore_errors=True)
        print((self.args.out / "device_check.md").read_text())
        equivalence = r.data["phases"].get("equivalence") or {}
        if r.data["errors"] or ("equivalence" in self.args.phases and not equivalence.get("all_pass", False)):
            print("[device-check] FAILED: see the errors and the equivalence table above", flush=True)
            return 2
        return 0


# ------------------------------------------------------------------------------------------ graphs
def _loader_graph(name, size, batch):
    g = Graph()
    loader = g.add("InstaFlowLoader", ckpt_name=name)
    sampled = g.add("InstaFlowSampler", model=loader[0], seed=SEED, steps=1, cfg=1.0, positive=encode(g, loader[1], PROMPT)[0],
                    latent_image=g.add("EmptyLatentImage", width=size, height=size, batch_size=batch)[0], denoise=1.0)
    return g, decode_and_save(g, sampled[0], loader[2], f"device_loader_b{batch}")


def _ksampler_graph(single_file, size, variant=None):
    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=single_file)
    model = g.add("ModelSamplingInstaFlow", model=ckpt[0])
    if variant is not None:
        model = g.add("InstaFlowBrokenVariant", model=model[0], variant=variant)
    sampled = g.add("KSampler", model=model[0], seed=SEED, steps=1, cfg=1.0, sampler_name="rectified_flow", scheduler="instaflow",
                    positive=encode(g, ckpt[1], PROMPT)[0], negative=encode(g, ckpt[1], "")[0],
                    latent_image=g.add("EmptyLatentImage", width=size, height=size, batch_size=1)[0], denoise=1.0)
    return g, decode_and_save(g, sampled[0], ckpt[2], f"device_ksampler_{variant or 'ok'}")


def _sampler_custom_graph(single_file, size, steps, cfg):
    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=single_file)
    model = g.add("ModelSamplingInstaFlow", model=ckpt[0])
    sampled = g.add("SamplerCustom", model=model[0], add_noise=True, noise_seed=SEED, cfg=cfg,
                    positive=encode(g, ckpt[1], PROMPT)[0], negative=encode(g, ckpt[1], NEGATIVE)[0],
                    sampler=g.add("KSamplerSelect", sampler_name="rectified_flow")[0],
                    sigmas=g.add("InstaFlowScheduler", model=model[0], steps=steps, denoise=1.0)[0],
                    latent_image=g.add("EmptyLatentImage", width=size, height=size, batch_size=1)[0])
    return g, decode_and_save(g, sampled[0], ckpt[2], "device_sampler_custom")


def _controlnet_graph(name, controlnet, image, size):
    g = Graph()
    loader = g.add("InstaFlowLoader", ckpt_name=name)
    applied = g.add("ControlNetApplyAdvanced", positive=encode(g, loader[1], PROMPT)[0], negative=encode(g, loader[1], "")[0],
                    control_net=g.add("ControlNetLoader", control_net_name=controlnet)[0],
                    image=g.add("LoadImage", image=image)[0], strength=1.0, start_percent=0.0, end_percent=1.0)
    sampled = g.add("InstaFlowSampler", model=loader[0], seed=SEED, steps=1, cfg=1.0, positive=applied[0], negative=applied[1],
                    latent_image=g.add("EmptyLatentImage", width=size, height=size, batch_size=1)[0], denoise=1.0)
    return g, decode_and_save(g, sampled[0], loader[2], "device_controlnet")


def _lora_graph(name, lora, size):
    g = Graph()
    loader = g.add("InstaFlowLoader", ckpt_name=name)
    lo = g.add("LoraLoader", model=loader[0], clip=loader[1], lora_name=lora, strength_model=0.8, strength_clip=0.8)
    sampled = g.add("InstaFlowSampler", model=lo[0], seed=SEED, steps=1, cfg=1.0, positive=encode(g, lo[1], PROMPT)[0],
                    latent_image=g.add("EmptyLatentImage", width=size, height=size, batch_size=1)[0], denoise=1.0)
    return g, decode_and_save(g, sampled[0], loader[2], "device_lora")


def apply_options(prompt: dict, options) -> tuple[dict, str]:
    """A copy of the one-step API prompt with the speed options applied; returns (prompt, how images arrive)."""
    p = json.loads(json.dumps(prompt))
    sampler, decode, save = node_id(p, "InstaFlowSampler"), node_id(p, "VAEDecode"), node_id(p, "SaveImage")
    next_id = max(int(k) for k in p) + 1

    def add(class_type, **inputs):
        nonlocal next_id
        p[str(next_id)] = {"class_type": class_type, "inputs": inputs}
        next_id += 1
        return str(next_id - 1)

    via = "view"
    for option in options:
        if option == "ws_output":  # ComfyUI's SaveImageWebsocket: PNG (compress level 1) over the websocket, no disk
            p[save] = {"class_type": "SaveImageWebsocket", "inputs": {"images": p[save]["inputs"]["images"]}}
            via = "ws"
        elif option == "taesd_decode":
            p[decode]["inputs"]["vae"] = [add("VAELoader", vae_name="taesd"), 0]
        elif option in ("channels_last", "cuda_graph", "compile_cudagraphs", "compile_inductor"):
            model = p[sampler]["inputs"]["model"]
            if option == "channels_last":
                new = add("InstaFlowBenchChannelsLast", model=model)
            elif option == "cuda_graph":
                new = add("InstaFlowBenchCudaGraph", model=model)
            else:
                new = add("TorchCompileModel", model=model, backend=option.split("_", 1)[1])
            p[sampler]["inputs"]["model"] = [new, 0]
        else:
            raise ValueError(f"unknown option {option}")
    return p, via


def _output_id(prompt):
    return next(k for k, v in prompt.items() if v["class_type"] in ("SaveImage", "SaveImageWebsocket"))


def _speed_state(server):
    try:
        return server.get_json("/instaflow_bench/speed_state")
    except Exception as e:  # noqa: BLE001
        return {"error": str(e)}


def _winners(rows):
    """Options kept: at least 3% faster than the baseline at every batch measured, keeping the image (mean
    change <= SAME_IMAGE_255; TAESD is kept apart: a different, approximate decoder, not the SD VAE)."""
    by_option = {}
    for row in rows:
        if "error" in row:
            by_option.setdefault(row["option"], []).append(False)
            continue
        fast = row["speedup"] >= 1.03
        same = row["equivalent"] or row["option"] == "taesd_decode"
        by_option.setdefault(row["option"], []).append(fast and same)
    kept = [o for o, oks in by_option.items() if oks and all(oks)]
    unet = [o for o in kept if o in ("channels_last", "cuda_graph", "compile_cudagraphs", "compile_inductor")]
    if len(unet) > 1:  # these replace the same UNet call: keep the fastest at the largest batch
        best = max(unet, key=lambda o: max((r for r in rows if r.get("option") == o and "error" not in r),
                                           key=lambda r: r["batch"])["speedup"])
        kept = [o for o in kept if o not in unet or o == best]
    return kept


def _targets(data, options):
    bench = {r["batch"]: r for r in (data["phases"].get("bench") or {}).get("rows", [])}
    out = {"batch1_ms_target": TARGETS["batch1_ms"], "batch16_images_per_s_target": TARGETS["batch16_images_per_s"]}
    if 1 in bench:
        out["baseline_batch1_ms"] = bench[1]["server_ms"]
    if 16 in bench:
        out["baseline_batch16_images_per_s"] = bench[16]["images_per_s"]
    for row in options.get("best", []):
        if "error" in row:
            continue
        key = row["label"].replace(" ", "_").replace("+", "plus")
        if row["batch"] == 1:
            out[f"{key}_batch1_ms"] = row["option_ms"]
        if row["batch"] == 16:
            out[f"{key}_batch16_images_per_s"] = row["images_per_s"]
    return out


# ------------------------------------------------------------------------------------------ helpers
def _reference_components(ref, noise):
    embeds = ref.encode_prompt([PROMPT] * noise.shape[0])
    latents = noise.to(ref.device, ref.dtype)
    t0 = time.perf_counter()
    v = ref.velocity(latents, 1000.0, embeds)
    unet = ms_since(t0)
    t0 = time.perf_counter()
    ref.decode(latents + v)
    return unet, ms_since(t0)


def _png_encode_ms(pngs, batch):
    """ms to encode the batch as SaveImage does (PNG, compress level 4) and as the websocket output does (1)."""
    if not pngs:
        return float("nan"), float("nan")
    image = Image.open(io.BytesIO(pngs[0])).convert("RGB")
    out = []
    for level in (4, 1):
        t0 = time.perf_counter()
        for _ in range(batch):
            image.save(io.BytesIO(), format="PNG", compress_level=level)
        out.append((time.perf_counter() - t0) * 1000)
    return out[0], out[1]


def _dtype(name):
    value = getattr(torch, str(name), None)
    return value if isinstance(value, torch.dtype) else torch.float32


def _ref_dtypes(ref):
    return {"unet": str(ref.unet.dtype), "vae": str(ref.vae.dtype), "text_encoder": str(ref.text_encoder.dtype)}


def _comfy_version():
    version_file = comfyui_path() / "comfyui_version.py"
    return version_file.read_text().split('"')[1] if version_file.exists() else "unknown"


def _cpu_name():
    try:
        return next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


# ------------------------------------------------------------------------------------------ report
def _fmt(v, digits=1):
    if isinstance(v, float):
        return "n/a" if v != v else f"{v:.{digits}f}"
    return "n/a" if v is None else str(v)


def markdown(d) -> str:
    env = d.get("environment", {})
    ph = d.get("phases", {})
    lines = ["# InstaFlow device check", "",
             f"Device: **{env.get('device', '?')}**; torch {env.get('torch')}, CUDA {env.get('cuda')}, ComfyUI {env.get('comfyui')}, "
             f"diffusers {env.get('diffusers')}, transformers {env.get('transformers')}, python {env.get('python')}; "
             f"profile `{env.get('profile')}` ({env.get('stand_in')} random SD1.5); {env.get('date')}; {d.get('elapsed_s')} s.", ""]
    start = ph.get("start")
    if start:
        lines += [f"Cold start: server {start['server_start_s']} s to answer, first prompt {start['server_first_prompt_ms']} ms; "
                  f"in-process worker {start['inprocess_start_s']} s, first prompt {start['inprocess_first_prompt_ms']} ms. "
                  f"ComfyUI's dtypes: UNet {start['comfy_dtypes'].get('unet')}, VAE {start['comfy_dtypes'].get('vae')}.", ""]
    bench = ph.get("bench")
    if bench and bench.get("rows"):
        lines += ["## One step, through ComfyUI vs the reference (ms, medians)", "",
                  "| size | batch | server e2e | server exec | in-process | diffusers ref | e2e/ref | floor UNet+VAE | CLIP | UNet | VAE "
                  "| ref UNet | ref VAE | PNG enc (lvl 4) | HTTP+queue+fetch | executor+PNG+save | img/s |",
                  "|" + "---|" * 17]
        for r in bench["rows"]:
            lines.append(f"| {r['size']} | {r['batch']} | {_fmt(r['server_ms'])} | {_fmt(r['server_exec_ms'])} | {_fmt(r['inprocess_ms'])} "
                         f"| {_fmt(r['reference_ms'])} | {_fmt(r['ratio_vs_reference'], 3)} | {_fmt(r['floor_ms'])} | {_fmt(r['c_clip_ms'])} "
                         f"| {_fmt(r['c_unet_ms'])} | {_fmt(r['c_vae_ms'])} | {_fmt(r['r_unet_ms'])} | {_fmt(r['r_vae_ms'])} "
                         f"| {_fmt(r['png4_ms'])} | {_fmt(r['http_queue_fetch_ms'])} | {_fmt(r['executor_png_save_ms'])} "
                         f"| {_fmt(r['images_per_s'], 2)} |")
        lines += ["", f"Reference dtypes: {bench.get('reference_dtypes')}.", ""]
    uv = ph.get("unet_variants")
    if uv:
        lines += ["## UNet call alone: eager, channels_last, CUDA graph (ms)", "",
                  "| batch | eager | channels_last | max abs diff | CUDA graph | max abs diff |", "|---|---|---|---|---|---|"]
        for r in uv:
            lines.append(f"| {r['batch']} | {_fmt(r.get('unet_ms'), 2)} | {_fmt(r.get('unet_channels_last_ms'), 2)} "
                         f"| {_fmt(r.get('unet_channels_last_max_abs_diff'), 4)} | {_fmt(r.get('unet_cuda_graph_ms', r.get('unet_cuda_graph_error')), 2)} "
                         f"| {_fmt(r.get('unet_cuda_graph_max_abs_diff'), 4)} |")
        lines.append("")
    pc = ph.get("pack_cost")
    if pc:
        lines += ["## Pack code per warm prompt", "",
                  f"With {pc['clutter_files']} files in the model folders, timed at the pack's entry points (devtools/pack_meter.py, "
                  f"no profiler): **median {pc['pack_ms_median']:.3f} ms** of {[round(v, 3) for v in pc['pack_ms']]}; "
                  f"target < {pc['target_ms']} ms: {'met' if pc['meets_target'] else 'NOT met'}. By entry point (ms, median "
                  f"prompt): {pc['pack_ms_by_entry']}.", "",
                  f"Under cProfile (slows every call): {pc['total_ms']:.3f} ms: {pc['pack_own_ms']:.3f} ms "
                  f"in the pack's own code, {pc['comfy_helpers_ms']:.3f} ms in ComfyUI helpers it calls, {pc['sync_ms']:.3f} ms "
                  f"in {pc['syncs_per_prompt']:.0f} explicit device syncs (model calls made synchronous while profiling); "
                  f"A whole warm prompt took {pc['prompt_ms']:.1f} ms "
                  f"({pc['prompt_profiled_ms']:.1f} ms under the profiler). Own time by function (ms): {pc['pack_own_by_function_ms']}", ""]
    eq = ph.get("equivalence")
    if eq and eq.get("cases"):
        lines += ["## Equivalence on this device vs the fp32 reference", ""]
        if "tolerance_255" in eq:
            lines += [f"Tolerance: mean |difference| <= {eq['tolerance_255']:.1f}/255 (the CPU suite's); broken conventions "
                      f"must exceed {eq['wide_margin_255']:.1f}/255. Precision floor (the reference itself in ComfyUI's dtypes "
                      f"{eq['comfy_dtypes']} vs fp32): mean {eq['precision_floor']['mean_255']}/255, max "
                      f"{eq['precision_floor']['max_255']}/255. Size {eq['size']}x{eq['size']}.", ""]
        lines += ["| case | mean /255 | max /255 | pass |", "|---|---|---|---|"]
        for name, c in eq["cases"].items():
            lines.append(f"| {name} | {c['mean_255']} | {c['max_255']} | {'yes' if c['pass'] else 'NO'} |")
        lines.append("")
    lo = ph.get("live_output")
    if lo and lo.get("rows"):
        lines += ["## Live Preview (fast) vs SaveImage through the server (ms, medians)", "",
                  "| batch | POST -> preview bytes | POST -> execution end | SaveImage: POST -> PNGs fetched | ratio | JPEG bytes |",
                  "|---|---|---|---|---|---|"]
        for r in lo["rows"]:
            lines.append(f"| {r['batch']} | {_fmt(r['live_post_to_bytes_ms'])} | {_fmt(r['live_post_to_done_ms'])} "
                         f"| {_fmt(r['saveimage_post_to_pngs_ms'])} | {_fmt(r['ratio_live_vs_saveimage'], 3)} | {r['jpeg_bytes']} |")
        lines += ["", f"Encoder: {lo.get('encoders')}.", ""]
    cg = ph.get("cuda_graph_node")
    if cg and cg.get("rows"):
        lines += ["## InstaFlow CUDA Graph node vs eager, one-step workflow (ms, medians, same seeds)", "",
                  "| batch | eager | graph | speed-up | images identical | cache |", "|---|---|---|---|---|---|"]
        for r in cg["rows"]:
            lines.append(f"| {r['batch']} | {_fmt(r['eager_ms'])} | {_fmt(r['graph_ms'])} | {_fmt(r['speedup'], 3)} "
                         f"| {r['images_identical']} | {r['cache']} |")
        lines.append("")
    op = ph.get("options")
    if op and (op.get("rows") or op.get("best")):
        lines += ["## Speed options through the server (alternating rounds with the baseline, same seeds)", "",
                  "| option | batch | baseline ms | option ms | speed-up | img/s | first call ms | image vs baseline (mean/max /255) |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in op.get("rows", []) + op.get("best", []):
            if "error" in r:
                lines.append(f"| {r.get('label', r['option'])} | {r['batch']} | error: {r['error'][:120]} | | | | | |")
                continue
            iv = r["image_vs_base"]
            lines.append(f"| {r.get('label', r['option'])} | {r['batch']} | {_fmt(r['base_ms'])} | {_fmt(r['option_ms'])} "
                         f"| {_fmt(r['speedup'], 2)} | {_fmt(r['images_per_s'], 1)} | {r['first_call_ms']} "
                         f"| {iv.get('mean_255')}/{iv.get('max_255')} |")
        lines += ["", f"Kept (faster by 3% or more at every batch, image moved by <= {SAME_IMAGE_255}/255 on average; "
                  f"TAESD is an approximate decoder): {op.get('kept')}.",
                  f"Targets: {op.get('targets')}.", ""]
        if op.get("not_run"):
            lines += [f"Not run: {op['not_run']}", ""]
    if d.get("skipped"):
        lines += ["## Skipped", ""] + [f"- {k}: {v}" for k, v in d["skipped"].items()] + [""]
    if d.get("errors"):
        lines += ["## Errors", ""] + [f"- {k}: {v.splitlines()[0]}" for k, v in d["errors"].items()] + [""]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or REPO / "device_out"))
    p.add_argument("--profile", choices=sorted(PROFILES), default="device" if torch.cuda.is_available() else "dry")
    p.add_argument("--budget-s", type=float, default=420.0, help="stop starting phases after this many seconds")
    p.add_argument("--phases", nargs="*", default=PHASES, choices=PHASES,
                   help="the phases after building the models and starting ComfyUI (default: all), e.g. for a "
                        "second device call that measures only some options")
    p.add_argument("--options", nargs="*", default=OPTIONS, choices=OPTIONS)
    p.add_argument("--comfy-args", type=shlex.split, default=[],
                   help='extra ComfyUI flags for the server and the worker, e.g. --comfy-args="--fast"')
    args = p.parse_args(argv)
    return DeviceCheck(args).run()


if __name__ == "__main__":
    sys.exit(main())
