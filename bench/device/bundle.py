"""The folder that travels to the GPU machine with the repository: `.device/` (git-ignored).

    python -m bench.device.bundle prepare [--dest .device]   here, once (needs PyPI the first time)
    python -m bench.device.bundle install TARGET [--dest .device]   there (and in the CPU dry run)
    python -m bench.device.bundle unpack WHERE [--dest .device]     there: the ComfyUI tree, prints its path
    python -m bench.device.bundle size [--dest .device]      what a device call would carry

`prepare` puts in it what the GPU machine lacks (bench/device/device_packages.txt lists what it has):
- wheels/: the pinned wheels of bench/device/wheels.txt, for CPython 3.12 on manylinux x86_64;
- comfyui-<version>.tar.gz: the ComfyUI tree the tests use (devtools/comfyui_source.py), without
  its tests and the tokenizer data of non-SD1.5 text encoders (gzip: Python unpacks it anywhere);
- manifest.json: what is in it.
It then checks that the repository's files plus `.device` stay under the device tool's 64 MiB.
`install` pip-installs the wheels that this interpreter can use into TARGET (no index, no deps) and
unpacks the ComfyUI tree next to it (`unpack`), printing the tree's path.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_DEST = REPO / ".device"
CARRY_LIMIT = 64 * 2**20  # the device tool's limit on the working tree plus carried paths
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
# Left out of the ComfyUI tree: its own tests, and tokenizer data of text encoders other than SD1.5's CLIP
# (comfy/sd1_tokenizer stays), read only when such a model loads.
_EXCLUDED_DIRS = {"tests", "tests-unit", "__pycache__", ".git", ".github"}
_EXCLUDED_TOKENIZERS = re.compile(r"^comfy/text_encoders/[^/]*_tokenizer/")  # folders only


def requirements() -> list[str]:
    lines = (HERE / "wheels.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _wheel_for(requirement: str, folder: Path) -> Path | None:
    name, version = requirement.split("==")
    for wheel in folder.glob("*.whl"):
        parts = wheel.name.split("-")
        if _norm(parts[0]) == _norm(name) and parts[1] == version:
            return wheel
    return None


def download_wheels(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    wanted = requirements()
    missing = [r for r in wanted if _wheel_for(r, folder) is None]
    if missing:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
               "--implementation", "cp", *[a for p in PLATFORMS for a in ("--platform", p)], "-d", str(folder), *missing]
        subprocess.run(cmd, check=True)
    wheels = [_wheel_for(r, folder) for r in wanted]
    if None in wheels:
        raise RuntimeError(f"pip did not download {[r for r, w in zip(wanted, wheels) if w is None]}")
    for stale in set(folder.glob("*.whl")) - set(wheels):  # one version of each: two would stop the install
        stale.unlink()
    return wheels


# The device check's package list (device_packages.txt, wheels.txt) was made for this tree; ComfyUI 0.33.0
# needs more (comfy-kitchen, comfy-aimdo, PyAV 16) than the GPU machine is known to have.
DEVICE_COMFYUI = "0.3.75"


def _comfyui_tree() -> Path:
    os.environ.setdefault("INSTAFLOW_COMFYUI", DEVICE_COMFYUI)
    from devtools.comfyui_source import comfyui_path

    return comfyui_path()


def _comfyui_version(tree: Path) -> str:
    version_file = tree / "comfyui_version.py"
    return version_file.read_text().split('"')[1] if version_file.exists() else "unknown"


def _included(rel: str) -> bool:
    parts = rel.split("/")
    if any(p in _EXCLUDED_DIRS for p in parts) or rel.endswith((".pyc", ".pyo")):
        return False
    if parts[0] == "extra_model_paths.yaml":
        return False
    return not _EXCLUDED_TOKENIZERS.match(rel)


def pack_comfyui(dest: Path) -> Path:
    tree = _comfyui_tree()
    name = f"comfyui-{_comfyui_version(tree)}"
    archive = dest / f"{name}.tar.gz"
    if archive.exists():
        return archive
    for old in dest.glob("comfyui-*.tar.*"):
        old.unlink()
    files = sorted(str(p.relative_to(tree)).replace(os.sep, "/") for p in tree.rglob("*") if p.is_file() and not p.is_symlink())
    partial = archive.with_suffix(".partial")
    with tarfile.open(partial, "w:gz", compresslevel=9) as tar:
        for rel in files:
            if _included(rel):
                info = tar.gettarinfo(str(tree / rel), arcname=f"{name}/{rel}")
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                with open(tree / rel, "rb") as handle:
                    tar.addfile(info, handle)
    partial.rename(archive)
    return archive


def travelling_bytes(dest: Path) -> tuple[int, int]:
    """(bytes of the repository's tracked and untracked-not-ignored files, bytes under dest)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True).stdout.decode().split("\0")
    repo_bytes = sum((REPO / p).stat().st_size for p in listed if p and (REPO / p).is_file())
    dest_bytes = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    return repo_bytes, dest_bytes


def prepare(dest: Path) -> dict:
    dest.mkdir(parents=True, exist_ok=True)
    wheels = download_wheels(dest / "wheels")
    archive = pack_comfyui(dest)
    manifest = {"wheels": {w.name: w.stat().st_size for w in wheels}, "comfyui": archive.name,
                "comfyui_bytes": archive.stat().st_size}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    repo_bytes, dest_bytes = travelling_bytes(dest)
    manifest.update(repo_bytes=repo_bytes, bundle_bytes=dest_bytes, total_bytes=repo_bytes + dest_bytes,
                    limit_bytes=CARRY_LIMIT)
    print(f"{dest}: {len(wheels)} wheels, {archive.name}; repository {repo_bytes / 2**20:.1f} MiB + bundle "
          f"{dest_bytes / 2**20:.1f} MiB = {(repo_bytes + dest_bytes) / 2**20:.1f} MiB of the 64 MiB a call may carry")
    if repo_bytes + dest_bytes > CARRY_LIMIT:
        raise SystemExit("too large for one device call: shrink the bundle (bench/device/wheels.txt)")
    return manifest


def _supported_tags() -> set[str]:
    try:
        from packaging.tags import sys_tags
    except ImportError:  # the venv may lack packaging; pip vendors it
        from pip._vendor.packaging.tags import sys_tags
    return {str(tag) for tag in sys_tags()}


def _wheel_tags(wheel: Path) -> set[str]:
    python, abi, platform = wheel.name[:-len(".whl")].split("-")[-3:]
    return {f"{p}-{a}-{pl}" for p in python.split(".") for a in abi.split(".") for pl in platform.split(".")}


def install(target: Path, dest: Path) -> list[str]:
    """Installs every wheel this interpreter supports into target; returns the names of those it cannot use."""
    wheels = sorted((dest / "wheels").glob("*.whl"))
    if not wheels:
        raise SystemExit(f"no wheels in {dest / 'wheels'}: run `python -m bench.device.bundle prepare` first")
    supported = _supported_tags()
    usable = [w for w in wheels if _wheel_tags(w) & supported]
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--no-cache-dir", "--upgrade", "--disable-pip-version-check", "--target", str(target),
                    *map(str, usable)], check=True)
    return [w.name.split("-")[0] for w in wheels if w not in usable]


