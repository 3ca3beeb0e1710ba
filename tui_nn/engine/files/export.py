"""Export: a plain PyTorch script that trains the experiment exactly as the app does, and the loss
history as CSV.

The script holds the model as an `nn.Sequential` (Residual as a small class), the data (inline values,
the generator calls, or the data-set functions of `data/generated.py` copied verbatim), the loss, the
optimizer, the schedule, the seed and the loop, following the engine's determinism contract step for
step (see `training/session.py`). Run with `python script.py`, it prints one line per step, `step N loss L`,
with the same numbers as `tui-nn run` and the app (on the CPU, same torch). Nothing of tui-nn is
imported by it.

What of the preset reaches the script: a value a user could write (the preset's name, a column name,
a path, the device, every argument and hand-set value) appears only as a Python literal written by
`_lit`, which takes None, bools, ints, floats, strings (their repr(), so no character of them can end
the literal) and lists, tuples and dicts of these, and refuses anything else; names used as code (layer,
loss, optimizer and schedule types, argument and parameter names) must be known to the engine and be
plain identifiers. Comments and the docstring are the exporter's own fixed text.

Size: the script is at most MAX_SCRIPT_BYTES (16 MiB; compiling a script of float literals takes about
60 times its size in memory), refused before the large parts are written. CSV data up to
MAX_INLINE_DATA_BYTES (1 MiB) as literals is written inline; larger CSV data is exported by reference:
the script names the file as `CSV_PATH` (its real, absolute path, a string constant), reads it itself
with the csv module, exactly as the engine does (`datasets.csv_columns`: same column selection, same
stripping and `float()`), so it prints the same losses, and warns when the file's SHA-256 is not the one
the script was exported with.
"""

from __future__ import annotations

import hashlib
import inspect
import keyword
import math
import os
import re
from pathlib import Path
from typing import Any

import torch

from ..errors import EngineError
from ..model.build import init_targets, iter_specs
from ..model.init import SCHEMES, init_calls
from ..model.catalogue import CATALOGUE, FLOATS, full_args, torch_kwargs
from ..model.modules import Concat, Pow, Residual, Sequential
from ..spec import BLOCKS, GeneratorSpec, LayerSpec, Preset
from ..training.objectives import LOSSES, OPTIMIZERS, optimizer_kwargs

MAX_SCRIPT_BYTES = 16 * 1024 * 1024
MAX_INLINE_DATA_BYTES = 1024 * 1024
_MIN_VALUE_BYTES = 3  # the shortest a value can be written in a list: "0, "
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _lit(value: Any) -> str:
    """Python source for a validated value: None, bool, int, float, str and lists, tuples and dicts of these
    (anything else is refused). Written with the built-in types' own repr (a subclass's __repr__ is never
    called); a float that is not finite as float("inf") / float("nan")."""
    if value is None or value is True or value is False:
        return repr(value)
    if isinstance(value, bool):  # a bool subclass cannot exist; kept for clarity
        return repr(bool(value))
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value) if math.isfinite(value) else f"float({float.__repr__(value)!r})"
    if isinstance(value, str):
        return str.__repr__(value)
    if isinstance(value, (list, tuple)):
        if all(type(v) is float for v in value) and all(math.isfinite(v) for v in value):
            items = ", ".join(map(float.__repr__, value))  # the common case, fast: rows of finite floats
        else:
            items = ", ".join(_lit(v) for v in value)
        if isinstance(value, list):
            return f"[{items}]"
        return f"({items}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise EngineError(f"cannot export a table key of type {type(k).__name__}")
        return "{" + ", ".join(f"{_lit(k)}: {_lit(v)}" for k, v in value.items()) + "}"
    raise EngineError(f"cannot export a value of type {type(value).__name__}")


def _arg(value: Any) -> str:
    """A constructor argument's literal (lists become tuples, as torch_kwargs passes them)."""
    return _lit(tuple(value) if isinstance(value, list) else value)


