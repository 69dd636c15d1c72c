"""The pack's layers run one way: torch-only math -> ComfyUI glue -> thin nodes."""
import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TORCH_ONLY = ["flow_math"]
SHIPPED = ["__init__.py", "flow_math", "comfyui_glue", "live_preview", "acceleration", "model_loaders", "training", "nodes", "workflow_conversion", "web", "docs", "README.md"]


def _python_files(part: str):
    path = REPO / part
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of what `path` imports, relative imports resolved against the pack root."""
    package = path.relative_to(REPO).parent.parts
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            module = ".".join(base + tuple((node.module or "").split("."))).strip(".")
            names.add(module)
    return names


def test_model_loaders_import_nothing_from_the_glue_or_nodes():
    for path in _python_files("model_loaders"):
        bad = {m for m in _imported_modules(path) if m.split(".")[0] in {"comfyui_glue", "nodes"}}
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_glue_imports_nothing_from_nodes():
    for path in _python_files("comfyui_glue"):
        bad = {m for m in _imported_modules(path) if m.split(".")[0] == "nodes"}
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_training_imports_nothing_from_nodes():
    for path in _python_files("training"):
        bad = {m for m in _imported_modules(path) if m.split(".")[0] == "nodes"}
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_model_loaders_and_glue_import_nothing_from_training():
    for part in ("model_loaders", "comfyui_glue"):
        for path in _python_files(part):
            bad = {m for m in _imported_modules(path) if m.split(".")[0] == "training"}
            assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_math_modules_import_only_torch_and_each_other():
    allowed_roots = {"torch", "math", "__future__", "tqdm", "dataclasses", "importlib", "pkgutil", "typing",
                     "collections", *TORCH_ONLY}
    for part in TORCH_ONLY:
        for path in _python_files(part):
            for module in _imported_modules(path):
                assert module.split(".")[0] in allowed_roots, f"{path.relative_to(REPO)} imports {module}"


def test_math_modules_load_with_comfy_blocked():
    code = ("import sys; sys.modules['comfy'] = None; sys.modules['folder_paths'] = None\n"
            "import flow_math.flows, flow_math.flows.instaflow, flow_math.flows.perflow, flow_math.euler, flow_math.slerp\n"
            "import flow_math.conditioning_interpolation, flow_math.memory_estimate, flow_math.inversion\n"
            "import flow_math.flow_objectives\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_shipped_files_cite_no_document_outside_the_repository():
    for part in SHIPPED:
        path = REPO / part
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            text = file.read_text(errors="ignore")
            assert "REFERENCE.md" not in text and "shared/" not in text, f"{file.relative_to(REPO)} cites an outside document"


DEV_FOLDERS = ["devtools", "bench", "scripts", "tests"]


def test_pack_code_imports_no_dev_tools():
    for part in SHIPPED:
        for path in [p for p in _python_files(part) if p.suffix == ".py"]:
            bad = {m for m in _imported_modules(path) if m.split(".")[0] in DEV_FOLDERS}
            assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_tests_import_no_benchmark_code():
    # what both need lives in devtools/, which both import as a package
    for path in _python_files("tests") + _python_files("devtools"):
        bad = {m for m in _imported_modules(path) if m.split(".")[0] == "bench" and m != "bench.device.bench_nodes"}
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_dev_tools_put_no_repository_folder_on_the_import_path():
    # They run as modules of the repository (pytest's pythonpath, `python -m bench.x`), so none edits sys.path to
    # reach another folder of it; the only edits left put a ComfyUI tree first (ComfyUI is not an installed package).
    repository_words = ("REPO", "HERE", "__file__", '"tests"', '"bench"', '"devtools"')
    for part in DEV_FOLDERS:
        for path in _python_files(part):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"sys\.path(\.insert|\.append|\[)", line) and any(word in line for word in repository_words):
                    raise AssertionError(f"{path.relative_to(REPO)}:{number} puts a repository folder on sys.path: {line.strip()}")
