"""panfw bundled plugin: classic — parameter-free pan-sharpening methods (Vivone's toolbox set and
the plain Brovey, GIHS, PCA and SFIM), registered as models that need no checkpoint."""

from __future__ import annotations

import panfw

PAPER = "G. Vivone et al., \"A Critical Comparison Among Pansharpening Algorithms\" (the toolbox's methods)"
CODE = "https://github.com/liangjiandeng/DLPan-Toolbox (Vivone's MATLAB toolbox as shipped there)"

# Why torch.export (dynamic H, W) cannot take a method, as measured with torch 2.14; each names the
# step that needs concrete sizes or data-dependent control flow.
_MTF = ("its MTF low-pass runs as an FFT whose padded size and cached spectrum are chosen in Python "
        "per image size, so torch.export specialises H and W")
_IMRESIZE = ("MATLAB-style imresize builds its interpolation weights in NumPy for each concrete image "
             "size, which torch.export cannot trace with dynamic H, W")
_KMEANS = ("its k-means segmentation (random seeding, iterations until the labels settle) is "
           "data-dependent control flow that torch.export cannot trace")
_OMP = ("its joint-support orthogonal matching pursuit picks atoms by data-dependent control flow that "
        "torch.export cannot trace")

# the toolbox's TV pairs dual channels for 4 bands (other counts need corrected=True); the rest take any
FIXED_BANDS = {"tv": 4}

def methods() -> dict:
    """name -> (factory, exportable, summary or None for the factory's docstring). The method modules
    are imported here, not at the top, so loading the plugin (panfw --help) imports no torch."""
    from . import cs, mra, simple, variational

    return {
        "exp": (simple.exp, True, "EXP: the upsampled MS (lms) itself, the toolbox's reference"),
        "lms": (simple.exp, True, "Alias of exp: the upsampled MS as a no-fusion baseline"),
        "brovey": (simple.brovey, True, None),
        "gihs": (simple.gihs, True, None),
        "pca": (simple.pca, True, None),
        "sfim": (simple.sfim, True, None),
        "bt_h": (cs.bt_h, _MTF, None),
        "gs": (cs.gs, True, None),
        "gsa": (cs.gsa, True, None),
        "c_gsa": (cs.c_gsa, _KMEANS, None),
        "bdsd": (cs.bdsd, _IMRESIZE, None),
        "bdsd_pc": (cs.bdsd_pc, _IMRESIZE, None),
        "pracs": (cs.pracs, _IMRESIZE, None),
        "awlp": (mra.awlp, _IMRESIZE, None),
        "mtf_glp": (mra.mtf_glp, _MTF, None),
        "mtf_glp_fs": (mra.mtf_glp_fs, _MTF, None),
        "mtf_glp_hpm": (mra.mtf_glp_hpm, _MTF, None),
        "mtf_glp_hpm_h": (mra.mtf_glp_hpm_h, _MTF, None),
        "mtf_glp_hpm_r": (mra.mtf_glp_hpm_r, _MTF, None),
        "mtf_glp_cbd": (mra.mtf_glp_cbd, _MTF, None),
        "c_mtf_glp_cbd": (mra.c_mtf_glp_cbd, _KMEANS, None),
        "mf": (mra.mf, _IMRESIZE, None),
        "sr_d": (mra.sr_d, _OMP, None),
        "tv": (variational.tv, _IMRESIZE, None),
    }


@panfw.hookimpl
def register_models(register):
    for name, (factory, exportable, summary) in methods().items():
        meta = {"reference_params": 0, "fixed_bands": FIXED_BANDS.get(name), "exportable": exportable,
                "family": "classic", "paper": PAPER, "code": CODE}
        if summary:
            meta["summary"] = summary
        register(name, factory, **meta)