def _ident(name: Any, what: str) -> str:
    """`name`, used as code (an argument or attribute name): a plain ASCII identifier, not a keyword."""
    if not isinstance(name, str) or not _IDENT.match(name) or keyword.iskeyword(name):
        raise EngineError(f"cannot export {what} {_lit(name) if isinstance(name, str) else type(name).__name__}: "
                          "not a plain name")
    return name


def _known(name: Any, table: Any, what: str) -> str:
    """A type name written as code: one the engine knows, and a plain identifier."""
    if not isinstance(name, str) or name not in table:
        raise EngineError(f"cannot export the unknown {what} {_lit(name) if isinstance(name, str) else '?'}")
    return _ident(name, what)


def _kwargs(args: dict[str, Any], what: str) -> str:
    return ", ".join(f"{_ident(k, what + ' argument')}={_arg(v)}" for k, v in args.items())


def _call(name: str, args: dict[str, Any], what: str) -> str:
    return f"{name}({_kwargs(args, what)})"


def _loss_call(name: str, args: dict[str, Any]) -> str:
    """The loss's constructor: a list of class weights (FLOATS) becomes the float32 tensor torch wants, on the
    device (torch keeps it as the loss module's buffer)."""
    kinds = {a.name: a.kind for a in LOSSES[name].args}
    parts = [f"{_ident(k, name + ' argument')}=" + (f"torch.tensor({_lit(list(v))}, dtype=torch.float32, device=device)"
                                                     if kinds.get(k) == FLOATS else _arg(v))
             for k, v in args.items()]
    return f"nn.{name}({', '.join(parts)})"


def _layer_expr(spec: LayerSpec, indent: str) -> str:
    if spec.type in BLOCKS:
        items = [f"{indent}    {_layer_expr(s, indent + '    ')}" for s in spec.layers]
        if spec.shortcut:
            inner = ",\n".join(f"{indent}        {_layer_expr(s, indent + '        ')}" for s in spec.shortcut)
            items.append(f"{indent}    shortcut=[\n{inner},\n{indent}    ]")
        if spec.type == "Concat":
            items.append(f"{indent}    dim={_lit(int(full_args(CATALOGUE['Concat'], spec.args)['dim']))}")
        return f"{spec.type}(\n" + ",\n".join(items) + (",\n" if items else "") + f"{indent})"
    name = _known(spec.type, CATALOGUE, "layer type")
    lt = CATALOGUE[name]
    return _call(name if name in LOCAL_CLASSES else f"nn.{name}", torch_kwargs(lt, spec.args), name)


LOCAL_CLASSES = {"Pow": Pow}  # layers torch.nn has no class for: the script defines them


def _module_expr(path: str) -> str:
    """'3.body.1' -> 'model[3].body[1]'; '3.shortcut.0' -> 'model[3].shortcut[0]'."""
    parts = path.split(".")
    if (len(parts) % 2 == 0 or not all(p.isdigit() and p.isascii() for p in parts[::2])
            or not all(p in ("body", "shortcut") for p in parts[1::2])):
        raise EngineError(f"cannot export the layer path {_lit(path)}")
    out = f"model[{int(parts[0])}]"
    rest = parts[1:]
    while rest:
        out += f".{rest[0]}[{int(rest[1])}]"
        rest = rest[2:]
    return out


_INIT_FUNCTIONS = frozenset({s.fn for s in SCHEMES.values() if s.fn is not None} | {"constant_"})


