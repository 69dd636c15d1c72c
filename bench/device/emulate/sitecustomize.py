"""CPU dry run only: this interpreter sees the GPU machine's Python packages and nothing more.

Python imports this module at start-up when its folder is on PYTHONPATH (the dry run puts it there, so
every process of the dry run, subprocesses included, gets it). When INSTAFLOW_DEVICE_SITE names a
folder made by bench/device/emulate_site.py, the interpreter's own site-packages is replaced on
sys.path by that folder, which holds links to the distributions that the GPU machine's image has
(bench/device/device_packages.txt) and to nothing else: an import of anything else fails as it would
there, unless the bundle's wheels (installed in a folder on PYTHONPATH) provide it.
"""
import os
import sys


def _swap_site_packages():
    filtered = os.environ.get("INSTAFLOW_DEVICE_SITE")
    if not filtered:
        return
    import site

    own = {os.path.realpath(p) for p in site.getsitepackages()}
    sys.path[:] = [filtered if os.path.realpath(p) in own else p for p in sys.path]
    sys.path[:] = list(dict.fromkeys(sys.path))


_swap_site_packages()
