"""The engine's loop on its own: state round trip, custom steps without test sets, exact mid-epoch
resume, NaN stop before the update, callbacks order, the composed objective and the model hook."""

from __future__ import annotations

import math

import pytest
import test_engine_plugin as tiny
import torch
from test_engine_plugin import one_thread  # noqa: F401 - autouse fixture
from torch import nn

import panfw
from panfw.config.recipe import loads_recipe
from panfw.engine.callbacks import Callback, Checkpoint, save_every_steps
from panfw.engine.loop import Loop, Optimization, TrainingDiverged
from panfw.engine.objective import ModelObjective, build_loss
from panfw.engine.state import LoopState
from panfw.errors import DataError, RecipeError


def _batches(seed: int = 0, n: int = 6):
    """An epoch's batches from ``start`` on; the order depends only on (seed, epoch)."""
    def batches(epoch: int, start: int):
        g = torch.Generator().manual_seed(seed * 1000 + epoch)
        data = [torch.randn(4, 3, generator=g) for _ in range(n)]
        return iter(data[start:])
    return batches


def _loop(state: LoopState | None = None, total: int = 10, callbacks=(), model=None) -> tuple[Loop, nn.Module]:
    torch.manual_seed(0)
    model = model or nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loop = Loop(step=lambda x: model(x).pow(2).mean(), batches=_batches(), steps_per_epoch=6, total_steps=total,
                state=state, optimization=Optimization(opt, model.parameters()), callbacks=callbacks)
    return loop, model


def test_state_round_trip():
    s = LoopState(epoch=2, batch_in_epoch=3, step=15, elapsed=4.5, best={"metric": "psnr", "value": 30.0},
                  acc=[1.0, 2, 3.0, 4])
    t = LoopState()
    t.load_state_dict(s.state_dict())
    assert t == s and t.state_dict() == s.state_dict()


def test_resume_mid_epoch_matches_an_uninterrupted_loop():
    full, m_full = _loop(total=10)
    full.run()

    class StopAt(Callback):
        def on_step_end(self, loop):
            if loop.state.step == 4:
                raise KeyboardInterrupt

    part, m_part = _loop(total=10, callbacks=[StopAt()])
    with pytest.raises(KeyboardInterrupt):
        part.run()
    saved = part.state.state_dict()
    weights = {k: v.clone() for k, v in m_part.state_dict().items()}
    assert saved["batch_in_epoch"] == 4 and saved["epoch"] == 0

    state = LoopState()
    state.load_state_dict(saved)
    model = nn.Linear(3, 1)
    model.load_state_dict(weights)
    again, m_again = _loop(state=state, total=10, model=model)  # SGD without momentum: no optimiser state
    again.run()
    assert again.state.step == 10 and again.state.epoch == 1 and again.state.batch_in_epoch == 4
    for k, v in m_full.state_dict().items():
        assert torch.equal(v, m_again.state_dict()[k]), k


def test_custom_step_without_optimisation_or_test_sets():
    seen = []

    def step(batch):
        seen.append(batch.sum().item())
        return 0.5

    loop = Loop(step=step, batches=_batches(n=3), steps_per_epoch=3, total_steps=7)
    state = loop.run()
    assert state.step == 7 and len(seen) == 7 and state.epoch == 2 and state.batch_in_epoch == 1
    assert loop.evaluate() == {}


