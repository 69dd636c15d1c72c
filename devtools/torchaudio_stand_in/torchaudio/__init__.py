"""Import stand-in for torchaudio (tests only): ComfyUI 0.33.0 imports it at start-up, PyPI has no wheel
for the torch the tests pin, and SD1.5 graphs never use audio. Any use raises ImportError naming why."""


def _missing(name):
    raise ImportError(f"torchaudio.{name}: the test environment has a torchaudio import stand-in only "
                      "(devtools/comfyui_source.py); audio nodes cannot run here")


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    _missing(name)
