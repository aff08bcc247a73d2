"""mkdocs hook: the model zoo (one page per registry kind) and the recipes page, generated at build
time from what is installed, so a new plugin or recipe shows up without editing the docs.

The zoo reads the registries through ``panfw.describe.record`` (the records ``panfw list KIND --json``
prints): name, summary, plugin, options with defaults, entry metadata, and for models the parameter
count and FLOPs measured with ``torch.utils.flop_counter`` at a 128x128 PAN. ``PANFW_DOCS_COST=0``
leaves the measurements out (a quicker ``mkdocs serve``); CI builds with them.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

log = logging.getLogger("mkdocs.plugins.panfw")

ROOT = Path(__file__).resolve().parents[2]
ZOO_NAV_TITLE = "Model zoo"
# mkdocs serve rebuilds on every edit; the registries do not change within one process
_CACHE: dict[str, Any] = {}

KIND_TEXT = {
    "models": "Every model takes `(lms, pan, ms)` and returns the fused image on the PAN grid "
              "(see [the model contract](../plugins.md)). Parameters are counted at the default options; FLOPs are "
              "measured (2 x multiply-adds, `torch.utils.flop_counter`) for one image at a 128x128 PAN, "
              "next to the `2 x params x 128^2` proxy the PanTiny paper's tables use. The counter sees "
              "convolutions and matrix products only, not element-wise arithmetic, so for the classical "
              "methods, which are mostly element-wise, the figure is a lower bound.",
    "fusions": "Fusion blocks inject the PAN into a feature map: `factory(dim, pan_channels=1, **options)`, "
               "`forward(feat, pan) -> feat`. A recipe picks one with `model.fusion = NAME`.",
    "refines": "Refine heads: `factory(dim, **options)`, `forward(feat) -> feat`. A recipe picks one with "
               "`model.refine = NAME`.",
    "losses": "Loss terms a recipe composes with weights (`[[loss.terms]]`). Reference terms take "
              "`(pred, target)`; no-reference terms take `(pred, ms, pan, sensor=..., ratio=...)`.",
    "datasets": "Datasets a recipe names under `[data]` (`train`, `test`); each sample holds `ms`, `lms`, "
                "`pan` (and `gt` at reduced resolution) as float32 in [0, 1].",
    "metrics": "Quality indices, named in `eval.rr_metrics` and `eval.fr_metrics`.",
    "runtimes": "Runtimes that run a model or an exported file: `panfw fuse --backend NAME`, "
                "`panfw eval --backend NAME`.",
}


def _cell(value: Any) -> str:
    """A value as one Markdown table cell (pipes escaped, no line breaks)."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _code(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return f"`{text}`".replace("|", "\\|")


def _giga(flops: int | None) -> str:
    return "–" if flops is None else f"{flops / 1e9:.3f} G"


def _records() -> dict[str, list[dict[str, Any]]]:
    """Registry records per kind (cached for the process)."""
    want_cost = os.environ.get("PANFW_DOCS_COST", "1") != "0"
    key = f"records-{want_cost}"
    if key not in _CACHE:
        import panfw
        from panfw.describe import record
        from panfw.registries import KINDS

        out: dict[str, list[dict[str, Any]]] = {}
        for kind in KINDS:
            out[kind] = [record(entry, cost=want_cost) for entry in sorted(panfw.registry(kind), key=lambda e: e.name)]
        _CACHE[key] = out
    return _CACHE[key]


def _plugins() -> dict[str, dict[str, Any]]:
    """Plugin name -> {package, version, module}."""
    from panfw.plugins import get_system

    return {i.name: {"package": i.package, "version": i.version, "module": i.module}
            for i in get_system().info.values()}


def _plugin_cell(name: str, plugins: dict[str, dict[str, Any]]) -> str:
    info = plugins.get(name)
    if info and info.get("package"):
        return f"{name} ({info['package']})"
    return name


def _model_table(records: list[dict[str, Any]], plugins: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| model | family | plugin | params | FLOPs @128² (measured) | paper proxy 2·P·128² | summary |",
             "|---|---|---|---:|---:|---:|---|"]
    for rec in records:
        cost = rec.get("cost")
        params = f"{cost['params']:,}" if cost else "–"
        flops = _giga(cost["flops"]) if cost else "–"
        proxy = _giga(2 * cost["params"] * 128 ** 2) if cost and cost["params"] else "–"
        lines.append(f"| [{rec['name']}](#{rec['name']}) | {_cell(rec['meta'].get('family', ''))} | "
                     f"{_cell(_plugin_cell(rec['plugin'], plugins))} | {params} | {flops} | {proxy} | "
                     f"{_cell(rec['summary'])} |")
    return lines


