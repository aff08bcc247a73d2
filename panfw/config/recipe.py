"""TOML recipes -> validated attrs objects: ``extends`` chains, dotted overrides, sweeps.

A recipe is data, never code. Errors name the file, the key path, the bad value and what would be
accepted; they are ``RecipeError`` (a ``UserError``), which the CLI prints without a traceback.
"""

from __future__ import annotations

import copy
import typing
from pathlib import Path
from typing import Any

import attrs
import tomli_w
import tomllib

from panfw._suggest import did_you_mean, known_list
from panfw.errors import RecipeError, UserError

OPTIONS = "options"  # the field that collects the free keys of an open section


def _field(default: Any = attrs.NOTHING, *, choices: tuple | None = None, min: float | None = None,
           doc: str = "", factory: Any = None) -> Any:
    meta = {"choices": choices, "min": min, "doc": doc}
    if factory is not None:
        return attrs.field(factory=factory, metadata=meta)
    return attrs.field(default=default, metadata=meta)


@attrs.define
class ModelSpec:
    """``[model]``: a registered model name; every other key is an option of its factory."""

    name: str = _field("pantiny_small", doc="registered model name (panfw list models)")
    options: dict = _field(factory=dict)


@attrs.define
class LossTerm:
    """One weighted term of the loss; keys other than name and weight are the loss's options."""

    name: str = _field(doc="registered loss name (panfw list losses)")
    weight: float = _field(1.0)
    options: dict = _field(factory=dict)


@attrs.define
class LossSpec:
    """``[loss]``: the weighted sum of ``terms``."""

    terms: list[LossTerm] = _field(factory=lambda: [LossTerm("l1")])


@attrs.define
class DatasetSpec:
    """One dataset: a registered name; every other key is an option of its factory."""

    name: str = _field(doc="registered dataset name (panfw list datasets)")
    options: dict = _field(factory=dict)


@attrs.define
class DataSpec:
    """``[data]``: training sets (mixed all-in-one) and test sets (default: the training sets)."""

    root: str = _field("", doc="PanCollection folder; empty: $PANFW_DATA")
    train: list[DatasetSpec] = _field(factory=list)
    test: list[DatasetSpec] = _field(factory=list)
    mixing: str = _field("concat", choices=("concat", "balanced"))
    num_workers: int = _field(0, min=0)
    cache: bool = _field(False, doc="keep the training samples in memory as float32")


@attrs.define
class TrainSpec:
    """``[train]``: optimisation settings."""

    epochs: int = _field(1, min=0)
    steps: int = _field(0, min=0, doc="if > 0, stop after this many steps")
    batch_size: int = _field(16, min=1)
    optimizer: str = _field("adam", choices=("adam", "adamw"))
    lr: float = _field(5e-4, min=0)
    weight_decay: float = _field(1e-4, min=0)
    betas: list[float] = _field(factory=lambda: [0.9, 0.999])
    scheduler: str = _field("cosine", choices=("cosine", "constant"))
    min_lr: float = _field(1e-6, min=0)
    warmup_epochs: float = _field(0.0, min=0)
    grad_clip: float = _field(0.0, min=0)
    ema: float = _field(0.0, min=0, doc="EMA decay of the weights; 0 = off")
    amp: bool = _field(False, doc="mixed precision (CUDA only)")
    compile: bool = _field(False, doc="torch.compile the model")
    device: str = _field("auto")
    deterministic: bool = _field(False)
    log_every: int = _field(10, min=1)
    save_every: int = _field(-1, min=-1, doc="steps between mid-epoch checkpoints (last.pt); -1: four "
                             "times per epoch, 0: only at epoch ends")


@attrs.define
class EvalSpec:
    """``[eval]``: when and how the run is scored."""

    every: int = _field(1, min=0, doc="evaluate every N epochs (0: only at the end)")
    rr_metrics: list[str] = _field(factory=lambda: ["psnr", "ssim", "sam", "ergas", "q2n"])
    fr_metrics: list[str] = _field(factory=lambda: ["d_lambda", "d_s", "qnr", "hqnr"])
    best: str = _field("psnr", doc="reduced-resolution metric that picks the best checkpoint")
    baselines: list[str] = _field(factory=list, doc="parameter-free models reported beside the run")
    max_images: int = _field(0, min=0, doc="score at most N images per test set (0: all)")
    figures: int = _field(3, min=0)


