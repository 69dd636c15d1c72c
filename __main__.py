"""Command-line tools of the pack that need no ComfyUI: `python <path-to-pack> convert in.json out.json`.

`python <dir>` runs this file as a script with <dir> first on sys.path, so the package's relative
imports (and its __init__.py, which needs ComfyUI) are not used here.
"""
import sys

from workflow_conversion.cli import main

sys.exit(main())