def _entry_section(rec: dict[str, Any], plugins: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"## {rec['name']} {{ #{rec['name']} }}", ""]
    if rec["summary"]:
        lines += [rec["summary"], ""]
    lines.append(f"- plugin: `{rec['plugin']}`" + (
        f", package `{plugins[rec['plugin']]['package']}` {plugins[rec['plugin']]['version']}"
        if plugins.get(rec["plugin"], {}).get("package") else ""))
    meta = dict(rec["meta"])
    for key, label in (("family", "family"), ("paper", "paper"), ("code", "code")):
        if meta.get(key):
            value = meta.pop(key)
            value = f"<{value}>" if isinstance(value, str) and value.startswith("http") and " " not in value else value
            lines.append(f"- {label}: {value}")
    cost = rec.get("cost")
    if cost:
        ref = meta.pop("reference_params", None)
        params = f"- parameters: {cost['params']:,} trainable at {cost['bands']} bands"
        total = cost.get("params_total", cost["params"])
        if total != cost["params"]:
            params += f", {total:,} in all ({total - cost['params']:,} frozen)"
        if isinstance(ref, int):
            params += (" (the reference count)" if ref in (cost["params"], total) else f" (reference count {ref:,})")
        lines.append(params)
        if cost["flops"] is not None:
            proxy = f"; paper proxy 2 × params × 128² = {_giga(2 * cost['params'] * 128 ** 2)}"
            proxy = proxy if cost["params"] else ""
            lines.append(f"- FLOPs: {_giga(cost['flops'])} measured at a {cost['size']}×{cost['size']} PAN, "
                         f"ratio {cost['ratio']}{proxy}")
        else:
            lines.append(f"- FLOPs: not measured ({_cell(cost['error'])})")
    for key, value in meta.items():
        if value is None:
            continue
        if key == "exportable":
            value = "yes" if value is True else f"no: {value}"
        lines.append(f"- {key}: {_cell(value) if not isinstance(value, (dict, list)) else _code(value)}")
    lines.append("")
    if rec["options"]:
        lines += ["| option | default |", "|---|---|"]
        for opt in rec["options"]:
            default = "(required)" if opt["required"] else _code(opt["default"])
            lines.append(f"| `{opt['name']}` | {default} |")
        lines.append("")
    if rec.get("accepts_any_option"):
        lines += ["Accepts further keyword options.", ""]
    return lines


def zoo_pages() -> dict[str, str]:
    """{path under docs/: Markdown} for zoo/index.md and one page per registry kind."""
    from panfw.registries import KINDS, kind_of

    records = _records()
    plugins = _plugins()
    pages: dict[str, str] = {}
    index = ["# Model zoo", "",
             "Generated when the site is built, from the registries of the installed plugins "
             "(`panfw list KIND --json` prints the same records). Installing a plugin adds its entries "
             "here; nothing on these pages is written by hand.", "",
             "| kind | entries | |", "|---|---:|---|"]
    for kind in KINDS:
        recs = records.get(kind, [])
        index.append(f"| [{kind}]({kind}.md) | {len(recs)} | {_cell(KIND_TEXT.get(kind, '').split('. ')[0])} |")
        lines = [f"# {kind.capitalize()}", "", KIND_TEXT.get(kind, ""), "",
                 f"{len(recs)} registered. `panfw show {kind_of(kind).singular} NAME` prints one entry; "
                 f"`panfw list {kind} --json` all of them.", ""]
        if kind == "models":
            lines += _model_table(recs, plugins)
            if recs and "cost" not in recs[0]:
                lines += ["", "!!! note", "    This build skipped the measurements (`PANFW_DOCS_COST=0`)."]
        else:
            lines += ["| name | plugin | summary |", "|---|---|---|"]
            lines += [f"| [{r['name']}](#{r['name']}) | {_cell(_plugin_cell(r['plugin'], plugins))} | "
                      f"{_cell(r['summary'])} |" for r in recs]
        lines.append("")
        for rec in recs:
            lines += _entry_section(rec, plugins)
        pages[f"zoo/{kind}.md"] = "\n".join(lines) + "\n"
    by_plugin: dict[str, list[str]] = {}
    for kind in KINDS:
        for rec in records.get(kind, []):
            by_plugin.setdefault(rec["plugin"], []).append(f"[{rec['name']}]({kind}.md#{rec['name']})")
    index += ["", "## By plugin", "", "| plugin | package | entries |", "|---|---|---|"]
    for name in sorted(by_plugin):
        info = plugins.get(name, {})
        pkg = f"{info.get('package', '')} {info.get('version', '')}".strip()
        index.append(f"| {name} | {_cell(pkg)} | {', '.join(by_plugin[name])} |")
    pages["zoo/index.md"] = "\n".join(index) + "\n"
    return pages


