"""`python <path-to-pack> convert in.json out.json [--preset 2rf]`: convert an API-format workflow."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workflow_conversion.convert_api import ConversionError, convert_api_workflow, load_rules


def main(argv: list[str] | None = None) -> int:
    rules = load_rules()
    parser = argparse.ArgumentParser(prog="python <path-to-comfyui-instaflow>",
                                     description="Tools of the InstaFlow node pack that run without ComfyUI.")
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser("convert", help="convert an API-format SD1.5 workflow to InstaFlow, 2-RF or PeRFlow",
                                  description="Inserts the preset's model-sampling node (ModelSamplingInstaFlow, "
                                              "ModelSamplingPeRFlow) before each SD1.5 sampler and sets its sampler, "
                                              "scheduler, steps and cfg (rules: web/instaflow_conversion_rules.json).")
    convert.add_argument("input", type=Path, help="API-format workflow (File > Export (API) in ComfyUI)")
    convert.add_argument("output", type=Path, help="where to write the converted workflow ('-' for stdout)")
    convert.add_argument("--preset", choices=sorted(rules["presets"]), default=rules["default_preset"],
                         help="; ".join(f"{k}: {v['label']}" for k, v in rules["presets"].items()))
    args = parser.parse_args(argv)

    try:
        workflow = json.loads(args.input.read_text(encoding="utf-8"))
        converted, report = convert_api_workflow(workflow, args.preset, rules)
    except (OSError, json.JSONDecodeError, ConversionError) as e:
        print(f"error: {args.input}: {e}", file=sys.stderr)
        return 2
    text = json.dumps(converted, indent=2) + "\n"
    if str(args.output) == "-":
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    for line in report.lines():
        print(line, file=sys.stderr)
    if not report.converted:
        print("error: no SD1.5 sampler was converted", file=sys.stderr)
        return 1
    return 0
