"""Loss terms: values on inputs where they can be computed by hand, and the core's weighted composition
of the registered terms."""

from __future__ import annotations

import math

import pytest
import torch

import panfw
from panfw.config.recipe import LossTerm
from panfw.engine.objective import WeightedLoss, build_loss
from panfw.errors import RegistryError, UserError


@pytest.fixture
def image():
    return torch.rand(2, 4, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_losses_are_registered():
    assert {"l1", "charbonnier", "ssim", "focal"} <= set(panfw.registry("losses").names())
    for name in ("l1", "charbonnier", "ssim", "focal"):
        assert panfw.registry("losses").get(name).meta["kind"] == "reference"
    # composition is the core's (panfw.engine.objective), not a registered loss
    assert "weighted" not in panfw.registry("losses").names()


@pytest.mark.parametrize("name", ["l1", "ssim", "focal"])
def test_identical_images_give_zero(name, image):
    assert abs(panfw.create_loss(name)(image, image).item()) < 1e-12


def test_charbonnier_of_identical_images_is_eps(image):
    assert panfw.create_loss("charbonnier", eps=1e-3)(image, image).item() == pytest.approx(1e-3)


@pytest.mark.parametrize("c", [0.05, -0.2])
def test_constant_offset(image, c):
    pred = image + c
    d = abs(c)
    assert panfw.create_loss("l1")(pred, image).item() == pytest.approx(d)
    assert panfw.create_loss("charbonnier")(pred, image).item() == pytest.approx(math.sqrt(c * c + 1e-12))
    assert panfw.create_loss("charbonnier", eps=0.1)(pred, image).item() == pytest.approx(math.sqrt(c * c + 0.01))
    # paper Eq. 8: (255 d)^1.1 / 255 * d
    assert panfw.create_loss("focal")(pred, image).item() == pytest.approx((255 * d) ** 1.1 / 255 * d)
    assert panfw.create_loss("focal", r1=2.0)(pred, image).item() == pytest.approx(255 * d**3)


def test_focal_value_for_a_known_error():
    pred, target = torch.tensor([0.1, 0.0, 0.3]), torch.zeros(3)
    expected = sum((255 * d) ** 1.1 / 255 * d for d in (0.1, 0.0, 0.3)) / 3
    assert panfw.create_loss("focal")(pred, target).item() == pytest.approx(expected, rel=1e-6)


def test_focal_gradient_is_finite_at_zero_error(image):
    pred = image.clone().requires_grad_(True)
    panfw.create_loss("focal")(pred, image).backward()
    assert torch.isfinite(pred.grad).all()


def test_ssim_loss_on_constant_images():
    a, b = 0.2, 0.6
    pred, target = (torch.full((1, 1, 16, 16), v, dtype=torch.float64) for v in (a, b))
    c1 = 0.01**2
    expected = 1 - (2 * a * b + c1) / (a * a + b * b + c1)
    assert panfw.create_loss("ssim", padding="valid")(pred, target).item() == pytest.approx(expected, rel=1e-9)


def test_ssim_loss_uses_zero_padding_by_default(image):
    from panfw.ops import ssim

    pred = (image + 0.05 * torch.randn_like(image)).clamp(0, 1)
    loss = panfw.create_loss("ssim")(pred, image)
    torch.testing.assert_close(loss, 1 - ssim(pred, image, padding="zero"))
    assert not torch.allclose(loss, 1 - ssim(pred, image, padding="reflect"))


def test_ssim_loss_rejects_a_bad_padding():
    with pytest.raises(UserError, match="accepted: zero, reflect, valid"):
        panfw.create_loss("ssim", padding="same")


def test_unknown_option_is_refused():
    with pytest.raises(RegistryError, match="no option 'gamma'"):
        panfw.create_loss("focal", gamma=2.0)


def test_weighted_sum_and_per_term_values(image):
    pred = (image + 0.1 * torch.randn_like(image)).clamp(0, 1)
    loss = build_loss([("charbonnier", 1.5, {}), ("ssim", 4.0, {}), ("focal", 1.5, {"r1": 1.1})])
    assert isinstance(loss, WeightedLoss)
    total = loss(pred, image)
    parts = {n: panfw.create_loss(n)(pred, image) for n in ("charbonnier", "ssim", "focal")}
    torch.testing.assert_close(total, 1.5 * parts["charbonnier"] + 4 * parts["ssim"] + 1.5 * parts["focal"])
    assert set(loss.last_terms) == {"charbonnier", "ssim", "focal"}
    for name, value in parts.items():
        torch.testing.assert_close(loss.last_terms[name], value)
        assert not loss.last_terms[name].requires_grad


def test_terms_from_a_recipe_tuples_or_tables_are_the_same(image):
    pred = image.flip(-1)
    forms = [
        [LossTerm("l1", 3.0), LossTerm("ssim", 4.0, {"padding": "zero"})],
        [("l1", 3.0), ("ssim", 4.0, {"padding": "zero"})],
        [{"name": "l1", "weight": 3.0}, {"name": "ssim", "weight": 4.0, "padding": "zero"}],
    ]
    values = [build_loss(f)(pred, image) for f in forms]
    for v in values[1:]:
        torch.testing.assert_close(v, values[0])


def test_zero_weights_are_left_out_and_repeated_names_kept_apart(image):
    loss = build_loss([("l1", 1.0), ("ssim", 0.0), ("l1", 2.0)])
    assert loss.names == ["l1", "l1_2"] and len(loss.terms) == 2
    torch.testing.assert_close(loss(image + 0.1, image), torch.tensor(0.3, dtype=torch.float64))


def test_gradient_flows_through_the_composite(image):
    pred = image.clone().add_(0.05).requires_grad_(True)
    build_loss([LossTerm("charbonnier", 1.5), LossTerm("ssim", 4.0), LossTerm("focal", 1.5)])(pred, image).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_bad_terms_are_user_errors():
    with pytest.raises(UserError, match=r"loss.terms\[1\]: unknown loss 'sim'"):
        build_loss([("l1", 1.0), ("sim", 1.0)])
    with pytest.raises(UserError, match="at least one term"):
        build_loss([("l1", 0.0)])