def unpack(where: Path, dest: Path) -> Path:
    """Unpacks the carried ComfyUI tree under `where` (once); returns its path."""
    archive = next(dest.glob("comfyui-*.tar.gz"), None)
    if archive is None:
        raise SystemExit(f"no ComfyUI tree in {dest}: run `python -m bench.device.bundle prepare` first")
    tree = where / archive.name[:-len(".tar.gz")]
    if not (tree / "main.py").is_file():
        where.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(where, filter="data")
            else:
                tar.extractall(where)
    return tree


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["prepare", "install", "unpack", "size"])
    p.add_argument("target", nargs="?", type=Path, help="install: the folder for the wheels; unpack: for the tree")
    p.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    args = p.parse_args(argv)
    if args.command == "prepare":
        prepare(args.dest)
    elif args.command == "install":
        if args.target is None:
            p.error("install needs TARGET")
        skipped = install(args.target, args.dest)
        if skipped:
            print("not usable by this interpreter: " + ",".join(skipped), file=sys.stderr)
    elif args.command == "unpack":
        if args.target is None:
            p.error("unpack needs TARGET")
        print(unpack(args.target, args.dest))
    else:
        repo_bytes, dest_bytes = travelling_bytes(args.dest)
        print(f"repository {repo_bytes / 2**20:.1f} MiB + {args.dest.name} {dest_bytes / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
