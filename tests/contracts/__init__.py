"""Contract tests: parametrized over every registry, plus the structural rules of the core."""