def _leading_comment(text: str) -> str:
    """The recipe's leading comment joined into one paragraph, up to its first blank comment line."""
    parts: list[str] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        body = line.lstrip("#").strip()
        if not body:
            if parts:
                break
            continue
        parts.append(body)
    return " ".join(parts)


SENTENCE_END = re.compile(r"(?<!\bEq)(?<!\bFig)(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)(?<!\bcf)(?<!\bno)\.\s")


def _first_sentence(text: str) -> str:
    """The text up to its first full stop (abbreviations such as "Eq." and "e.g." are not one)."""
    match = SENTENCE_END.search(text)
    return text[:match.start() + 1] if match else text


def _datasets(specs: Any) -> str:
    out = []
    for spec in specs:
        opts = ",".join(f"{k}={v}" for k, v in spec.options.items())
        out.append(f"`{spec.name}{':' + opts if opts else ''}`")
    return ", ".join(out)


def recipes_page(model_names: set[str] | None = None) -> str:
    """recipes.md: every bundled recipe with what it extends, its model, data and description."""
    from panfw.config.recipe import load_recipe

    root = ROOT / "recipes"
    lines = ["# Recipes", "",
             "The recipes shipped with panfw, generated from `recipes/**/*.toml` when the site is built. "
             "`panfw run NAME` runs one from any folder (`panfw recipes` lists them); "
             "`panfw validate FILE` prints one resolved. The description is the recipe's leading comment.", "",
             "| recipe | description | extends | model | train | test | variants |",
             "|---|---|---|---|---|---|---:|"]
    details: list[str] = []
    for path in sorted(root.rglob("*.toml")):
        name = path.relative_to(root).with_suffix("").as_posix()
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
        try:
            recipe = load_recipe(str(path), [])
        except Exception as exc:  # noqa: BLE001 - a recipe that does not load must fail the strict build
            log.warning("recipe %s does not load: %s", name, exc)
            continue
        model = recipe.model.name
        model_cell = (f"[{model}](zoo/models.md#{model})" if model_names is None or model in model_names
                      else f"`{model}`")
        opts = ", ".join(f"{k}={v!r}" for k, v in recipe.model.options.items())
        extends = raw.get("extends", "")
        anchor = name.replace("/", "-")
        model_cell += f" ({_cell(opts)})" if opts else ""
        summary = _first_sentence(_leading_comment(text) or recipe.description or "")
        lines.append(f"| [{name}](#{anchor}) | {_cell(summary)} | {_cell(extends)} | {model_cell} | "
                     f"{_cell(_datasets(recipe.data.train))} | {_cell(_datasets(recipe.data.test))} | "
                     f"{len(recipe.sweep) or ''} |")
        details += [f"## {name} {{ #{anchor} }}", "", _leading_comment(text) or recipe.description or "", ""]
        details.append(f"`panfw run recipes/{name}.toml`" + (f" — {len(recipe.sweep)} variants: "
                       + ", ".join(f"`{v.name}`" for v in recipe.sweep) if recipe.sweep else ""))
        details.append("")
    return "\n".join(lines + [""] + details) + "\n"


