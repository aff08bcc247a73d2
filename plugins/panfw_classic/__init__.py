"""panfw bundled plugin: classic — parameter-free pan-sharpening methods (Vivone's toolbox set and
the plain Brovey, GIHS, PCA and SFIM), registered as models that need no checkpoint."""

from __future__ import annotations

import importlib

import panfw


def _optional(module: str):
    """A sibling module that may not exist yet (None then); its own import errors still raise."""
    try:
        return importlib.import_module(f"{__name__}.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{module}":
            raise
        return None


@panfw.hookimpl
def register_models(register):
    from . import cs, simple

    # --- simple baselines and plain methods (classic-CS helper) ---
    register("exp", simple.exp, summary="EXP: the upsampled MS (lms) itself, the toolbox's reference")
    register("lms", simple.exp, summary="Alias of exp: the upsampled MS as a no-fusion baseline")
    register("brovey", simple.brovey)
    register("gihs", simple.gihs)
    register("pca", simple.pca)
    register("sfim", simple.sfim)

    # --- component substitution (classic-CS helper) ---
    register("bt_h", cs.bt_h)
    register("gs", cs.gs)
    register("gsa", cs.gsa)
    register("c_gsa", cs.c_gsa)
    register("bdsd", cs.bdsd)
    register("bdsd_pc", cs.bdsd_pc)
    register("pracs", cs.pracs)

    # --- MRA methods (classic-MRA helper) ---
    mra = _optional("mra")
    variational = _optional("variational")
    if mra is not None:
        register("awlp", mra.awlp)
        register("mtf_glp", mra.mtf_glp)
        register("mtf_glp_fs", mra.mtf_glp_fs)
        register("mtf_glp_hpm", mra.mtf_glp_hpm)
        register("mtf_glp_hpm_h", mra.mtf_glp_hpm_h)
        register("mtf_glp_hpm_r", mra.mtf_glp_hpm_r)
        register("mtf_glp_cbd", mra.mtf_glp_cbd)
        register("c_mtf_glp_cbd", mra.c_mtf_glp_cbd)
        register("mf", mra.mf)
        register("sr_d", mra.sr_d)
    if variational is not None:
        register("tv", variational.tv)
    # --- end MRA methods ---