def test_nan_stops_before_the_update_and_names_the_checkpoint(tmp_path):
    saves = []
    model = nn.Linear(3, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ckpt = Checkpoint(lambda: saves.append(1), tmp_path / "last.pt", every=0)
    loop = Loop(step=lambda x: model(x).mean() * math.nan, batches=_batches(), steps_per_epoch=6, total_steps=3,
                optimization=Optimization(opt, model.parameters()), callbacks=[ckpt])
    with pytest.raises(TrainingDiverged, match=r"step 1.*none was saved yet"):
        loop.run()
    assert loop.state.step == 0 and not saves
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_callback_order_and_save_every():
    calls = []

    class Record(Callback):
        def on_optimizer_step(self, loop):
            calls.append(("opt", loop.state.step))

        def on_step_end(self, loop):
            calls.append(("step", loop.state.step))

        def on_epoch_end(self, loop):
            calls.append(("epoch", loop.state.epoch, loop.epoch_done, loop.is_last))

    loop, _ = _loop(total=8, callbacks=[Record()])
    loop.run()
    assert calls[:2] == [("opt", 0), ("step", 1)]
    assert ("epoch", 1, True, False) in calls and calls[-1] == ("epoch", 1, False, True)
    assert ("step", 8) not in calls  # the last step ends at the epoch hook
    assert save_every_steps(-1, 10) == 3 and save_every_steps(0, 10) == 0 and save_every_steps(5, 10) == 5


def test_save_every_is_a_validated_recipe_key():
    assert loads_recipe("[train]\nsave_every = 5\n", check=False).train.save_every == 5
    assert loads_recipe("", check=False).train.save_every == -1
    with pytest.raises(RecipeError, match="train.save_every"):
        loads_recipe("[train]\nsave_every = -3\n", check=False)
    with pytest.raises(RecipeError, match="train.save_every"):
        loads_recipe('[train]\nsave_every = "often"\n', check=False)


class _Consistency(nn.Module):
    """A no-reference stand-in: the fused image's band mean against the PAN."""

    def forward(self, pred, ms, pan, sensor=None, ratio=None):
        assert ratio == pan.shape[-1] // ms.shape[-1]
        return (pred.mean(1, keepdim=True) - pan).abs().mean()


@pytest.fixture
def losses(plugin_registered):
    class P:
        @staticmethod
        @panfw.hookimpl
        def register_losses(register):
            register("test_consistency", _Consistency, kind="no_reference")
            register("test_l1", lambda: nn.L1Loss())

    plugin_registered(P, "objective_test_losses")


def test_composed_loss_routes_terms_and_allows_batches_without_gt(losses):
    loss = build_loss([("test_l1", 2.0), ("test_consistency", 1.0)])
    assert loss.kinds == ["reference", "no_reference"] and loss.needs_reference
    x = tiny.TinySet("train", n=2)[0]
    batch = {k: x[k][None] for k in ("lms", "pan", "ms", "gt")}
    value = loss(batch["lms"], batch)
    want = 2 * (batch["lms"] - batch["gt"]).abs().mean() + (batch["lms"].mean(1, keepdim=True) - batch["pan"]).abs().mean()
    assert torch.allclose(value, want)
    no_ref = build_loss([("test_consistency", 1.0)])
    nogt = {k: v for k, v in batch.items() if k != "gt"}
    assert not no_ref.needs_reference and torch.isfinite(no_ref(nogt["lms"], nogt))
    with pytest.raises(DataError, match="test_l1"):
        loss(nogt["lms"], nogt)


def test_model_objective_is_asked_first():
    class Flowish(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(()))
            self.calls = 0

        def forward(self, lms, pan, ms):
            return lms * self.w

        def objective(self, batch, loss):
            self.calls += 1
            return (self.w - 3) ** 2  # a likelihood needs no loss and no gt

    model = Flowish()
    obj = ModelObjective(model, None)
    assert not obj.needs_reference
    x = tiny.TinySet("train", n=1)[0]
    assert obj({"lms": x["lms"][None], "pan": x["pan"][None], "ms": x["ms"][None]}).item() == 4.0
    assert model.calls == 1


class _WithObjective(tiny.TinyNet):
    calls = 0

    def objective(self, batch, loss):
        type(self).calls += 1
        return loss(self(batch["lms"], batch["pan"], batch["ms"]), batch) + 0.0 * self.body[0].weight.sum()


def test_training_calls_the_model_objective(plugin_registered, tmp_path):
    from panfw.procedures import run

    tiny.register()
    try:
        class P:
            @staticmethod
            @panfw.hookimpl
            def register_models(register):
                register("tiny_objective", lambda bands=4: _WithObjective(bands))

        plugin_registered(P, "objective_test_model")
        _WithObjective.calls = 0
        res = run(str(tiny.write_recipe(tmp_path)), ["model.name=tiny_objective", "train.steps=3", "eval.every=0",
                                                    "eval.baselines=[]", "eval.figures=0"])
    finally:
        tiny.unregister()
    assert _WithObjective.calls == 3 and res["train"]["steps"] == 3


def test_report_takes_titles_decimals_and_direction_from_the_registry(plugin_registered, tmp_path):
    from panfw.evaluation.report import metric_table, write_results
    from panfw.evaluation.results import ModelInfo, Results, metric_meta

    class P:
        @staticmethod
        @panfw.hookimpl
        def register_metrics(register):
            register("test_err", tiny.TinyMAE, title="ERR", decimals=1, higher_is_better=False,
                     kind="reference")

    plugin_registered(P, "report_test_metrics")
    meta = metric_meta(["test_err"])["test_err"]
    assert (meta.title, meta.decimals, meta.higher_is_better) == ("ERR", 1, False)
    scores = {"s": {"rr": {"test_err": {"mean": 0.123, "std": 0.0, "n": 1}}}}
    worse = {"s": {"rr": {"test_err": {"mean": 0.456, "std": 0.0, "n": 1}}}}
    rows = [{"label": "a", "params": 1000, "flops": None, "results": scores},
            {"label": "b", "params": 1000, "flops": None, "results": worse}]
    table = metric_table(rows, "rr", {"test_err": meta})
    assert "s ERR↓" in table and "**0.1**" in table and "| 0.5 |" in table
    r = Results(name="x", model=ModelInfo(name="m", params=0), final=scores, metrics={"test_err": meta})
    write_results(tmp_path, r)
    back = Results.from_dict(__import__("json").loads((tmp_path / "results.json").read_text()))
    assert back.metrics["test_err"] == meta and back.final == scores
    assert "s ERR↓" in (tmp_path / "report.md").read_text()


def test_an_epoch_without_batches_is_an_error_not_a_hang():
    from panfw.errors import UserError

    loop = Loop(step=lambda b: 0.0, batches=lambda epoch, start: iter(()), steps_per_epoch=2, total_steps=4)
    with pytest.raises(UserError, match="gave no batch"):
        loop.run()