def _init_lines(model: torch.nn.Module, path: str, init: dict[str, Any]) -> list[str]:
    """The torch.nn.init calls of a layer's init scheme, on the tensors the engine applies them to
    (model/build.py init_module: the layer's weight, its bias when the table sets one; a Residual's body)."""
    names = {id(m): n for n, m in model.named_modules()}
    lines = []
    for m in init_targets(dict(model.named_modules())[path]):
        target = _module_expr(names[id(m)])
        for tensor, fn, kwargs in init_calls(init):
            if fn not in _INIT_FUNCTIONS:
                raise EngineError(f"cannot export the init function {_lit(fn)}")
            args = "".join(f", {_ident(k, 'init argument')}={_lit(v)}" for k, v in kwargs.items())
            lines.append(f"nn.init.{fn}({target}.{_ident(tensor, 'parameter')}{args})")
    return lines


def _source(fn: Any) -> str:
    return inspect.getsource(fn).rstrip() + "\n"


def _generator_expr(g: GeneratorSpec) -> str:
    shape = _lit(tuple(int(n) for n in g.shape))
    if g.kind in ("rand", "randn"):
        return f"torch.{g.kind}({shape}, generator=g)"
    if g.kind in ("zeros", "ones"):
        return f"torch.{g.kind}({shape})"
    if g.kind == "randint":
        return f"torch.randint({_lit(int(g.low))}, {_lit(int(g.high))}, {shape}, generator=g)"
    raise EngineError(f"cannot export the generator {_lit(str(g.kind))}")


def _conversion(raw: torch.Tensor, final: torch.Tensor) -> str:
    """The method calls that turn the raw targets into what the loss gets (as data.match_targets does)."""
    text = ".long()" if final.dtype == torch.int64 else ".float()"
    if tuple(raw.shape) != tuple(final.shape):
        text += f".reshape({_lit(tuple(int(n) for n in final.shape))})"
        text += "  # the output's shape, as tui-nn does: a loss on the raw shape would broadcast or refuse"
    return text


def _numel(value: Any) -> int:
    """The number of values of a nested list, from its first elements (an estimate for a ragged one)."""
    n = 1
    while isinstance(value, (list, tuple)):
        n *= len(value)
        if not value:
            break
        value = value[0]
    return n


def _fits(what: str, values: int) -> None:
    """Refuse before writing `values` values that could not fit in the script even at their shortest."""
    limit = MAX_SCRIPT_BYTES
    if values * _MIN_VALUE_BYTES > limit:
        raise EngineError(f"cannot export: {what} ({values} values) would make the script larger than {limit} "
                          "bytes", hint="export the preset without hand-set weights (tui-nn export PRESET), or "
                                        "make the data smaller")


def _csv_code(c: Any, feats: torch.Tensor, targets: torch.Tensor, helpers: list[str],
              imports: list[str]) -> list[str]:
    """The statements that give x and y from a CSV data spec: inline values, or a script that reads the file."""
    from ..data import csvfile

    lines = [f"FEATURE_COLUMNS = {_lit([str(n) for n in c.features])}",
             f"TARGET_COLUMNS = {_lit([str(n) for n in c.target])}"]
    one = "[:, 0]" if targets.shape[1] == 1 else ""
    n_values = feats.numel() + targets.numel()
    inline = None
    if n_values * _MIN_VALUE_BYTES <= MAX_INLINE_DATA_BYTES:
        inline = (_lit(feats.tolist()), _lit(targets.tolist()))
        if len(inline[0]) + len(inline[1]) > MAX_INLINE_DATA_BYTES:
            inline = None
    if inline is not None:
        return lines + [
            f"CSV_FILE = {_lit(os.path.basename(str(c.path)))}  # where the values below come from",
            f"FEATURES = {inline[0]}",
            f"TARGETS = {inline[1]}",
            "x = torch.tensor(FEATURES, dtype=torch.float64).float()",
            "y = torch.tensor(TARGETS, dtype=torch.float64).float()" + one]
    real, blob = csvfile.csv_bytes(c)
    imports.extend(["import csv", "import hashlib"])
    helpers.append(_source(csvfile.csv_columns))
    return lines + [
        "# the data is read from the CSV file (too large to write here); edit CSV_PATH if the file moves",
        f"CSV_PATH = {_lit(real)}",
        f"CSV_SHA256 = {_lit(hashlib.sha256(blob).hexdigest())}",
        "with open(CSV_PATH, \"rb\") as fh:",
        "    if hashlib.sha256(fh.read()).hexdigest() != CSV_SHA256:",
        "        print(\"note: the CSV file is not the one this script was exported with: the losses will differ\")",
        "rows = torch.tensor(csv_columns(CSV_PATH, FEATURE_COLUMNS, TARGET_COLUMNS), dtype=torch.float64)",
        "x = rows[:, :len(FEATURE_COLUMNS)].float()",
        "y = rows[:, len(FEATURE_COLUMNS):].float()" + one]


