"""torchaudio.transforms stand-in (see __init__.py)."""
from . import _missing


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    _missing(f"transforms.{name}")