@attrs.define
class OutputSpec:
    """``[output]``: where runs are written."""

    dir: str = _field("runs")


@attrs.define
class AdaptSpec:
    """``[adapt]``: one-shot per-scene adaptation (``panfw adapt``, panfw.procedures.adapt; docs/adapt.md).
    The defaults are panfw's: the TRA-PAN paper gives none."""

    model: str = _field("", doc="backbone: checkpoint, run dir or registered name; empty: fusionnet, else "
                                "pantiny_small, from initialisation")
    sensor: str = _field("", doc="sensor (MTF gains, bit depth); empty: the checkpoint's, else generic")
    bits: int = _field(0, min=0, doc="bit depth of the data; 0: from the sensor, else from the data range")
    device: str = _field("auto")
    response_hidden: int = _field(32, min=1, doc="width of the spectral response network R")
    response_steps: int = _field(300, min=0)
    response_lr: float = _field(3e-2, min=0)
    warmup_steps: int = _field(50, min=0, doc="reduced-resolution steps before the alternation")
    warmup_lr: float = _field(1e-3, min=0)
    steps: int = _field(200, min=0, doc="steps of the random alternation")
    lr: float = _field(5e-4, min=0)
    p_fr: float = _field(0.75, min=0, doc="probability of a full-resolution step")
    crop: int = _field(64, min=8, doc="training crop side in PAN pixels")
    batch_size: int = _field(4, min=1)
    flips: bool = _field(True, doc="random flips and transposes of the crops")
    spectral_weight: float = _field(8.0, min=0)
    spatial_weight: float = _field(1.0, min=0)
    norm: str = _field("l1", choices=("l1", "l2", "charbonnier"), doc="norm of the full-resolution losses")
    quality_weight: float = _field(0.5, min=0, doc="weight of the D_s-like loss spatial_quality (FR steps)")
    quality_block: int = _field(16, min=2, doc="block side of spatial_quality")
    schedule: str = _field("cosine", choices=("cosine", "constant"), doc="alternation learning rate: cosine "
                           "from lr to lr/10, or constant")
    rr_loss: str = _field("l1", doc="registered loss of the reduced-resolution steps")
    margin: int = _field(2, min=0, doc="MS pixels left out at crop borders by the full-resolution losses")
    pan_mode: str = _field("mtf", choices=("mtf", "bicubic"), doc="PAN degradation of the reduced pairs")
    select: str = _field("hqnr", choices=("hqnr", "last"), doc="keep the weights of best HQNR, or the last")
    select_every: int = _field(25, min=0)
    eval_size: int = _field(512, min=32, doc="side of the centred window that scores candidates (PAN px)")
    grad_clip: float = _field(0.0, min=0)
    region: int = _field(1024, min=64, doc="side of a training region in PAN pixels (large scenes)")
    regions: int = _field(4, min=1, doc="at most this many training regions of a large scene")
    baselines: list[str] = _field(factory=lambda: ["mtf_glp_fs"], doc="parameter-free methods scored beside")
    tile: int = _field(0, min=0, doc="tile side of the final fusion; 0: panfw fuse's default")
    overlap: int = _field(-1, min=-1, doc="tile overlap of the final fusion; -1: panfw fuse's default")


@attrs.define
class SweepVariant:
    """One ``[[sweep]]`` entry: a named set of dotted overrides."""

    name: str = _field()
    set: dict = _field(factory=dict)