def _data_code(session: Any, imports: list[str]) -> tuple[list[str], list[str], bool]:
    """(helper definitions, data statements, has a test split)."""
    from ..data import csvfile, generated
    from ..data import split as split_module
    from ..data import tables as datasets
    from ..data.tensors import make_inputs, materialise

    p = session.preset
    data = p.data
    seed = p.training.seed
    helpers: list[str] = []
    lines = ["g = torch.Generator().manual_seed(SEED)  # inputs, then targets, are drawn from this generator"]
    if _one_stream(data):
        lines = ["torch.manual_seed(SEED)  # one random stream: inputs, then targets, then the layers' weights",
                 "g = torch.default_generator"]
    test = getattr(session, "test_inputs", None) is not None
    want = tuple(int(n) for n in p.model.input_shape[1:])
    if data.dataset is not None or data.csv is not None:
        helpers.append(_source(split_module.split))
        split = datasets.load_split(data, seed)
        assert split is not None
        if data.dataset is not None:
            d = data.dataset
            info = generated.DATASETS[_known(d.name, generated.DATASETS, "data set")]
            helpers.insert(0, _source(info.fn))
            classes = d.classes if d.classes is not None else 2
            lines.append(f"x, y = {info.fn.__name__}({_lit(int(d.samples))}, {_lit(float(d.noise))}, g, "
                         f"{_lit(int(classes))})  # the data set")
            frac = d.test_fraction
        else:
            c = data.csv
            feats, targets = csvfile.read_csv(c)
            lines.extend(_csv_code(c, feats, targets, helpers, imports))
            frac = c.test_fraction
        lines.append(f"x, y, x_test, y_test = split(x, y, {_lit(float(frac))}, g)")
        if tuple(split.x_train.shape[1:]) != want:
            lines.append(f"x, x_test = x.reshape((-1,) + {_lit(want)}), x_test.reshape((-1,) + {_lit(want)})")
        lines.append(f"y = y{_conversion(split.y_train, session.targets)}")
        if test:
            lines.append(f"y_test = y_test{_conversion(split.y_test, session.test_targets)}")
        return helpers, lines, test
    _, gen = make_inputs(data, p.model.input_shape, seed)  # the generator as the engine leaves it
    if data.inputs is None:
        lines.append(f"x = torch.rand({_lit(tuple(int(n) for n in p.model.input_shape))}, generator=g)")
    elif isinstance(data.inputs, GeneratorSpec):
        lines.append(f"x = {_generator_expr(data.inputs)}.float()")
    else:
        _fits("the inputs", _numel(data.inputs))
        lines.append(f"x = torch.tensor({_lit(data.inputs)}).float()")
    if data.targets is None:
        out = tuple(int(n) for n in session.report.output_shape)
        n = int(session.inputs.shape[0])
        kind = LOSSES[p.training.loss.type].kind
        if kind == "classification":
            classes = out[1] if len(out) > 1 else out[0]
            lines.append(f"y = torch.randint(0, {_lit(max(classes, 1))}, {_lit((n,) + out[2:])}, generator=g)")
        elif kind == "binary":
            lines.append(f"y = torch.randint(0, 2, {_lit((n,) + out[1:])}, generator=g).float()")
        else:
            lines.append(f"y = torch.randn({_lit((n,) + out[1:])}, generator=g)")
        return helpers, lines, False
    raw = materialise(data.targets, gen)
    assert raw is not None
    if isinstance(data.targets, GeneratorSpec):
        expr = _generator_expr(data.targets)
    else:
        _fits("the targets", _numel(data.targets))
        expr = f"torch.tensor({_lit(data.targets)})"
    lines.append(f"y = {expr}{_conversion(raw, session.targets)}")
    return helpers, lines, False


