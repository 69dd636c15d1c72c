"""Checks that numbers and latents are finite, with messages that name the value. Torch only.

A NaN or infinite value anywhere in a latent decodes to a black (or garbage) image that ComfyUI
would save without complaint; these checks turn it into an error that says where it came from.
"""
from __future__ import annotations

import math

import torch


class NonFiniteError(FloatingPointError):
    """A NaN or infinite number or latent; the message names it."""


def require_finite_number(name: str, value: float, who: str) -> None:
    if not math.isfinite(value):
        raise NonFiniteError(f"{who}: {name} must be a finite number, got {value}")


def non_finite_counts(x: torch.Tensor) -> tuple[int, int]:
    """(number of NaN, number of +-inf) values in x."""
    return int(torch.isnan(x).sum()), int(torch.isinf(x).sum())


_HALF = (torch.float16, torch.bfloat16)


def describe_non_finite(x: torch.Tensor) -> str | None:
    """None when x is all finite (one reduction, one device sync), else e.g. '12 NaN and 0 infinite of 256 values'."""
    # The sum is finite only if every value is (an inf or NaN anywhere makes it inf or NaN), so one reduction and
    # one host copy answer the common case; isfinite(x).all() costs an elementwise pass, a mask and a second
    # reduction, several times more on small latents. Half types are summed in float32 so that they cannot overflow;
    # a sum that overflows although every value is finite (huge float32 values) falls through to the exact check.
    if math.isfinite(x.sum(dtype=torch.float32 if x.dtype in _HALF else None).item()) or bool(torch.isfinite(x).all()):
        return None
    nan, inf = non_finite_counts(x)
    return f"{nan} NaN and {inf} infinite of {x.numel()} values"


def require_finite_latent(x: torch.Tensor, what: str, who: str) -> None:
    found = describe_non_finite(x)
    if found is not None:
        raise NonFiniteError(f"{who}: {what} contains {found}; it would decode to a black or broken image. "
                             "It came from the node that made it (e.g. VAE Encode overflowing in fp16: try --fp32-vae)")