@attrs.define
class Recipe:
    """A whole recipe."""

    name: str = _field("")
    description: str = _field("")
    seed: int = _field(0)
    model: ModelSpec = _field(factory=ModelSpec)
    loss: LossSpec = _field(factory=LossSpec)
    data: DataSpec = _field(factory=DataSpec)
    train: TrainSpec = _field(factory=TrainSpec)
    eval: EvalSpec = _field(factory=EvalSpec)
    output: OutputSpec = _field(factory=OutputSpec)
    adapt: AdaptSpec = _field(factory=AdaptSpec)
    sweep: list[SweepVariant] = _field(factory=list)

    def to_dict(self) -> dict:
        """The recipe as TOML-ready data (open sections flattened, as written by users)."""
        return _unstructure(self)

    def to_toml(self) -> str:
        """The resolved recipe as TOML; ``loads_recipe`` of it gives an equal object."""
        return tomli_w.dumps(self.to_dict())

    def variants(self) -> list[tuple[str, Recipe]]:
        """The runs this recipe stands for: itself, or one resolved recipe per sweep variant."""
        if not self.sweep:
            return [(self.name, self)]
        out = []
        base = self.to_dict()
        base.pop("sweep", None)
        for v in self.sweep:
            data = copy.deepcopy(base)
            origins: dict = {}
            for key, value in v.set.items():
                _set_dotted(data, key, value, origins, f"sweep variant {v.name!r}")
            data["name"] = f"{self.name}/{v.name}"
            out.append((v.name, structure(data, {}, "<sweep>")))
        return out


OPEN_SECTIONS = {ModelSpec, LossTerm, DatasetSpec}


# ---------------------------------------------------------------------------------------------
# loading


def load_recipe(path: str | Path, overrides: list[str] | None = None, *, check: bool = True) -> Recipe:
    """Load a recipe file with its ``extends`` chain, apply ``key=value`` overrides and validate.
    ``path`` that is not a file names a bundled recipe (``panfw.config.bundled``)."""
    from panfw.config.bundled import find_recipe

    path = find_recipe(path)
    origins: dict = {}
    data = _load_chain(path, [], origins)
    data.setdefault("name", path.stem)
    origins.setdefault(("name",), str(path))
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"command line: override {item!r} is not KEY=VALUE (e.g. -s train.epochs=2)")
        _set_dotted(data, key.strip(), parse_value(raw.strip()), origins, f"command line (-s {item})")
    recipe = structure(data, origins, str(path))
    if check:
        check_names(recipe, origins, str(path))
    return recipe


