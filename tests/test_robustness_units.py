"""Unit tests of the torch-only guards: finite checks, the memory lower bound, the Euler sampler's checks."""
from __future__ import annotations

import math

import pytest
import torch

from flow_math.euler import rectified_flow_euler
from flow_math.finite_checks import NonFiniteError, describe_non_finite, require_finite_latent, require_finite_number
from flow_math.memory_estimate import skip_activations_per_latent_pixel, unet_activation_lower_bound
from flow_math.flows.instaflow import instaflow_sigmas

SD15 = dict(model_channels=320, channel_mult=[1, 2, 4, 4], num_res_blocks=[2, 2, 2, 2])


def test_sd15_skip_activations_per_latent_pixel():
    # conv_in + 2 res blocks at 320 (full size), downsample 320 + 2 x 640 (1/4), 640 + 2 x 1280 (1/16),
    # 1280 + 2 x 1280 (1/64): 960 + 400 + 200 + 60.
    assert skip_activations_per_latent_pixel(**SD15) == 1620


def test_lower_bound_of_one_512px_image_is_small_and_of_4096_is_huge():
    one = unet_activation_lower_bound(1, 64, 64, 4, 1620)
    assert one == 64 * 64 * 1620 * 4 and one < 30 * 2**20  # 26.5 MB: never refuses a normal batch
    assert unet_activation_lower_bound(4096, 64, 64, 4, 1620) > 100 * 2**30


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_named(value):
    with pytest.raises(NonFiniteError, match=f"Node: cfg must be a finite number, got {value}"):
        require_finite_number("cfg", value, "Node")


def test_finite_numbers_pass():
    require_finite_number("cfg", 1.5, "Node")


def test_non_finite_latent_is_counted():
    x = torch.zeros(1, 4, 2, 2)
    assert describe_non_finite(x) is None
    x[0, 0, 0, 0], x[0, 1, 0, 0], x[0, 2, 0, 0] = math.nan, math.inf, -math.inf
    assert describe_non_finite(x) == "1 NaN and 2 infinite of 16 values"
    with pytest.raises(NonFiniteError, match="Node: latent_image contains 1 NaN and 2 infinite of 16 values"):
        require_finite_latent(x, "latent_image", "Node")


def velocity_model(value):
    """k-diffusion style model returning the image estimate x + sigma * v for a constant velocity."""
    def model(x, sigma, **kwargs):
        return x + sigma.reshape(-1, 1, 1, 1) * value
    return model


def test_euler_refuses_a_schedule_above_pure_noise():
    eps_schedule = torch.tensor([14.6146, 0.0])  # SD1.5's sigma_max: an unpatched EPS model
    with pytest.raises(ValueError, match="starts at sigma 14.61, above 1"):
        rectified_flow_euler(velocity_model(torch.tensor(1.0)), torch.zeros(1, 4, 2, 2), eps_schedule, disable=True)


def test_euler_reports_a_non_finite_result():
    with pytest.raises(NonFiniteError, match="sampled latent contains 16 NaN"):
        rectified_flow_euler(velocity_model(torch.tensor(math.nan)), torch.zeros(1, 4, 2, 2), instaflow_sigmas(2),
                             disable=True)


def test_euler_still_runs_a_finite_schedule():
    out = rectified_flow_euler(velocity_model(torch.tensor(0.5)), torch.zeros(1, 4, 2, 2), instaflow_sigmas(4), disable=True)
    assert torch.allclose(out, torch.full((1, 4, 2, 2), 0.5))  # x + integral of v over sigma 1 -> 0
