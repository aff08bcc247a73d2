"""Every index of the toolbox test vectors (../shared/testdata) reproduced by panfw's metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import panfw
from panfw_metrics import functional as Fm

RR_KEYS = {"Q2n": "q2n", "Q_avg": "q", "SAM_deg": "sam", "ERGAS": "ergas", "SCC": "scc"}
FR_KEYS = {"D_lambda": "d_lambda", "D_S": "d_s", "QNR": "qnr", "D_lambda_K": "d_lambda_k", "HQNR": "hqnr"}
RTOL = 1e-10  # float64 ports reach ~3e-14 here; the brief asks 1e-6


@pytest.fixture(scope="module")
def vectors(testdata_dir):
    js = json.loads((testdata_dir / "toolbox_vectors.json").read_text())
    files = {name: dict(np.load(testdata_dir / name)) for name in ("scene4_wv3.npz", "scene8_wv3.npz")}
    return js, files


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _rr_cases(js):
    return sorted(js["rr"]["cases"])


def _close(value: float, expected: float, rtol: float = RTOL, atol: float = 1e-13) -> None:
    assert value == pytest.approx(expected, rel=rtol, abs=atol), (value, expected)


def _rr_case(vectors, name):
    js, files = vectors
    case = js["rr"]["cases"][name]
    arr = files[case["file"]]
    cut = 0 if case.get("settings_override", {}).get("flag_cut_bounds", 1) == 0 else 21
    return case, _t(arr[case["fused"]]), _t(arr[case["gt"]]), cut


RR_NAMES = ["rr4_noise", "rr4_blur", "rr4_gain_offset", "rr8", "rr4_noise_nocut", "rr4_identity", "rr8_identity"]


def test_all_rr_cases_covered(vectors):
    assert sorted(RR_NAMES) == _rr_cases(vectors[0])


@pytest.mark.parametrize("name", RR_NAMES)
def test_rr_functional(vectors, name):
    case, fused, gt, cut = _rr_case(vectors, name)
    out = Fm.rr_indices(fused, gt, ratio=4, block=32, cut=cut)
    got = {"Q2n": out["Q2n"], "Q_avg": out["Q_avg"], "SAM_deg": out["SAM"], "ERGAS": out["ERGAS"], "SCC": out["SCC"]}
    for key, expected in case["values"].items():
        _close(float(got[key]), expected)


@pytest.mark.parametrize(("names", "cut"), [(["rr4_noise", "rr4_blur", "rr4_gain_offset", "rr4_identity"], 21),
                                           (["rr8", "rr8_identity"], 21), (["rr4_noise_nocut"], 0)])
def test_rr_metric_objects_from_unit_range(vectors, names, cut):
    """The registered metrics on a batch of [0,1] float64 inputs (DN / 2047), sensor wv3."""
    cases = [_rr_case(vectors, n) for n in names]
    f = torch.stack([c[1] for c in cases]) / 2047
    g = torch.stack([c[2] for c in cases]) / 2047
    for key, metric_name in RR_KEYS.items():
        v = panfw.create_metric(metric_name, cut=cut)(f, g, sensor="wv3")
        assert v.shape == (len(names),) and v.dtype == torch.float64
        for i, c in enumerate(cases):
            _close(float(v[i]), c[0]["values"][key])


def test_q2n_metric_on_dn_inputs(vectors):
    case, fused, gt, _ = _rr_case(vectors, "rr8")
    _close(float(panfw.create_metric("q2n", scale=1)(fused, gt)[0]), case["values"]["Q2n"])
    _close(float(panfw.create_metric("q2n", scale=1.0)(fused[None], gt[None], sensor="gf2")[0]),
           case["values"]["Q2n"])


def test_q2n_rounds_ties_away_from_zero(vectors):
    case, fused, gt, _ = _rr_case(vectors, "rr4_gain_offset")
    ties = case["exact_ties"]
    f, g = Fm.cut_bounds(fused, 21), Fm.cut_bounds(gt, 21)
    assert int(((f - f.floor()) == 0.5).sum()) == ties["count_in_cut_region"]
    _close(float(Fm.q2n(f, g)), case["values"]["Q2n"])
    # what a port rounding half to even gets: must differ from the toolbox
    half_even = Fm.q2n(torch.round(f), g)
    _close(float(half_even), ties["Q2n_if_ties_rounded_half_to_even"])
    assert abs(float(half_even) - case["values"]["Q2n"]) > 1e-5


def _fr_inputs(vectors, case_name, variant):
    js, files = vectors
    case = js["fr"]["cases"][case_name]
    arr = files[case["file"]]
    names = {k.split()[0]: v for k, v in case["arrays"].items()}
    sensor = "wv3" if "WV3" in variant else "none"
    lms = None if variant.endswith("lms_unrounded") else _t(arr[names["I_MS"]])
    return (case[variant], _t(arr[names["I_F"]]), _t(arr[names["I_MS_LR"]]), _t(arr[names["I_PAN"]]),
            lms, sensor)


FR_VARIANTS = [("fr4", "sensor_WV3"), ("fr4", "sensor_none"), ("fr4", "sensor_WV3_lms_unrounded"),
               ("fr4", "sensor_none_lms_unrounded"), ("fr8", "sensor_WV3"), ("fr8", "sensor_none")]


def test_all_fr_cases_covered(vectors):
    js = vectors[0]
    have = sorted((c, v) for c in js["fr"]["cases"] for v in js["fr"]["cases"][c] if v.startswith("sensor_"))
    assert have == sorted(FR_VARIANTS)


@pytest.mark.parametrize(("case_name", "variant"), FR_VARIANTS)
def test_fr_functional(vectors, case_name, variant):
    """indexes_evaluation_FS; the lms_unrounded variants go ms -> panfw's interp23tap -> indices."""
    expected, fused, ms, pan, lms, sensor = _fr_inputs(vectors, case_name, variant)
    out = Fm.fr_indices(fused, ms, pan, sensor, ratio=4, lms=lms)
    for key in FR_KEYS:
        _close(float(out[key]), expected[key])
    _close(float(out["D_S"]), expected["D_S_of_flagQNR0_call"])