def loads_recipe(text: str, *, source: str = "<string>", check: bool = True) -> Recipe:
    """Load a recipe from TOML text (no ``extends``)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{source}: not valid TOML: {exc}") from None
    origins: dict = {}
    _record_origins(data, (), source, origins)
    recipe = structure(data, origins, source)
    if check:
        check_names(recipe, origins, source)
    return recipe


def parse_value(raw: str) -> Any:
    """A command-line value: TOML syntax (2, 1e-3, true, [1, 2], "x"), else the bare string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _load_chain(path: Path, stack: list[Path], origins: dict) -> dict:
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join(str(p) for p in [*stack, resolved])
        raise RecipeError(f"{stack[-1]}: extends: cycle in the extends chain: {chain}")
    if not path.is_file():
        where = f"{stack[-1]}: extends: " if stack else ""
        raise RecipeError(f"{where}recipe file {str(path)!r} not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise RecipeError(f"{path}: not a UTF-8 text file") from None
    parent_ref = data.pop("extends", None)
    mine: dict = {}
    _record_origins(data, (), str(path), mine)
    if parent_ref is None:
        origins.update(mine)
        return data
    if not isinstance(parent_ref, str):
        raise RecipeError(f"{path}: extends: expected a relative path string, got {parent_ref!r}")
    parent = _load_chain(path.parent / parent_ref, [*stack, resolved], origins)
    parent.pop("name", None)  # a name belongs to its own file
    merged = _deep_merge(parent, data)
    origins.update(mine)
    return merged


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "set":
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _record_origins(data: Any, prefix: tuple, source: str, origins: dict) -> None:
    origins[prefix] = source
    if isinstance(data, dict):
        for k, v in data.items():
            _record_origins(v, (*prefix, k), source, origins)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _record_origins(v, (*prefix, i), source, origins)


def _set_dotted(data: dict, key: str, value: Any, origins: dict, source: str) -> None:
    parts: list[Any] = [int(p) if p.isdigit() else p for p in key.split(".")]
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(node, list):
            if not isinstance(part, int) or part >= len(node):
                raise RecipeError(f"{source}: {key}: index {part!r} is out of range (the list has "
                                  f"{len(node)} items)")
            node = node[part]
            continue
        if part not in node or not isinstance(node[part], dict | list):
            node[part] = [] if isinstance(nxt, int) else {}
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        if not isinstance(last, int) or last >= len(node):
            raise RecipeError(f"{source}: {key}: index {last!r} is out of range (the list has {len(node)} items)")
    node[last] = value
    _record_origins(value, tuple(parts), source, origins)


# ---------------------------------------------------------------------------------------------
# structure / unstructure


def _where(origins: dict, path: tuple, default: str) -> str:
    for n in range(len(path), -1, -1):
        if path[:n] in origins:
            return origins[path[:n]]
    return default


def _keystr(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _fail(origins: dict, path: tuple, default: str, msg: str) -> RecipeError:
    return RecipeError(f"{_where(origins, path, default)}: {_keystr(path)}: {msg}")


def structure(data: Any, origins: dict, source: str, cls: type = Recipe, path: tuple = ()) -> Any:
    """Turn plain TOML data into recipe classes, with an error naming file and key for bad input."""
    if not isinstance(data, dict):
        raise _fail(origins, path, source, f"expected a table, got {data!r}")
    fields = {f.name: f for f in attrs.fields(cls)}
    hints = typing.get_type_hints(cls)
    open_section = cls in OPEN_SECTIONS
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        kpath = (*path, key)
        if key not in fields or key == OPTIONS:
            if open_section:
                extra[key] = value
                continue
            accepted = [f for f in fields if f != OPTIONS]
            raise _fail(origins, kpath, source,
                        f"unknown key{did_you_mean(key, accepted)}; accepted: {known_list(accepted)}")
        kwargs[key] = _convert(value, hints[key], fields[key], origins, source, kpath)
    for name, f in fields.items():
        if name not in kwargs and name != OPTIONS and f.default is attrs.NOTHING:
            raise _fail(origins, path, source, f"missing required key {name!r}")
    if open_section:
        kwargs[OPTIONS] = extra
    return cls(**kwargs)


def _convert(value: Any, hint: Any, field: Any, origins: dict, source: str, path: tuple) -> Any:
    meta = field.metadata if field is not None else {}
    origin = typing.get_origin(hint)
    if attrs.has(hint):
        return structure(value, origins, source, hint, path)
    if origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, str) and item is str:
            value = [value]
        if not isinstance(value, list):
            raise _fail(origins, path, source, f"expected a list, got {value!r}")
        return [_convert(v, item, None, origins, source, (*path, i)) for i, v in enumerate(value)]
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise _fail(origins, path, source, f"expected a table, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise _fail(origins, path, source, f"expected true or false, got {value!r}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise _fail(origins, path, source, f"expected an integer, got {value!r}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(origins, path, source, f"expected a number, got {value!r}")
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise _fail(origins, path, source, f"expected a string, got {value!r}")
    choices, minimum = meta.get("choices"), meta.get("min")
    if choices and value not in choices:
        raise _fail(origins, path, source, f"{value!r} is not accepted{did_you_mean(value, choices)}; "
                                           f"accepted: {', '.join(map(str, choices))}")
    if minimum is not None and value < minimum:
        raise _fail(origins, path, source, f"{value!r} is too small; accepted: a value >= {minimum}")
    return value


def _unstructure(obj: Any) -> Any:
    if attrs.has(type(obj)):
        out: dict[str, Any] = {}
        for f in attrs.fields(type(obj)):
            value = getattr(obj, f.name)
            if f.name == OPTIONS and type(obj) in OPEN_SECTIONS:
                out.update(copy.deepcopy(value))
            else:
                out[f.name] = _unstructure(value)
        return out
    if isinstance(obj, list):
        return [_unstructure(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _unstructure(v) for k, v in obj.items()}
    return obj


# ---------------------------------------------------------------------------------------------
# names against the registries


def _trial_builds(recipe: Recipe, guard: Any) -> None:
    """Build what the recipe names, so the names and values inside options (a fusion block, a
    synthetic sensor) are checked here, before a run directory exists. A dataset whose files are not
    there yet (a DataError) is left to the run; every other refusal names the recipe key."""
    from panfw.errors import DataError
    from panfw.plugins import registry
    from panfw.sensors import get_sensor

    def datasets(section: str, split: str) -> None:
        for i, ds in enumerate(getattr(recipe.data, section)):
            def build(d: DatasetSpec = ds) -> None:
                try:
                    registry("datasets").build(d.name, split, context={"root": recipe.data.root or None},
                                               **d.options)
                except DataError:
                    pass  # missing or unreadable data files: the run says which
            guard(("data", section, i), build)

    datasets("train", "train")
    datasets("test", "test_rr")
    for i, term in enumerate(recipe.loss.terms):
        guard(("loss", "terms", i), lambda t=term: registry("losses").build(t.name, **t.options))
    entry = registry("models").get(recipe.model.name)
    first = (recipe.data.train or recipe.data.test or [None])[0]
    opts = dict(first.options) if first is not None else {}
    bands, sensor = opts.get("bands"), opts.get("sensor")
    try:
        sens = get_sensor(sensor) if isinstance(sensor, str) else None
    except UserError:
        sens = None
    if not isinstance(bands, int):  # "bgrn" picks 4, "all" / none: the sensor's
        bands = 4 if isinstance(bands, str) and bands.lower() == "bgrn" else (sens.n_bands if sens else 4)
    context = {"bands": entry.meta.get("fixed_bands") or bands, "sensor": sens.name if sens else None,
               "ratio": sens.ratio if sens else None}
    try:
        registry("models").build(recipe.model.name, context=context, **recipe.model.options)
    except RecipeError:
        raise
    except UserError as exc:  # name the option whose value was refused, where one can be told
        key = next((k for k, v in recipe.model.options.items()
                    if isinstance(v, str | int | float) and repr(v) in str(exc)), "name")

        def again(e: UserError = exc) -> None:
            raise e

        guard(("model", key), again)


def check_names(recipe: Recipe, origins: dict | None = None, source: str = "<recipe>") -> None:
    """Check registry names and factory options (model, loss terms, datasets, metrics, baselines)."""
    from panfw.plugins import registry
    from panfw.registries import check_options

    origins = origins or {}

    def guard(path: tuple, fn: Any) -> None:
        try:
            fn()
        except RecipeError:
            raise
        except UserError as exc:
            raise _fail(origins, path, source, str(exc)) from None

    guard(("model", "name"), lambda: check_options(registry("models").get(recipe.model.name),
                                                   recipe.model.options))
    for i, term in enumerate(recipe.loss.terms):
        guard(("loss", "terms", i), lambda t=term: check_options(registry("losses").get(t.name), t.options))
    for section in ("train", "test"):
        for i, ds in enumerate(getattr(recipe.data, section)):
            guard(("data", section, i),
                  lambda d=ds: check_options(registry("datasets").get(d.name), d.options))
    for section in ("rr_metrics", "fr_metrics"):
        for i, name in enumerate(getattr(recipe.eval, section)):
            guard(("eval", section, i), lambda n=name: registry("metrics").get(n))
    for i, name in enumerate(recipe.eval.baselines):
        guard(("eval", "baselines", i), lambda n=name: registry("models").get(n))
    _trial_builds(recipe, guard)
    if recipe.eval.rr_metrics and recipe.eval.best not in recipe.eval.rr_metrics:
        raise _fail(origins, ("eval", "best"), source,
                    f"{recipe.eval.best!r} is not one of eval.rr_metrics"
                    f"{did_you_mean(recipe.eval.best, recipe.eval.rr_metrics)}; "
                    f"accepted: {', '.join(recipe.eval.rr_metrics)}")
    names = [v.name for v in recipe.sweep]
    for i, v in enumerate(recipe.sweep):
        if names.count(v.name) > 1:
            raise _fail(origins, ("sweep", i, "name"), source, f"sweep variant name {v.name!r} is used twice")
    if recipe.sweep:
        for name, variant in recipe.variants():
            try:
                check_names(variant, {}, f"{source} (sweep variant {name!r})")
            except RecipeError as exc:
                raise RecipeError(str(exc)) from None
