"""Import stand-in for PyAV on the GPU machine, which lacks it (its wheel alone is 36 MB, over half of
what a device call may carry). ComfyUI 0.3.75 imports `av` when it starts, for its video and audio
nodes; the device check uses none of them. Any use raises. run_on_device.sh puts this folder on the
path only when `import av` fails there."""


class _Missing:
    def __init__(self, *args, **kwargs):
        raise ImportError("PyAV is not installed on this machine (bench/device/stubs/av stands in for the import only)")


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Missing


def open(*args, **kwargs):  # noqa: A001 - the name PyAV uses
    _Missing()
