"""flow_math/inversion.py on its own (torch only): explicit and fixed-point rectified-flow inversion.

Round trips regenerate with the pack's own sampler (flow_math/euler.py, rectified_flow_euler) on the
official schedule, through a model that returns denoised = x + sigma * v as ComfyUI's model call does.
"""
import pytest
import torch

from flow_math.euler import rectified_flow_euler
from flow_math.finite_checks import NonFiniteError
from flow_math.flows.instaflow import denoised_from_velocity, instaflow_sigmas
from flow_math.inversion import explicit_step, forward_step, inversion_sigmas, invert, model_calls

SHAPE = (2, 4, 8, 8)


def nonlinear_velocity(lipschitz: float):
    """A smooth velocity field, noise -> image, whose Lipschitz constant in x is about `lipschitz`."""
    g = torch.Generator().manual_seed(3)
    weight = torch.randn(SHAPE[1], SHAPE[1], generator=g)
    weight = weight / torch.linalg.matrix_norm(weight, ord=2) * lipschitz
    target = torch.randn(SHAPE, generator=g)

    def velocity(x, sigma):
        mixed = torch.einsum("oc,bchw->bohw", weight, x)
        return torch.tanh(mixed) * (1.0 + 0.5 * float(sigma)) + target
    return velocity


def as_model(velocity):
    """ComfyUI's calling convention: model(x, sigma * s_in) -> denoised = x + sigma * v."""
    def model(x, sigma):
        return denoised_from_velocity(x, sigma, velocity(x, float(sigma.reshape(-1)[0])))
    return model


def regenerate(velocity, noise, steps):
    return rectified_flow_euler(as_model(velocity), noise, instaflow_sigmas(steps), disable=True)


def image_latent():
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(11))


def rms(t):
    return float(t.pow(2).mean().sqrt())


def round_trip_error(velocity, steps, iterations):
    x0 = image_latent()
    return rms(regenerate(velocity, invert(x0, velocity, steps, iterations).latent, steps) - x0)


def test_inversion_visits_the_samplers_sigmas_in_reverse():
    assert inversion_sigmas(4) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert inversion_sigmas(3) == list(reversed(instaflow_sigmas(3).tolist()))


def test_explicit_inversion_reads_v_at_the_lower_sigma_and_steps_against_it():
    calls = []

    def velocity(x, sigma):
        calls.append(sigma)
        return torch.full_like(x, 1.0 + sigma)
    x0 = image_latent()
    out = invert(x0, velocity, 4, fixed_point_iterations=0).latent
    assert calls == [0.0, 0.25, 0.5, 0.75]  # UNet timesteps 0, 250, 500, 750
    assert torch.allclose(out, x0 - 0.25 * (1.0 + 1.25 + 1.5 + 1.75), atol=1e-6)


def test_explicit_step_is_x_minus_dt_times_v():
    x, v = torch.randn(SHAPE), torch.randn(SHAPE)
    assert torch.allclose(explicit_step(x, v, 0.25, 0.5), x - 0.25 * v)


def test_forward_step_is_the_samplers_euler_step():
    x, v = torch.randn(SHAPE), torch.randn(SHAPE)
    assert torch.allclose(forward_step(x, v, 0.5, 0.25), x + 0.25 * v)
    assert torch.equal(forward_step(x, v, 0.25, 0.0), x + 0.25 * v)  # lands on denoised exactly, as the sampler does


def test_each_fixed_point_iteration_reads_v_at_the_higher_sigma():
    calls = []

    def velocity(x, sigma):
        calls.append(sigma)
        return torch.zeros_like(x)
    invert(image_latent(), velocity, 2, fixed_point_iterations=3)
    assert calls == [0.0, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0]
    assert model_calls(2, 3) == len(calls)


def test_round_trip_with_fixed_point_iterations_returns_the_latent():
    velocity = nonlinear_velocity(lipschitz=1.0)
    assert round_trip_error(velocity, steps=4, iterations=8) < 1e-5


def test_round_trip_error_falls_with_every_iteration():
    velocity = nonlinear_velocity(lipschitz=1.0)
    errors = [round_trip_error(velocity, steps=4, iterations=k) for k in range(5)]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:])), errors
    assert errors[3] < errors[0] / 50


def test_error_shrinks_by_dt_times_the_lipschitz_constant_per_iteration():
    # v = -c * x: each iteration multiplies the error of a step by c / N exactly.
    c, steps = 1.2, 2

    def velocity(x, sigma):
        return -c * x
    errors = [round_trip_error(velocity, steps, k) for k in (1, 2, 3)]
    for earlier, later in zip(errors, errors[1:]):
        assert later / earlier == pytest.approx(c / steps, rel=0.05)


def test_a_velocity_that_does_not_depend_on_x_is_inverted_exactly_by_one_iteration():
    def velocity(x, sigma):
        return torch.full_like(x, 2.0 - sigma)
    assert round_trip_error(velocity, steps=3, iterations=1) < 1e-6
    assert round_trip_error(velocity, steps=3, iterations=0) > 0.1


def test_residuals_are_recorded_per_step_and_iteration_and_shrink():
    result = invert(image_latent(), nonlinear_velocity(lipschitz=1.0), 3, fixed_point_iterations=4)
    assert [len(r) for r in result.residuals] == [4, 4, 4]
    assert all(r[-1] < r[0] for r in result.residuals)
    assert result.diverging_steps() == []
    assert invert(image_latent(), nonlinear_velocity(1.0), 3, 0).residuals == [[], [], []]


def test_a_step_too_large_for_the_flow_is_reported_as_diverging():
    def velocity(x, sigma):
        return -3.0 * x  # one step: dt * Lip = 3
    result = invert(image_latent(), velocity, 1, fixed_point_iterations=3)
    assert result.diverging_steps() == [0]


def test_on_evaluation_is_called_after_every_model_call():
    seen = []
    invert(image_latent(), nonlinear_velocity(1.0), 3, 2, on_evaluation=lambda done, total, y: seen.append((done, total)))
    assert seen == [(i, 9) for i in range(1, 10)]


def test_non_finite_velocity_is_an_error():
    def velocity(x, sigma):
        return x * float("nan")
    with pytest.raises(NonFiniteError, match="NaN"):
        invert(image_latent(), velocity, 2, 1)


@pytest.mark.parametrize("steps, iterations", [(0, 1), (-1, 0), (2, -1)])
def test_invalid_steps_or_iterations_are_refused(steps, iterations):
    with pytest.raises(ValueError):
        invert(image_latent(), lambda x, s: x, steps, iterations)

