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


def describe_non_finite(x: torch.Tensor) -> str | None:
    """None when x is all finite (one device sync), else e.g. '12 NaN and 0 infinite of 256 values'."""
    if bool(torch.isfinite(x).all()):
        return None
    nan, inf = non_finite_counts(x)
    return f"{nan} NaN and {inf} infinite of {x.numel()} values"


def require_finite_latent(x: torch.Tensor, what: str, who: str) -> None:
    found = describe_non_finite(x)
    if found is not None:
        raise NonFiniteError(f"{who}: {what} contains {found}; it would decode to a black or broken image. "
                             "It came from the node that made it (e.g. VAE Encode overflowing in fp16: try --fp32-vae)")