def _one_stream(data: Any) -> bool:
    """[data] rng = "global": the data is drawn from torch's global generator, and the layers continue it."""
    return getattr(data, "rng", "own") == "global" and data.dataset is None and data.csv is None


def _accuracy_code(loss: str, ignore_index: int) -> str:
    kind = LOSSES[loss].kind
    if kind == "classification":
        return (
            "def accuracy(out, y):\n"
            "    pred = out.argmax(1)\n"
            "    if y.is_floating_point() and y.shape == out.shape:\n"
            "        truth, valid = y.argmax(1), torch.ones_like(pred, dtype=torch.bool)\n"
            "    else:\n"
            f"        truth = y.long()\n        valid = truth != {_lit(int(ignore_index))}\n"
            "    correct = ((pred == truth) & valid).sum()\n"
            "    return float(correct.float() / valid.sum().clamp_min(1).float())\n")
    threshold = 0.0 if loss == "BCEWithLogitsLoss" else 0.5
    return (
        "def accuracy(out, y):\n"
        f"    pred = (out > {threshold}).long()\n"
        "    truth = (y.reshape(out.shape) > 0.5).long() if y.numel() == out.numel() else (y > 0.5).long()\n"
        "    valid = torch.ones_like(truth, dtype=torch.bool)\n"
        "    correct = ((pred == truth) & valid).sum()\n"
        "    return float(correct.float() / valid.sum().clamp_min(1).float())\n")


