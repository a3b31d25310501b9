"""The DDIM update against the closed-form equation (Song et al. 2021, eq. 12), in float64."""

from __future__ import annotations

import pytest
import torch
from monai.networks.schedulers import DDIMScheduler as MonaiDDIMScheduler

from bundle.model.scheduler import DDIMScheduler


def closed_form_ddim(model_output, x_t, a_t, a_prev, prediction_type, eta, z):
    """x_prev from eq. 12/16 of the DDIM paper, written out independently of the scheduler (no clipping)."""
    if prediction_type == "epsilon":
        eps = model_output
        x0 = (x_t - (1 - a_t) ** 0.5 * eps) / a_t**0.5
    elif prediction_type == "sample":
        x0 = model_output
        eps = (x_t - a_t**0.5 * x0) / (1 - a_t) ** 0.5
    else:  # v: v = sqrt(a) eps - sqrt(1-a) x0
        x0 = a_t**0.5 * x_t - (1 - a_t) ** 0.5 * model_output
        eps = a_t**0.5 * model_output + (1 - a_t) ** 0.5 * x_t
    sigma = eta * ((1 - a_prev) / (1 - a_t)) ** 0.5 * (1 - a_t / a_prev) ** 0.5
    return a_prev**0.5 * x0 + (1 - a_prev - sigma**2) ** 0.5 * eps + sigma * z, x0


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
@pytest.mark.parametrize("num_steps", [1, 3, 10, 7])
def test_step_matches_closed_form_on_every_scheduled_step(prediction_type, num_steps):
    sched = DDIMScheduler(num_train_timesteps=1000, prediction_type=prediction_type, clip_sample=False)
    sched.alphas_cumprod = sched.alphas_cumprod.double()
    sched.final_alpha_cumprod = sched.final_alpha_cumprod.double()
    sched.set_timesteps(num_steps)
    schedule = sched.timesteps.tolist()
    assert schedule[0] == 999 and len(schedule) == num_steps
    assert num_steps == 1 or schedule[-1] == 0  # K = 1 goes straight from t = 999 to x0
    g = torch.Generator().manual_seed(num_steps)
    for i, t in enumerate(schedule):
        x_t = torch.randn(2, 1, 5, 4, generator=g, dtype=torch.float64)
        out = torch.randn(2, 1, 5, 4, generator=g, dtype=torch.float64)
        a_t = float(sched.alphas_cumprod[t])
        a_prev = float(sched.alphas_cumprod[schedule[i + 1]]) if i + 1 < num_steps else 1.0
        for eta in (0.0, 0.7):
            step_gen = torch.Generator().manual_seed(123)
            x_prev, x0 = sched.step(out, t, x_t, eta=eta, generator=step_gen)
            z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(123), dtype=torch.float64)
            want_prev, want_x0 = closed_form_ddim(out, x_t, a_t, a_prev, prediction_type, eta, z)
            torch.testing.assert_close(x0, want_x0, rtol=1e-10, atol=1e-10)
            torch.testing.assert_close(x_prev, want_prev, rtol=1e-10, atol=1e-10)


def test_monai_stride_bug_is_what_we_fix():
    """MONAI 1.6.1 steps 999 -> 899 although the schedule says 999 -> 888; ours uses 888."""
    ours = DDIMScheduler(prediction_type="sample", clip_sample=False)
    theirs = MonaiDDIMScheduler(prediction_type="sample", clip_sample=False)
    for s in (ours, theirs):
        s.set_timesteps(10)
    assert ours.timesteps.tolist()[:2] == [999, 888]
    assert ours.previous_timestep(999) == 888 and ours.previous_timestep(0) == -1
    x_t, x0 = torch.randn(1, 1, 4, 4), torch.rand(1, 1, 4, 4)
    a_888 = ours.alphas_cumprod[888]
    want = a_888**0.5 * x0 + (1 - a_888) ** 0.5 * (x_t - ours.alphas_cumprod[999] ** 0.5 * x0) / (
        1 - ours.alphas_cumprod[999]
    ) ** 0.5
    torch.testing.assert_close(ours.step(x0, 999, x_t)[0], want)
    assert not torch.allclose(theirs.step(x0, 999, x_t)[0], want)


def test_chain_of_exact_x0_predictions_recovers_x0():
    """With a perfect x0 predictor, K deterministic steps end exactly at x0 (the last step lands on t=0)."""
    sched = DDIMScheduler(prediction_type="sample", clip_sample=True)
    sched.set_timesteps(5)
    x0 = torch.sign(torch.randn(1, 1, 8, 8))
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for t in sched.timesteps:
        x, _ = sched.step(x0, int(t), x)
    torch.testing.assert_close(x, x0)


def test_unscheduled_timestep_is_an_error():
    sched = DDIMScheduler()
    sched.set_timesteps(4)
    with pytest.raises(ValueError, match="not in the inference schedule"):
        sched.step(torch.zeros(1), 500, torch.zeros(1))


def test_eta_one_over_every_timestep_is_ddpm_ancestral_sampling():
    """DDIM with eta = 1 over all T steps draws the same chain as MONAI's DDPMScheduler (posterior variance
    beta_tilde), noise for noise: the reference sampler of bundle.dev.sampler_agreement and the benchmark's ddpm1000."""
    from monai.networks.schedulers import DDPMScheduler

    ddim = DDIMScheduler(prediction_type="sample", clip_sample=True)
    ddpm = DDPMScheduler(prediction_type="sample", clip_sample=True)
    ddim.set_timesteps(1000)
    ddpm.set_timesteps(1000)
    assert ddim.timesteps.tolist() == ddpm.timesteps.tolist() == list(range(999, -1, -1))

    def x0_model(x):  # any deterministic x0 predictor that depends on x_t
        return torch.tanh(2 * x + 0.3)

    start = torch.randn(3, 1, 6, 5, generator=torch.Generator().manual_seed(0))
    g_ddim, g_ddpm = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    x_ddim, x_ddpm = start.clone(), start.clone()
    for t in ddim.timesteps.tolist():
        x_ddim, _ = ddim.step(x0_model(x_ddim), t, x_ddim, eta=1.0, generator=g_ddim)
        x_ddpm, _ = ddpm.step(x0_model(x_ddpm), t, x_ddpm, generator=g_ddpm)
    torch.testing.assert_close(x_ddim, x_ddpm, rtol=1e-4, atol=1e-4)
    x_det = start.clone()
    for t in ddim.timesteps.tolist():  # eta = 0 is a different chain: the test can tell them apart
        x_det, _ = ddim.step(x0_model(x_det), t, x_det, eta=0.0)
    assert not torch.allclose(x_det, x_ddpm, atol=1e-2)
