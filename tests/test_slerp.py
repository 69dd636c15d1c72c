"""The torch-only interpolation math on its own: flow_math/slerp.py and flow_math/conditioning_interpolation.py."""
import math

import pytest
import torch

from flow_math.conditioning_interpolation import interpolate_conditioning, lerp_frames
from flow_math.slerp import frame_positions, slerp, slerp_frames

LATENT_SHAPE = (1, 4, 64, 64)  # one 512x512 SD1.5 latent: 16384 values


def gaussian_pair(seed_a=1, seed_b=2, shape=LATENT_SHAPE):
    return (torch.randn(shape, generator=torch.Generator().manual_seed(seed_a)),
            torch.randn(shape, generator=torch.Generator().manual_seed(seed_b)))


def angle(u: torch.Tensor, v: torch.Tensor) -> float:
    u, v = u.double().flatten(), v.double().flatten()
    return math.acos(float(u @ v / (u.norm() * v.norm())))


def test_frame_positions_run_from_zero_to_one_evenly():
    assert frame_positions(5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert frame_positions(1) == [0.0]


@pytest.mark.parametrize("frames", [0, -1])
def test_frame_positions_reject_no_frames(frames):
    with pytest.raises(ValueError, match="frames"):
        frame_positions(frames)


def test_slerp_ends_are_the_inputs_bit_for_bit():
    a, b = gaussian_pair()
    assert torch.equal(slerp(a, b, 0.0), a)
    assert torch.equal(slerp(a, b, 1.0), b)


def test_slerp_of_orthogonal_unit_vectors_follows_the_unit_circle():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    for t in (0.25, 0.5, 0.75):
        expected = torch.tensor([math.cos(t * math.pi / 2), math.sin(t * math.pi / 2)])
        assert torch.allclose(slerp(a, b, t), expected, atol=1e-7)


def test_slerp_moves_at_constant_angular_speed_between_tensors_of_equal_norm():
    a, b = gaussian_pair()
    b = b * (a.norm() / b.norm())
    total = angle(a, b)
    for t in (0.2, 0.5, 0.9):
        assert angle(a, slerp(a, b, t)) == pytest.approx(t * total, abs=1e-5)


@pytest.mark.parametrize("t", [0.25, 0.5, 0.75])
def test_slerp_keeps_unit_variance_of_independent_gaussian_noise(t):
    a, b = gaussian_pair()
    mid = slerp(a, b, t)
    assert mid.std().item() == pytest.approx(1.0, abs=0.02)  # sampling error of the std is ~0.006
    assert abs(mid.mean().item()) < 0.03


def test_straight_line_would_lose_variance_which_is_why_noise_uses_slerp():
    a, b = gaussian_pair()
    assert ((a + b) / 2).std().item() == pytest.approx(math.sqrt(0.5), abs=0.02)


def test_slerp_of_parallel_tensors_falls_back_to_the_straight_line():
    a = torch.randn(3, 5)
    assert torch.allclose(slerp(a, 2 * a, 0.5), 1.5 * a)
    assert torch.isfinite(slerp(a, torch.zeros_like(a), 0.5)).all()


def test_slerp_keeps_the_dtype():
    a, b = gaussian_pair(shape=(1, 4, 8, 8))
    assert slerp(a.half(), b.half(), 0.5).dtype == torch.float16


def test_slerp_rejects_mismatched_shapes_and_positions_outside_the_arc():
    with pytest.raises(ValueError, match="shape"):
        slerp(torch.zeros(1, 4, 8, 8), torch.zeros(1, 4, 8, 9), 0.5)
    with pytest.raises(ValueError, match="t must be"):
        slerp(torch.ones(3), torch.ones(3), 1.5)


def test_slerp_frames_is_a_batch_from_a_to_b():
    a, b = gaussian_pair(shape=(1, 4, 8, 8))
    frames = slerp_frames(a, b, 8)
    assert frames.shape == (8, 4, 8, 8)
    assert torch.equal(frames[:1], a) and torch.equal(frames[-1:], b)
    assert torch.allclose(frames[3:4], slerp(a, b, 3 / 7))


def conditioning(seed: int, tokens: int = 77, pooled: bool = True) -> list:
    g = torch.Generator().manual_seed(seed)
    options = {"pooled_output": torch.randn(1, 768, generator=g)} if pooled else {}
    return [[torch.randn(1, tokens, 768, generator=g), options]]


def test_interpolated_conditioning_has_one_embedding_per_frame_with_exact_ends():
    a, b = conditioning(1), conditioning(2)
    (embeds, options), = interpolate_conditioning(a, b, 5)
    assert embeds.shape == (5, 77, 768)
    assert torch.equal(embeds[0], a[0][0][0]) and torch.equal(embeds[4], b[0][0][0])
    assert torch.allclose(embeds[2], (a[0][0][0] + b[0][0][0]) / 2, atol=1e-6)
    assert torch.equal(options["pooled_output"], lerp_frames(a[0][1]["pooled_output"], b[0][1]["pooled_output"], 5))


def test_interpolated_conditioning_leaves_the_inputs_unchanged():
    a, b = conditioning(1), conditioning(2)
    before = a[0][0].clone(), a[0][1]["pooled_output"].clone()
    interpolate_conditioning(a, b, 4)
    assert torch.equal(a[0][0], before[0]) and torch.equal(a[0][1]["pooled_output"], before[1])


def test_interpolating_prompts_of_different_lengths_is_a_clear_error():
    with pytest.raises(ValueError, match="77-token chunks"):
        interpolate_conditioning(conditioning(1), conditioning(2, tokens=154), 4)


def test_interpolating_conditionings_with_different_entry_counts_is_a_clear_error():
    with pytest.raises(ValueError, match="entries"):
        interpolate_conditioning(conditioning(1) + conditioning(3), conditioning(2), 4)
