"""A third-party fusion block: install the example plugin package, see panfw discover it, and use its
block in a recipe that compares it with PanTiny Small's own fusion.

    python docs/tutorials/fusion_plugin.py            # two quickstart-sized runs (minutes)
    python docs/tutorials/fusion_plugin.py --tiny     # 2 steps each on tiny data (what the tests run)

The package (plugins/examples/panfw-example-fusion) is installed into a private folder put on
PYTHONPATH, so this environment is left as it was; in your own project you would simply
``pip install`` your package. panfw finds plugins when it starts, so the commands run in a new process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from panfw.config.bundled import recipes_dir

EXAMPLE = Path(__file__).resolve().parents[2] / "plugins" / "examples" / "panfw-example-fusion"


def panfw(env: dict[str, str], *args: str) -> str:
    """Run ``panfw ARGS`` in a new process with ``env``; print and return its output."""
    print("$ panfw " + " ".join(args), flush=True)
    proc = subprocess.run([sys.executable, "-m", "panfw", *args], env=env, capture_output=True, text=True)
    print(proc.stdout, end="")
    if proc.returncode:
        sys.exit(f"panfw {args[0]} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few steps on tiny data (seconds)")
    parser.add_argument("--out", default="runs/tutorials", help="where the package, recipe and runs go")
    args = parser.parse_args()
    out = Path(args.out).resolve()

    # 1. Install the package. Its pyproject.toml declares the entry point that panfw discovers:
    #        [project.entry-points.panfw]
    #        example_fusion = "panfw_example_fusion"
    source = out / "panfw-example-fusion"
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = out / "site-packages"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--upgrade", "--target", str(site), str(source)], check=True, cwd=out)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))

    # 2. panfw now lists the package, its hook and the block it registered.
    listing = panfw(env, "plugins")
    assert "fusions: example_gate" in listing
    panfw(env, "show", "fusion", "example_gate")

    # 3. A recipe that names the block: the quickstart, once with PanTiny Small's own gated fusion
    #    and once with the plugin's, ending with one comparison table.
    recipe = out / "example_gate.toml"
    parent = os.path.relpath(recipes_dir() / "quickstart.toml", recipe.parent)
    recipe.write_text(f'''# The quickstart with a third-party fusion block beside PanTiny Small's own.
extends = "{Path(parent).as_posix()}"
name = "example_gate"

[eval]
baselines = ["lms"]

[[sweep]]
name = "attention_gate"
set = {{ "model.fusion" = "attention_gate" }}

[[sweep]]
name = "example_gate"
set = {{ "model.fusion" = "example_gate" }}
''')
    panfw(env, "validate", str(recipe))
    overrides = ["-s", f"output.dir={out.as_posix()}"]
    if args.tiny:
        for i in range(3):
            overrides += ["-s", f"data.train.{i}.n=16", "-s", f"data.test.{i}.n=1", "-s", f"data.test.{i}.size=64"]
        overrides += ["-s", "train.steps=2", "-s", "eval.figures=0", "-s", 'eval.fr_metrics=["qnr"]']
    panfw(env, "run", str(recipe), *overrides)


if __name__ == "__main__":
    main()
