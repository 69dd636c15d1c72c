"""The torch-only math modules, on their own (no ComfyUI)."""
import pytest
import torch

from flow_math.flows import instaflow as flow_convention
from flow_math.flows.broadcast import per_sample
from flow_math.euler import euler_step, rectified_flow_euler
from flow_math.flows.instaflow import instaflow_sigmas


def test_one_step_schedule_is_one_to_zero():
    assert instaflow_sigmas(1).tolist() == [1.0, 0.0]


def test_four_step_schedule_gives_official_timesteps():
    sigmas = instaflow_sigmas(4)
    assert sigmas.tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    # pipeline_rf.py: t_i = (1 - i/N) * 1000 for i = 0..N-1
    assert flow_convention.timestep(sigmas[:-1]).tolist() == [1000.0, 750.0, 500.0, 250.0]


def test_denoise_scales_the_schedule():
    assert torch.allclose(instaflow_sigmas(2, denoise=0.5), torch.tensor([0.5, 0.25, 0.0]))


@pytest.mark.parametrize("steps, denoise", [(3, 1.0), (7, 0.3), (1000, 0.77)])
def test_schedule_is_computed_in_float64_and_rounded_once_to_float32(steps, denoise):
    i = torch.arange(steps + 1, dtype=torch.float64)
    exact = ((1.0 - i / steps) * denoise).to(torch.float32)
    sigmas = instaflow_sigmas(steps, denoise)
    assert sigmas.dtype == torch.float32 and torch.equal(sigmas, exact)


@pytest.mark.parametrize("steps, denoise", [(0, 1.0), (-3, 1.0), (1, 1.5), (1, -0.1)])
def test_schedule_rejects_invalid_values(steps, denoise):
    with pytest.raises(ValueError):
        instaflow_sigmas(steps, denoise)


def test_noise_path_is_noise_at_one_and_image_at_zero():
    image, noise = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    assert torch.equal(flow_convention.noised_latent(image, noise, torch.tensor(1.0)), noise)
    assert torch.equal(flow_convention.noised_latent(image, noise, torch.tensor(0.0)), image)
    mid = flow_convention.noised_latent(image, noise, torch.tensor([0.25, 0.25]))
    assert torch.allclose(mid, 0.75 * image + 0.25 * noise)


def test_denoised_adds_velocity_pointing_to_the_image():
    x, v = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    assert torch.allclose(flow_convention.denoised_from_velocity(x, torch.tensor(0.5), v), x + 0.5 * v)


def _straight_flow_model(target):
    """A model whose velocity is exact for the straight path from any x at sigma to `target`."""
    def model(x, sigma):
        v = (target - x) / per_sample(sigma, x)
        return flow_convention.denoised_from_velocity(x, sigma, v)
    return model


def test_one_euler_step_on_a_straight_flow_lands_on_the_target():
    target, noise = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    out = rectified_flow_euler(_straight_flow_model(target), noise, instaflow_sigmas(1), disable=True)
    assert torch.allclose(out, target, atol=1e-6)


def test_euler_equals_official_update_x_plus_dt_v():
    torch.manual_seed(0)
    x, v = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    denoised = flow_convention.denoised_from_velocity(x, torch.tensor(0.75), v)
    assert torch.allclose(euler_step(x, denoised, 0.75, 0.5), x + 0.25 * v, atol=1e-6)


def test_multi_step_euler_calls_the_model_once_per_step_and_reports_progress():
    calls, seen = [], []
    def model(x, sigma):
        calls.append(float(sigma[0]))
        return flow_convention.denoised_from_velocity(x, sigma, torch.ones_like(x))
    out = rectified_flow_euler(model, torch.zeros(1, 4, 2, 2), instaflow_sigmas(4), callback=lambda d: seen.append(d["i"]), disable=True)
    assert calls == [1.0, 0.75, 0.5, 0.25]
    assert seen == [0, 1, 2, 3]
    assert torch.allclose(out, torch.ones(1, 4, 2, 2))  # constant velocity 1 over a total dt of 1