@pytest.mark.parametrize(("case_name", "lms_variant"), [("fr4", ""), ("fr4", "_lms_unrounded"), ("fr8", "")])
def test_fr_metric_objects_from_unit_range(vectors, case_name, lms_variant):
    """The registered metrics on [0,1] inputs, one batch holding the WV3 and the 'none' variant
    (per-image sensors); lms=None goes through interp23tap."""
    exp_wv3, fused, ms, pan, lms, _ = _fr_inputs(vectors, case_name, "sensor_WV3" + lms_variant)
    exp_none = _fr_inputs(vectors, case_name, "sensor_none" + lms_variant)[0]
    f, m, p = (torch.stack([x, x]) / 2047 for x in (fused, ms, pan))
    lm = None if lms is None else torch.stack([lms, lms]) / 2047
    cache: dict = {}
    for key, metric_name in FR_KEYS.items():
        v = panfw.create_metric(metric_name)(f, m, p, sensor=["wv3", "none"], lms=lm, cache=cache)
        assert v.shape == (2,) and v.dtype == torch.float64
        _close(float(v[0]), exp_wv3[key])
        _close(float(v[1]), exp_none[key])


def test_fr_separate_functions_agree(vectors):
    expected, fused, ms, pan, lms, sensor = _fr_inputs(vectors, "fr8", "sensor_WV3")
    _close(float(Fm.d_lambda(fused, lms)), expected["D_lambda"])
    _close(float(Fm.d_s(fused, lms, pan, ratio=4)), expected["D_S"])
    _close(float(Fm.qnr(fused, lms, pan, ratio=4)), expected["QNR"])
    _close(float(Fm.d_lambda_k(fused, lms, "wv3", ratio=4)), expected["D_lambda_K"])
    _close(float(Fm.hqnr(fused, lms, pan, "wv3", ratio=4)), expected["HQNR"])
    # a 2-D PAN and a batched call give the same numbers
    _close(float(Fm.d_s(fused, lms, pan[0], ratio=4)), expected["D_S"])
    batched = Fm.hqnr(fused[None].repeat(2, 1, 1, 1), lms[None].repeat(2, 1, 1, 1), pan[None].repeat(2, 1, 1, 1),
                      "wv3", ratio=4)
    assert batched.shape == (2,)
    _close(float(batched[1]), expected["HQNR"])


def test_float32_inputs_stay_close(vectors):
    """float32 [0,1] inputs (the dataset contract) move the indices by float32 rounding only."""
    case, fused, gt, _ = _rr_case(vectors, "rr8")
    f, g = (fused[None] / 2047).float(), (gt[None] / 2047).float()
    for key, metric_name in RR_KEYS.items():
        v = float(panfw.create_metric(metric_name)(f, g, sensor="wv3")[0])
        assert v == pytest.approx(case["values"][key], rel=1e-6)
