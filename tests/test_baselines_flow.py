"""The invertible baselines: PanFlow (conditional normalising flow) and PSCINN (invertible network)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import panfw
from panfw.errors import DataError, UserError


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def _inputs(bands=4, h=5, w=7, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    ms = 0.1 + 0.8 * torch.rand(batch, bands, h, w, generator=g)
    lms = F.interpolate(ms, size=(4 * h, 4 * w), mode="bilinear", align_corners=False)
    pan = lms.mean(1, keepdim=True) + 0.05 * torch.rand(batch, 1, 4 * h, 4 * w, generator=g)
    gt = (lms + 0.05 * (pan - lms.mean(1, keepdim=True))).detach()
    return {"lms": lms, "pan": pan, "ms": ms, "gt": gt}


# --- PanFlow ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bands", [4, 3, 8])
def test_panflow_inverse_round_trip_and_finite_nll(bands):
    torch.manual_seed(0)
    model = panfw.create_model("panflow", bands=bands).eval()
    b = _inputs(bands)
    cond = model.condition(b["lms"], b["pan"], b["ms"])
    with torch.no_grad():
        z, nll = model.flow(b["gt"], cond)
        back = model.reverse(z, cond)
    assert torch.isfinite(nll) and nll.dim() == 0
    assert (back - b["gt"]).abs().max() < 1e-4
    assert (z - b["gt"]).abs().max() > 1e-3  # the flow did transform its input


def test_panflow_nll_is_the_reference_formula_for_one_step():
    torch.manual_seed(0)
    model = panfw.create_model("panflow", steps=1)
    b = _inputs()
    cond = model.condition(b["lms"], b["pan"], b["ms"])
    z, nll = model.flow(b["gt"], cond)
    _, logdet = model.coupling(b["gt"], cond)
    h, w = b["gt"].shape[-2:]
    expected = (0.5 * z.pow(2).sum(dim=(1, 2, 3)) - logdet).mean() / (2 * h * w)
    torch.testing.assert_close(nll, expected)
    # the log-determinant is log|det J| of the coupling: check it against autograd's full Jacobian on a
    # small crop (the couplings compose two triangular maps, so it is the sum of the log-scales)
    x, c = b["gt"][:1, :, :2, :3].clone(), cond[:1, :, :2, :3]
    jac = torch.autograd.functional.jacobian(lambda v: model.coupling(v.view_as(x), c)[0].flatten(), x.flatten())
    _, ld = model.coupling(x, c)
    torch.testing.assert_close(ld[0], torch.linalg.slogdet(jac)[1], rtol=1e-4, atol=1e-4)


def test_panflow_shares_one_coupling_across_steps():
    model = panfw.create_model("panflow", steps=4)
    assert sum(1 for m in model.modules() if type(m).__name__ == "ConditionalCoupling") == 1


def test_panflow_sampling_is_seeded_and_configurable():
    torch.manual_seed(0)
    model = panfw.create_model("panflow").eval()
    b = _inputs()
    x = (b["lms"], b["pan"], b["ms"])
    with torch.no_grad():
        one, again = model(*x), model(*x)
        assert torch.equal(one, again)  # the generator is re-seeded per call
        # each sample's own statistics: a sample's output does not depend on its batch-mates
        torch.testing.assert_close(model(*(t[:1] for t in x)), one[:1])
        other = panfw.create_model("panflow", seed=1)
        other.load_state_dict(model.state_dict())
        assert not torch.allclose(other.eval()(*x), one)
        cold = panfw.create_model("panflow", temperature=0.0)
        cold.load_state_dict(model.state_dict())
        cold = cold.eval()
        mean_eps = model.reverse(model.noise_stats(b["lms"])[0].expand_as(b["lms"]), model.condition(*x[:2], x[2]))
        torch.testing.assert_close(cold(*x), mean_eps)
        many = panfw.create_model("panflow", num_samples=3)
        many.load_state_dict(model.state_dict())
        assert torch.isfinite(many.eval()(*x)).all()
    assert one.device.type == "cpu"  # no CUDA-only call on the way
    with pytest.raises(UserError, match="num_samples"):
        panfw.create_model("panflow", num_samples=0)


def test_panflow_objective_is_reconstruction_plus_scaled_nll():
    torch.manual_seed(0)
    model = panfw.create_model("panflow")
    b = _inputs()
    calls = []

    def loss(pred, batch):
        calls.append(pred.shape)
        return F.l1_loss(pred, batch["gt"])

    no_nll = panfw.create_model("panflow", nll_weight=0.0)
    no_nll.load_state_dict(model.state_dict())
    torch.manual_seed(1)  # the same training noise for both
    total = model.objective(b, loss)
    torch.manual_seed(1)
    rec = no_nll.objective(b, loss)
    _, nll = model.flow(b["gt"], model.condition(b["lms"], b["pan"], b["ms"]))
    torch.testing.assert_close(total - rec, nll * 2 / b["gt"][0].numel())
    assert calls == [b["gt"].shape] * 2
    total.backward()
    with pytest.raises(DataError, match="gt"):
        model.objective({k: v for k, v in b.items() if k != "gt"}, loss)


# --- PSCINN -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bands", [4, 3])
def test_pscinn_is_invertible(bands):
    torch.manual_seed(0)
    model = panfw.create_model("pscinn", bands=bands).eval()
    b = _inputs(bands, h=3, w=4)
    with torch.no_grad():
        y = model.encode(b["gt"], b["pan"])
        assert y.shape == (2, 16 * bands, 3, 4)
        back = model.decode(y, b["pan"])
        assert (back - b["gt"]).abs().max() < 1e-4
        z = torch.randn_like(y)
        assert (model.encode(model.decode(z, b["pan"]), b["pan"]) - z).abs().max() < 1e-4


def test_pscinn_haar_is_an_exact_2x2_transform():
    from panfw_baselines.pscinn import HaarDownsampling

    haar = HaarDownsampling(2)
    x = torch.arange(32.0).view(1, 2, 4, 4)
    y = haar(x)
    assert y.shape == (1, 8, 2, 2)
    # the first sub-band of each channel is its 2x2 block mean (the LR slot of the LR-MS channels)
    torch.testing.assert_close(y[:, :2], F.avg_pool2d(x, 2))
    torch.testing.assert_close(haar(y, rev=True), x)


def test_pscinn_decodes_the_lr_ms_and_says_what_it_needs():
    torch.manual_seed(0)
    b = _inputs(h=3, w=4)
    zeros = panfw.create_model("pscinn").eval()
    with torch.no_grad():
        out = zeros(b["lms"], b["pan"], b["ms"])
        assert out.shape == b["lms"].shape and torch.isfinite(out).all()
        assert torch.equal(out, zeros.decode(torch.cat([b["ms"], torch.zeros(2, 60, 3, 4)], 1), b["pan"]))
        noisy = panfw.create_model("pscinn", z_mode="gaussian")
        noisy.load_state_dict(zeros.state_dict())
        assert torch.equal(noisy.eval()(b["lms"], b["pan"], b["ms"]), noisy(b["lms"], b["pan"], b["ms"]))
    with pytest.raises(UserError, match="4 x the MS grid"):
        zeros(b["lms"][..., :-1], b["pan"][..., :-1], b["ms"])
    with pytest.raises(UserError, match="ms"):
        zeros(b["lms"], b["pan"])
    with pytest.raises(UserError, match="z_mode"):
        panfw.create_model("pscinn", z_mode="uniform")


def test_pscinn_objective_has_all_three_terms():
    torch.manual_seed(0)
    model = panfw.create_model("pscinn")
    b = _inputs(h=3, w=4)
    full = model.objective(b, None)
    for key in ("lr_weight", "latent_weight"):
        part = panfw.create_model("pscinn", **{key: 0.0})
        part.load_state_dict(model.state_dict())
        assert part.objective(b, None) < full
    full.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
