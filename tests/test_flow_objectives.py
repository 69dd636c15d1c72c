"""The reflow and distillation objectives (flow_math/flow_objectives.py) on known velocity fields. Torch only."""
import torch

from flow_math import flow_objectives as fo
from flow_math.flows import instaflow


def pair(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)  # latent, noise


def model_with_velocity(velocity):
    """A student whose velocity at every (x, sigma) is velocity(x, sigma), seen as ComfyUI sees it (the image estimate)."""
    return lambda x, sigma: instaflow.denoised_from_velocity(x, sigma, velocity(x, sigma))


def test_the_straight_line_velocity_has_zero_reflow_and_distill_loss():
    latent, noise = pair()
    perfect = model_with_velocity(lambda x, s: latent - noise)
    sigma = torch.tensor([0.3, 0.9])
    assert fo.reflow_loss(perfect, latent, noise, sigma).item() < 1e-10
    assert fo.distill_loss(perfect, latent, noise).item() < 1e-10
    assert fo.distill_loss(perfect, latent, noise, "pseudo_huber").item() < 1e-6


def test_reflow_loss_is_the_velocity_error_at_the_noised_point():
    latent, noise = pair(1)
    sigma = torch.tensor([0.25, 0.75])
    seen = {}

    def velocity(x, s):
        seen["x"] = x
        return torch.ones_like(x)
    loss = fo.reflow_loss(model_with_velocity(velocity), latent, noise, sigma)
    expected_x = (1 - sigma.view(-1, 1, 1, 1)) * latent + sigma.view(-1, 1, 1, 1) * noise
    torch.testing.assert_close(seen["x"], expected_x)
    torch.testing.assert_close(loss, torch.mean((1 - (latent - noise)) ** 2), rtol=1e-5, atol=1e-6)


def test_the_flipped_sign_velocity_is_penalised():
    latent, noise = pair(2)
    flipped = model_with_velocity(lambda x, s: noise - latent)  # the SD3/Flux sign
    assert fo.reflow_loss(flipped, latent, noise, torch.tensor([0.5, 0.5])).item() > 3.0
    assert fo.distill_loss(flipped, latent, noise).item() > 3.0


def test_distillation_calls_the_student_once_at_sigma_one_on_the_noise():
    latent, noise = pair(3)
    calls = []

    def velocity(x, s):
        calls.append((x, s))
        return torch.zeros_like(x)
    fo.distill_loss(model_with_velocity(velocity), latent, noise)
    [(x, s)] = calls
    assert torch.equal(x, noise) and torch.equal(s, torch.ones(2))


def test_sigmas_are_uniform_on_the_open_interval_and_reproducible():
    s = fo.sample_sigmas(10000, torch.Generator().manual_seed(0))
    assert fo.MIN_SIGMA <= s.min().item() and s.max().item() <= 1.0
    assert abs(s.mean().item() - 0.5) < 0.02
    assert torch.equal(s, fo.sample_sigmas(10000, torch.Generator().manual_seed(0)))


def test_a_batch_of_sigmas_covers_every_stratum_once():
    s = fo.sample_sigmas(8, torch.Generator().manual_seed(3))
    strata = torch.floor((1.0 - (s - fo.MIN_SIGMA) / (1.0 - fo.MIN_SIGMA)) * 8).clamp(max=7)
    assert sorted(strata.tolist()) == list(range(8))


def test_a_reflow_batch_larger_than_the_set_takes_each_pair_at_sigmas_spread_over_the_interval():
    samples = fo.step_samples(3, "reflow", 12, torch.Generator().manual_seed(0))
    by_pair = {j: sorted(float(s) for i, s in samples if i == j) for j in range(3)}
    assert all(len(sigmas) == 4 for sigmas in by_pair.values())
    for sigmas in by_pair.values():  # 4 levels, 1/4 apart
        gaps = [b - a for a, b in zip(sigmas, sigmas[1:])]
        assert all(abs(g - 0.25 * (1 - fo.MIN_SIGMA)) < 1e-5 for g in gaps)


def test_distillation_takes_each_pair_at_most_once_per_step():
    samples = fo.step_samples(3, "distill", 12, torch.Generator().manual_seed(0))
    assert sorted(i for i, _s in samples) == [0, 1, 2]


def test_pseudo_huber_is_quadratic_near_zero_and_linear_far_away():
    target = torch.zeros(1, 4, 8, 8)
    small = [fo.pseudo_huber(torch.full_like(target, e), target).item() for e in (1e-5, 2e-5)]
    large = [fo.pseudo_huber(torch.full_like(target, e), target).item() for e in (10.0, 20.0)]
    assert abs(small[1] / small[0] - 4) < 0.1
    assert abs(large[1] / large[0] - 2) < 0.01


def test_a_tiny_student_trained_by_reflow_learns_the_straight_velocity():
    latent, noise = pair(4)
    weight = torch.zeros((), requires_grad=True)  # v = weight * (latent - noise): the target is weight 1
    student = model_with_velocity(lambda x, s: weight * (latent - noise))
    optimizer = torch.optim.SGD([weight], lr=0.2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        loss = fo.reflow_loss(student, latent, noise, fo.sample_sigmas(2, generator))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert abs(weight.item() - 1.0) < 1e-3
