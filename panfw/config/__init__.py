"""Recipes: TOML in, a validated attrs object out (extends chains, ``-s`` overrides, sweeps)."""