# The PanTiny paper's printed sizes (Table 1; Table 5 for Large/Huge; the fusion and refine ablation
# sizes of Tables 7-8 as rounded in its supplementary tables): (label, model, options, params K, FLOPs G).
PAPER_COSTS: list[tuple[str, str, dict[str, Any], float, float | None]] = [
    ("PanTiny (Small)", "pantiny_small", {}, 48.3, 1.58),
    ("PanTiny (Big)", "pantiny_big", {}, 81.7, 2.68),
    ("PanTiny (Large Body)", "pantiny_large", {}, 172.4, None),
    ("PanTiny (Huge Body)", "pantiny_huge", {}, 195.9, None),
    ("Fusion: 1x1 Conv", "pantiny_big", {"fusion": "conv1x1"}, 68.2, None),
    ("Fusion: Channel Attn.", "pantiny_big", {"fusion": "channel_attention"}, 71.4, None),
    ("Fusion: Gated Conv", "pantiny_big", {"fusion": "gated_conv"}, 70.3, None),
    ("Fusion: DeepFusion", "pantiny_big", {"fusion": "deepfusion"}, 113.6, None),
    ("Refine: Channel Attn.", "pantiny_big", {"refine": "channel_attention"}, 96.4, None),
    ("Refine: Large Conv", "pantiny_big", {"refine": "large_conv"}, 88.8, None),
    ("PNN", "pnn", {}, 68.9, 2.26),
    ("PanNet", "pannet", {}, 80.3, 2.63),
    ("MSDCNN", "msdcnn", {}, 239.0, 7.83),
    ("PanFlow", "panflow", {}, 87.3, 2.86),
    ("PSCINN", "pscinn", {}, 3321.5, 108.84),
    ("Pan-Mamba", "panmamba", {}, 488.8, 16.02),
]
COST_MARKER = "<!-- panfw:paper-costs -->"


def paper_cost_table() -> str:
    """The paper's printed parameter counts and FLOPs beside panfw's count and measurement, built now."""
    import panfw
    from panfw.evaluation.cost import count_params, measure_flops

    want_cost = os.environ.get("PANFW_DOCS_COST", "1") != "0"
    by_name = {r["name"]: r for r in _records()["models"]}
    lines = ["| paper's model | panfw | paper params | panfw params | paper FLOPs | 2·P·128² (panfw P) | "
             "measured FLOPs @128² | measured / paper |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for label, name, options, paper_k, paper_g in PAPER_COSTS:
        spec = f"[{name}](zoo/models.md#{name})" + "".join(f", `{k}={v}`" for k, v in options.items())
        if name not in panfw.registry("models"):
            lines.append(f"| {label} | `{name}` (not registered in this build) | {paper_k:,.1f}K | – | "
                         f"{'–' if paper_g is None else f'{paper_g:.2f} G'} | – | – | – |")
            continue
        cached = by_name.get(name, {}).get("cost") if not options else None
        if cached is not None:
            params, flops = cached["params"], cached["flops"]
        else:
            model = panfw.create_model(name, **options)
            params = count_params(model)
            flops = measure_flops(model, bands=4, size=128) if want_cost else None
        proxy = 2 * params * 128 ** 2
        ratio = "–" if flops is None or paper_g is None else f"{flops / (paper_g * 1e9):.2f}"
        lines.append(f"| {label} | {spec} | {paper_k:,.1f}K | {params:,} | "
                     f"{'–' if paper_g is None else f'{paper_g:.2f} G'} | {proxy / 1e9:.3f} G | "
                     f"{_giga(flops)} | {ratio} |")
    if not want_cost:
        lines += ["", "!!! note", "    This build skipped the FLOP measurements (`PANFW_DOCS_COST=0`)."]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fill the reproduction page's generated table."""
    if page.file.src_uri == "reproduction.md" and COST_MARKER in markdown:
        markdown = markdown.replace(COST_MARKER, paper_cost_table())
    return markdown


def generated_pages() -> dict[str, str]:
    """Every generated page, {path under docs/: Markdown}."""
    pages = zoo_pages()
    names = {rec["name"] for rec in _records()["models"]}
    pages["recipes.md"] = recipes_page(names)
    return pages


def on_config(config: Any) -> Any:
    """Expand the nav's "Model zoo" entry into the overview and one page per registry kind."""
    from panfw.registries import KINDS

    nav = config.get("nav") or []
    for i, item in enumerate(nav):
        if isinstance(item, dict) and ZOO_NAV_TITLE in item and isinstance(item[ZOO_NAV_TITLE], str):
            nav[i] = {ZOO_NAV_TITLE: ["zoo/index.md"] + [{k.capitalize(): f"zoo/{k}.md"} for k in KINDS]}
    return config


def on_files(files: Files, config: Any) -> Files:
    """Add the generated pages to the build."""
    for path, content in generated_pages().items():
        existing = files.get_file_from_path(path)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, path, content=content))
    return files