def export_script(preset: Preset, *, steps: int | None = None) -> str:
    """A runnable PyTorch script for `preset` that prints the same per-step losses as the engine."""
    from ..data.csvfile import escaped
    from ..training.metrics import accuracy_kind
    from ..training.schedules import SCHEDULERS, step_every
    from ..training.schedules import torch_kwargs as schedule_kwargs
    from ..training.session import Session

    session = Session(preset, device="cpu")
    if not session.trainable:
        raise EngineError(f"cannot export {escaped(str(preset.name), 80)}: {session.why_not_trainable()}")
    p = session.preset
    t = p.training
    n_steps = t.steps if steps is None else steps
    if n_steps < 0:
        raise EngineError(f"steps must be >= 0; got {n_steps}")
    specs = list(iter_specs(p.model.layers))
    _fits("the hand-set weights", sum(_numel(v) for _, s in specs for v in s.params.values()))
    imports: list[str] = []
    helpers, data_lines, has_test = _data_code(session, imports)
    blocks = [cls for cls in (Residual, Concat, Sequential) if any(s.type == cls.__name__ for _, s in specs)]
    needs_params = any(s.params for _, s in specs)
    track_acc = t.target_accuracy is not None and accuracy_kind(t.loss.type) is not None
    device = "torch.device(\"cpu\")" if t.device == "cpu" else \
        f"torch.device({_lit(str(t.device))} if torch.cuda.is_available() else \"cpu\")"
    loss_type = _known(t.loss.type, LOSSES, "loss")
    opt_cls = OPTIMIZERS[_known(t.optimizer.type, OPTIMIZERS, "optimizer")].cls.__name__

    out: list[str] = []
    w = out.append
    w("#!/usr/bin/env python3")
    w('"""A training script exported by tui-nn (its preset\'s name is PRESET_NAME, below).')
    w("")
    w("Run with `python <this file>`: it prints the loss of every training step, the numbers tui-nn shows")
    w("(on the CPU, with the same torch version). Determinism: inputs, then targets, are drawn from")
    w("torch.Generator().manual_seed(SEED); torch.manual_seed(SEED) comes right before the layers are built;")
    w("the mini-batch order comes from a second generator seeded with SEED.")
    w('"""')
    w("")
    w("from __future__ import annotations")
    w("")
    for line in sorted({"import math", *imports}):
        w(line)
    w("")
    w("import torch")
    w("from torch import nn")
    w("")
    w(f"PRESET_NAME = {_lit(str(p.name))}")
    w(f"SEED = {_lit(int(t.seed))}")
    w(f"STEPS = {_lit(int(n_steps))}")
    w(f"BATCH_SIZE = {_lit(int(t.batch_size))}  # 0: the whole data set every step")
    w(f"SHUFFLE = {_lit(bool(t.shuffle))}")
    if t.drop_last:
        w("DROP_LAST = True  # an epoch's last, incomplete mini-batch is dropped (DataLoader(drop_last=True))")
    w(f"TARGET_LOSS = {_lit(t.target_loss)}  # stop once the loss is at or below this (mini-batches: the whole")
    w("# training set's, in eval mode, at the end of each epoch; full batch: the step's own)")
    if track_acc:
        w(f"TARGET_ACCURACY = {_lit(t.target_accuracy)}  # stop once the accuracy reaches this")
    w(f"device = {device}")
    w("")
    for cls in blocks:  # the blocks torch.nn has no class for: the script defines them
        w("")
        w(_source(cls))
    for name, cls in LOCAL_CLASSES.items():
        if any(s.type == name for _, s in specs):
            w("")
            w(_source(cls))
    if needs_params:
        w("")
        w("def set_param(param, value):")
        w("    with torch.no_grad():")
        w("        param.copy_(torch.tensor(value, dtype=param.dtype).reshape(param.shape))")
        w("")
    for h in helpers:
        w("")
        w(h)
    if track_acc:
        w("")
        w(_accuracy_code(loss_type, int(t.loss.args.get("ignore_index", -100))))
    w("")
    w("# -- data")
    out.extend(data_lines)
    w("")
    w("# -- model")
    if _one_stream(p.data):
        w("# (the layers are built from the same stream, continuing after the data)")
    else:
        w("torch.manual_seed(SEED)  # right before the layers are built, in order")
    w("model = nn.Sequential(")
    for spec in p.model.layers:
        w(f"    {_layer_expr(spec, '    ')},")
    w(")")
    for path, spec in specs:
        target = _module_expr(path)
        if spec.init is not None:
            out.extend(_init_lines(session.model, path, spec.init))
        for name, value in spec.params.items():
            w(f"set_param({target}.{_ident(name, 'parameter')}, {_lit(value)})")
        if spec.frozen:
            w(f"for p in {target}.parameters():")
            w("    p.requires_grad_(False)")
    w("model = model.to(device)")
    w("x, y = x.to(device), y.to(device)")
    if has_test:
        w("x_test, y_test = x_test.to(device), y_test.to(device)")
    w("")
    w(f"loss_fn = {_loss_call(loss_type, t.loss.args)}")
    w("")
    w("")
    w("def make_optimizer():")
    opt_args = _kwargs(optimizer_kwargs(t.optimizer.type, t.optimizer.args), opt_cls)
    w(f"    return torch.optim.{opt_cls}(list(model.parameters())" + (f", {opt_args}" if opt_args else "") + ")")
    w("")
    w("")
    w("optimizer = make_optimizer()")
    sched = None if t.scheduler is None else _known(t.scheduler.type, SCHEDULERS, "schedule")
    per_epoch = t.scheduler is not None and step_every(t.scheduler) == "epoch"
    if t.scheduler is not None:
        if sched == "SequentialLR":  # its schedules made in order on the optimizer, then the sequence
            inner = []
            for table in t.scheduler.args["schedulers"]:
                name = _known(table.get("type"), SCHEDULERS, "schedule")
                args = _kwargs({k: v for k, v in table.items() if k != "type"}, name)
                inner.append(f"torch.optim.lr_scheduler.{name}(optimizer" + (f", {args}" if args else "") + ")")
            sched_args = (f"schedulers=[{', '.join(inner)}], "
                          f"milestones={_lit(list(t.scheduler.args['milestones']))}")
        else:
            sched_args = _kwargs(schedule_kwargs(t.scheduler), sched)
        w(f"scheduler = torch.optim.lr_scheduler.{sched}(optimizer" + (f", {sched_args}" if sched_args else "")
          + (")  # stepped at the end of each epoch" if per_epoch else ")  # stepped once per step"))
    w("")
    w("# -- training: zero_grad, forward, loss, backward, step")
    w("order = torch.Generator().manual_seed(SEED)")
    w("n = x.shape[0]")
    w("perm, pos = None, 0")
    w("model.train()")
    w("for step in range(1, STEPS + 1):")
    w("    if BATCH_SIZE <= 0 or BATCH_SIZE >= n:")
    w("        xb, yb = x, y")
    w("    else:")
    if t.drop_last:
        w("        if perm is None or pos + BATCH_SIZE > n:  # a new epoch: a new order (an incomplete batch dropped)")
    else:
        w("        if perm is None or pos >= n:  # a new epoch: a new order (its last batch holds what is left)")
    w("            perm = (torch.randperm(n, generator=order) if SHUFFLE else torch.arange(n)).to(device)")
    w("            pos = 0")
    w("        idx = perm[pos:pos + BATCH_SIZE]")
    w("        pos += BATCH_SIZE")
    w("        xb, yb = x[idx], y[idx]")
    if t.reset_optimizer_each_step:
        w("    optimizer = make_optimizer()  # a fresh optimizer every step")
    end = "pos + BATCH_SIZE > n" if t.drop_last else "pos >= n"
    if per_epoch:
        w(f"    stepping = BATCH_SIZE <= 0 or BATCH_SIZE >= n or {end}  # this step ends an epoch")
    if sched == "OneCycleLR":
        total = int(t.scheduler.args["total_steps"])
        w(f"    if {'stepping and ' if per_epoch else ''}scheduler.last_epoch >= {_lit(total)}:"
          "  # torch cannot step OneCycleLR past total_steps")
        w("        print(\"OneCycleLR was stepped total_steps times: stopping\")")
        w("        break")
    if t.optimizer.type == "LBFGS":
        w("    outs = []")
        w("")
        w("    def closure():  # LBFGS evaluates the loss several times a step")
        w("        optimizer.zero_grad(set_to_none=True)")
        w("        out = model(xb)")
        w("        loss = loss_fn(out, yb)")
        w("        loss.backward()")
        w("        outs.append(out)")
        w("        return loss")
        w("")
        w("    loss = optimizer.step(closure)  # the closure's first loss")
        w("    out = outs[0]")
    else:
        w("    optimizer.zero_grad(set_to_none=True)")
        w("    out = model(xb)")
        w("    loss = loss_fn(out, yb)")
        w("    loss.backward()")
        if t.clip_grad_norm is not None:
            w(f"    torch.nn.utils.clip_grad_norm_(model.parameters(), {_lit(float(t.clip_grad_norm))})")
        if t.clip_grad_value is not None:
            w(f"    torch.nn.utils.clip_grad_value_(model.parameters(), {_lit(float(t.clip_grad_value))})")
        w("    optimizer.step()")
    if t.scheduler is not None:
        pad = "    "
        if per_epoch:
            w("    if stepping:")
            pad = "        "
        if sched == "ReduceLROnPlateau" and has_test:
            w(f"{pad}model.eval()  # ReduceLROnPlateau: on the test split's loss")
            w(f"{pad}with torch.no_grad():")
            w(f"{pad}    plateau_loss = loss_fn(model(x_test), y_test).mean().item()")
            w(f"{pad}model.train()")
            w(f"{pad}scheduler.step(plateau_loss)")
        elif sched == "ReduceLROnPlateau":
            w(f"{pad}scheduler.step(loss.item())  # ReduceLROnPlateau: on this step's training loss")
        else:
            w(f"{pad}scheduler.step()")
    w("    value = loss.item()")
    w("    print(f\"step {step} loss {value!r}\")")
    w("    if not math.isfinite(value):")
    w("        print(\"the loss is not finite: stopping\")")
    w("        break")
    has_target = t.target_loss is not None or (track_acc and t.target_accuracy is not None)
    if has_target:
        w("    if BATCH_SIZE <= 0 or BATCH_SIZE >= n:  # full batch: this step's loss and accuracy")
        w("        if TARGET_LOSS is not None and value <= TARGET_LOSS:")
        w("            break")
        if track_acc:
            w("        if TARGET_ACCURACY is not None and accuracy(out.detach(), yb) >= TARGET_ACCURACY:")
            w("            break")
        if t.drop_last:
            w("    elif pos + BATCH_SIZE > n:  # the end of an epoch: the whole training set, in eval mode")
        else:
            w("    elif pos >= n:  # the end of an epoch: the whole training set, in eval mode")
        w("        model.eval()")
        w("        with torch.no_grad():")
        w("            out_all = model(x)")
        w("            loss_all = loss_fn(out_all, y).mean().item()")
        w("        model.train()")
        w("        if TARGET_LOSS is not None and loss_all <= TARGET_LOSS:")
        w("            break")
        if track_acc:
            w("        if TARGET_ACCURACY is not None and accuracy(out_all, y) >= TARGET_ACCURACY:")
            w("            break")
    if has_test:
        w("")
        w("model.eval()")
        w("with torch.no_grad():")
        w("    print(f\"test loss {loss_fn(model(x_test), y_test).mean().item()!r}\")")
    text = "\n".join(out) + "\n"
    if len(text) > MAX_SCRIPT_BYTES:
        raise EngineError(f"cannot export: the script would be {len(text)} bytes (at most {MAX_SCRIPT_BYTES})",
                          hint="export the preset without hand-set weights (tui-nn export PRESET), or make the "
                               "model or its inline data smaller")
    return text


