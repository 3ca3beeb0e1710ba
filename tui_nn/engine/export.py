"""Export: a plain PyTorch script that trains the experiment exactly as the app does, and the loss
history as CSV.

The script holds the model as an `nn.Sequential` (Residual as a small class), the data (inline values,
the generator calls, or the data-set functions of `datasets.py` copied verbatim), the loss, the
optimizer, the schedule, the seed and the loop, following the engine's determinism contract step for
step (see `session.py`). Run with `python script.py`, it prints one line per step, `step N loss L`,
with the same numbers as `tui-nn run` and the app (on the CPU, same torch). Nothing of tui-nn is
imported by it.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import torch

from .catalogue import CATALOGUE, torch_kwargs
from .modules import Pow, Residual
from .errors import EngineError
from .model import init_module, iter_specs
from .objectives import LOSSES, OPTIMIZERS
from .spec import GeneratorSpec, LayerSpec, Preset

MAX_SCRIPT_BYTES = 256 * 1024 * 1024


def _lit(value: Any) -> str:
    """A Python literal for a constructor argument (lists become tuples, as torch_kwargs passes them)."""
    if isinstance(value, list):
        value = tuple(value)
    return repr(value)


def _call(name: str, args: dict[str, Any]) -> str:
    return f"{name}(" + ", ".join(f"{k}={_lit(v)}" for k, v in args.items()) + ")"


def _layer_expr(spec: LayerSpec, indent: str) -> str:
    if spec.type == "Residual":
        inner = ",\n".join(f"{indent}    {_layer_expr(s, indent + '    ')}" for s in spec.layers)
        return "Residual(\n" + inner + (",\n" if spec.layers else "") + f"{indent})"
    lt = CATALOGUE[spec.type]
    return _call(spec.type if spec.type in LOCAL_CLASSES else f"nn.{spec.type}", torch_kwargs(lt, spec.args))


LOCAL_CLASSES = {"Pow": Pow}  # layers torch.nn has no class for: the script defines them


def _module_expr(path: str) -> str:
    """'3.body.1' -> 'model[3].body[1]'."""
    parts = path.split(".")
    out = f"model[{parts[0]}]"
    rest = parts[1:]
    while rest:
        out += f".body[{rest[1]}]"
        rest = rest[2:]
    return out


def _source(fn: Any) -> str:
    return inspect.getsource(fn).rstrip() + "\n"


def _generator_expr(g: GeneratorSpec) -> str:
    shape = repr(tuple(g.shape))
    if g.kind in ("rand", "randn"):
        return f"torch.{g.kind}({shape}, generator=g)"
    if g.kind in ("zeros", "ones"):
        return f"torch.{g.kind}({shape})"
    return f"torch.randint({g.low}, {g.high}, {shape}, generator=g)"


def _conversion(raw: torch.Tensor, final: torch.Tensor) -> str:
    """The method calls that turn the raw targets into what the loss gets (as data.match_targets does)."""
    text = ".long()" if final.dtype == torch.int64 else ".float()"
    if tuple(raw.shape) != tuple(final.shape):
        text += f".reshape{tuple(final.shape)!r}"
    return text


def _data_code(session: Any) -> tuple[list[str], list[str], bool]:
    """(helper definitions, data statements, has a test split)."""
    from . import datasets
    from .data import make_inputs, materialise

    p = session.preset
    data = p.data
    seed = p.training.seed
    helpers: list[str] = []
    lines = ["g = torch.Generator().manual_seed(SEED)  # inputs, then targets, are drawn from this generator"]
    if _one_stream(data):
        lines = ["torch.manual_seed(SEED)  # one random stream: inputs, then targets, then the layers' weights",
                 "g = torch.default_generator"]
    test = getattr(session, "test_inputs", None) is not None
    want = tuple(p.model.input_shape[1:])
    if data.dataset is not None or data.csv is not None:
        helpers.append(_source(datasets.split))
        split = datasets.load_split(data, seed)
        assert split is not None
        if data.dataset is not None:
            d = data.dataset
            info = datasets.DATASETS[d.name]
            helpers.insert(0, _source(info.fn))
            classes = d.classes if d.classes is not None else 2
            lines.append(f"x, y = {info.fn.__name__}({d.samples}, {d.noise!r}, g, {classes})  # the {d.name} data set")
        else:
            c = data.csv
            feats, targets = datasets.read_csv(c)
            lines.append(f"# columns {', '.join(c.features)} -> {', '.join(c.target)} of {os.path.basename(c.path)}")
            lines.append(f"FEATURES = {feats.tolist()!r}")
            lines.append(f"TARGETS = {targets.tolist()!r}")
            lines.append("x = torch.tensor(FEATURES, dtype=torch.float64).float()")
            lines.append("y = torch.tensor(TARGETS, dtype=torch.float64).float()" +
                         ("[:, 0]" if targets.shape[1] == 1 else ""))
        frac = d.test_fraction if data.dataset is not None else data.csv.test_fraction  # type: ignore[union-attr]
        lines.append(f"x, y, x_test, y_test = split(x, y, {frac!r}, g)")
        if tuple(split.x_train.shape[1:]) != want:
            lines.append(f"x, x_test = x.reshape((-1,) + {want!r}), x_test.reshape((-1,) + {want!r})")
        lines.append(f"y = y{_conversion(split.y_train, session.targets)}")
        if test:
            lines.append(f"y_test = y_test{_conversion(split.y_test, session.test_targets)}")
        return helpers, lines, test
    _, gen = make_inputs(data, p.model.input_shape, seed)  # the generator as the engine leaves it
    if data.inputs is None:
        lines.append(f"x = torch.rand({tuple(p.model.input_shape)!r}, generator=g)")
    elif isinstance(data.inputs, GeneratorSpec):
        lines.append(f"x = {_generator_expr(data.inputs)}.float()")
    else:
        lines.append(f"x = torch.tensor({data.inputs!r}).float()")
    if data.targets is None:
        out = tuple(session.report.output_shape)
        n = int(session.inputs.shape[0])
        kind = LOSSES[p.training.loss.type].kind
        if kind == "classification":
            classes = out[1] if len(out) > 1 else out[0]
            lines.append(f"y = torch.randint(0, {max(classes, 1)}, {(n,) + tuple(out[2:])!r}, generator=g)")
        elif kind == "binary":
            lines.append(f"y = torch.randint(0, 2, {(n,) + tuple(out[1:])!r}, generator=g).float()")
        else:
            lines.append(f"y = torch.randn({(n,) + tuple(out[1:])!r}, generator=g)")
        return helpers, lines, False
    raw = materialise(data.targets, gen)
    assert raw is not None
    expr = _generator_expr(data.targets) if isinstance(data.targets, GeneratorSpec) else f"torch.tensor({data.targets!r})"
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
            f"        truth = y.long()\n        valid = truth != {ignore_index}\n"
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
    from .metrics import accuracy_kind
    from .session import Session

    session = Session(preset, device="cpu")
    if not session.trainable:
        raise EngineError(f"cannot export {preset.name}: {session.why_not_trainable()}")
    p = session.preset
    t = p.training
    n_steps = t.steps if steps is None else steps
    if n_steps < 0:
        raise EngineError(f"steps must be >= 0; got {n_steps}")
    helpers, data_lines, has_test = _data_code(session)
    uses_residual = any(s.type == "Residual" for _, s in iter_specs(p.model.layers))
    needs_init = any(s.init is not None for _, s in iter_specs(p.model.layers))
    needs_params = any(s.params for _, s in iter_specs(p.model.layers))
    track_acc = t.target_accuracy is not None and accuracy_kind(t.loss.type) is not None
    device = "torch.device(\"cpu\")" if t.device == "cpu" else \
        f"torch.device({t.device!r} if torch.cuda.is_available() else \"cpu\")"

    out: list[str] = []
    w = out.append
    w("#!/usr/bin/env python3")
    w(f'"""{_doc_safe(p.name)}: exported by tui-nn.')
    w("")
    w("Run with `python <this file>`: it prints the loss of every training step, the numbers tui-nn shows")
    w("(on the CPU, with the same torch version). Determinism: inputs, then targets, are drawn from")
    w("torch.Generator().manual_seed(SEED); torch.manual_seed(SEED) comes right before the layers are built;")
    w("the mini-batch order comes from a second generator seeded with SEED.")
    w('"""')
    w("")
    w("from __future__ import annotations")
    w("")
    w("import math")
    w("")
    w("import torch")
    w("from torch import nn")
    w("")
    w(f"SEED = {t.seed}")
    w(f"STEPS = {n_steps}")
    w(f"BATCH_SIZE = {t.batch_size}  # 0: the whole data set every step")
    w(f"SHUFFLE = {t.shuffle}")
    w(f"TARGET_LOSS = {t.target_loss!r}  # stop once the loss is at or below this (mini-batches: the whole")
    w("# training set's, in eval mode, at the end of each epoch; full batch: the step's own)")
    if track_acc:
        w(f"TARGET_ACCURACY = {t.target_accuracy!r}  # stop once the accuracy reaches this")
    w(f"device = {device}")
    w("")
    if uses_residual:
        w("")
        w(_source(Residual))
    for name, cls in LOCAL_CLASSES.items():
        if any(s.type == name for _, s in iter_specs(p.model.layers)):
            w("")
            w(_source(cls))
    if needs_init:
        w("")
        w(_source(init_module))
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
        w(_accuracy_code(t.loss.type, int(t.loss.args.get("ignore_index", -100))))
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
    for path, spec in iter_specs(p.model.layers):
        target = _module_expr(path)
        if spec.init is not None:
            w(f"init_module({target}, {dict(spec.init)!r})")
        for name, value in spec.params.items():
            w(f"set_param({target}.{name}, {value!r})")
        if spec.frozen:
            w(f"for p in {target}.parameters():")
            w("    p.requires_grad_(False)")
    w("model = model.to(device)")
    w("x, y = x.to(device), y.to(device)")
    if has_test:
        w("x_test, y_test = x_test.to(device), y_test.to(device)")
    w("")
    w(f"loss_fn = {_call('nn.' + t.loss.type, t.loss.args)}")
    w("")
    w("")
    w("def make_optimizer():")
    opt_args = ", ".join(f"{k}={_lit(v)}" for k, v in t.optimizer.args.items())
    w(f"    return torch.optim.{OPTIMIZERS[t.optimizer.type].cls.__name__}(list(model.parameters())"
      + (f", {opt_args}" if opt_args else "") + ")")
    w("")
    w("")
    w("optimizer = make_optimizer()")
    if t.scheduler is not None:
        w(f"scheduler = torch.optim.lr_scheduler.{t.scheduler.type}(optimizer"
          + "".join(f", {k}={_lit(v)}" for k, v in t.scheduler.args.items()) + ")  # stepped once per step")
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
    w("        if perm is None or pos >= n:  # a new epoch: a new order (its last batch holds what is left)")
    w("            perm = (torch.randperm(n, generator=order) if SHUFFLE else torch.arange(n)).to(device)")
    w("            pos = 0")
    w("        idx = perm[pos:pos + BATCH_SIZE]")
    w("        pos += BATCH_SIZE")
    w("        xb, yb = x[idx], y[idx]")
    if t.reset_optimizer_each_step:
        w("    optimizer = make_optimizer()  # a fresh optimizer every step")
    w("    optimizer.zero_grad(set_to_none=True)")
    w("    out = model(xb)")
    w("    loss = loss_fn(out, yb)")
    w("    loss.backward()")
    w("    optimizer.step()")
    if t.scheduler is not None:
        w("    scheduler.step()")
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
        raise EngineError(f"the script would be {len(text)} bytes (the data is too large to write inline)")
    return text


def _doc_safe(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', "'''").replace("\n", " ")


def write_script(preset: Preset, path: str | os.PathLike[str], *, steps: int | None = None) -> Path:
    """Export to a file, atomically."""
    from .storage import atomic_write_bytes

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
    from .storage import atomic_write_bytes

    p = Path(path)
    try:
        atomic_write_bytes(p, history_csv(session).encode("utf-8"))
    except OSError as err:
        raise EngineError(f"cannot write {p}: {err.strerror or err}") from None
    return p


__all__ = ["export_script", "write_script", "history_csv", "metrics_csv", "write_history_csv"]