def write_script(preset: Preset, path: str | os.PathLike[str], *, steps: int | None = None) -> Path:
    """Export to a file, atomically."""
    from .atomic import atomic_write_bytes

    text = export_script(preset, steps=steps)
    p = Path(path)
    try:
        atomic_write_bytes(p, text.encode("utf-8"))
    except OSError as err:
        raise EngineError(f"cannot write {p}: {err.strerror or err}") from None
    return p


def history_csv(session: Any) -> str:
    """The loss history as CSV: step,loss,min,max, one row per bucket (a bucket covers one step until the
    history outgrows its capacity; then the mean, min and max of the steps it covers)."""
    return session.history.to_csv()


def metrics_csv(session: Any) -> str:
    """The test evaluations as CSV: step,test_loss,test_accuracy (empty cells where absent)."""
    lines = ["step,test_loss,test_accuracy"]
    for e in session.metrics.evals:
        lines.append(f"{e.step},{'' if e.loss is None else repr(e.loss)},"
                     f"{'' if e.accuracy is None else repr(e.accuracy)}")
    return "\n".join(lines) + "\n"


def write_history_csv(session: Any, path: str | os.PathLike[str]) -> Path:
    from .atomic import atomic_write_bytes

    p = Path(path)
    try:
        atomic_write_bytes(p, history_csv(session).encode("utf-8"))
    except OSError as err:
        raise EngineError(f"cannot write {p}: {err.strerror or err}") from None
    return p


__all__ = ["export_script", "write_script", "history_csv", "metrics_csv", "write_history_csv"]
