"""A live experiment: the spec, the built model, the data, the loss, the optimizer and the history.

Determinism (the contract the tests and the exported scripts rely on):
1. inputs, then targets, are drawn from `torch.Generator().manual_seed(seed)`;
2. `torch.manual_seed(seed)` is called right before the layers are constructed, in order;
3. init schemes and hand-set parameters are applied;
4. mini-batch order is drawn from a second `torch.Generator().manual_seed(seed)`.
"""

from __future__ import annotations

import difflib
import math
import threading
from typing import Any

import torch
from torch import nn

from ..data.tables import attach_test_split
from ..data.targets import reshape_note
from ..data.tensors import make_inputs, make_targets, tensor_to_list
from ..errors import (
    TRAINING_FIX,
    DataError,
    EngineError,
    Fix,
    MemoryBudgetError,
    ShapeError,
)
from ..model.build import (
    build_layer,
    build_model,
    get_param,
    init_module,
    iter_specs,
    set_frozen,
    set_param,
)
from ..shapes.budget import check_memory
from ..shapes.check import check_model
from ..shapes.report import ShapeReport, ShapeWarning
from ..shapes.rules import planned_input_shape
from ..spec import CallSpec, DataSpec, LayerSpec, ModelSpec, Preset
from .devices import resolve_device
from .history import LossHistory
from .metrics import Metrics
from .objectives import LOSSES, OPTIMIZERS, make_loss, make_optimizer, optimizer_kwargs
from .runs import RunRegistry
from .schedules import make_scheduler
from .target_check import target_check

_PENDING: Any = object()  # Session._optimizer before the optimizer is made
_OPTIMIZER_LOCK = threading.Lock()


class ShapeCheckFailed(EngineError):
    """Training asked for on a model whose shapes do not fit."""

    def __init__(self, error: ShapeError) -> None:
        super().__init__(str(error))
        self.error = error


def last_batch_warnings(report: ShapeReport, n: int, batch_size: int, drop_last: bool) -> list[ShapeWarning]:
    """Mini-batches whose last one of an epoch holds one sample (n % batch_size == 1, without drop_last): each
    BatchNorm layer that would then see one value per channel (its input's batch and spatial sizes multiply to
    1) raises in training, as torch does ("Expected more than 1 value per channel when training"). The fix:
    drop_last = true (torch's DataLoader(drop_last=True))."""
    if drop_last or batch_size <= 0 or batch_size >= n or n % batch_size != 1:
        return []
    out = []
    for ly in report.layers:
        shape = tuple(ly.input_shape)
        if not ly.type.startswith("BatchNorm") or len(shape) < 2 or math.prod(shape[2:]) != 1:
            continue
        one = (1,) + shape[1:]
        out.append(ShapeWarning(
            ly.index, ly.path, ly.type,
            f"Expected more than 1 value per channel when training, got input size torch.Size({list(one)}): "
            f"the last mini-batch of each epoch holds 1 sample ({n} samples, batch_size = {batch_size}), and "
            f"{ly.type} raises this in training at that step",
            f"drop the incomplete last mini-batch of each epoch, as torch's DataLoader(drop_last=True) does, or "
            f"choose a batch_size that leaves 0 or at least 2 samples over ({n} % batch_size != 1)",
            Fix(TRAINING_FIX, "drop_last", True, "set drop_last = true in [training]", path=ly.path)))
    return out


def _snapshot(value: Any) -> Any:
    """A copy of a training-state value that later steps cannot change: tensors cloned, containers rebuilt, the
    rest deep-copied. The same result as copy.deepcopy for optimizer state dicts, gradients and permutations (no
    tensor appears twice in them), at a fraction of its cost (CNN of the bench: 0.25 ms instead of 2.0 ms; the
    trainer takes a snapshot every 0.5 s)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snapshot(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_snapshot(v) for v in value)
    import copy

    return copy.deepcopy(value)


class Session:
    def __init__(self, preset: Preset, *, device: str | None = None, budget: int | None = None) -> None:
        self.preset = preset.copy()
        self.original = preset.copy()
        if device is not None:
            self.preset.training.device = device
        self.budget = budget
        self.device = resolve_device(self.preset.training.device)
        self.preset.training.device = str(self.device)
        self.history = LossHistory()
        self.step = 0
        self.data_error: DataError | None = None
        self.model: nn.Sequential = nn.Sequential()
        self._optimizer: Any = _PENDING
        self.loss_fn: nn.Module | None = None
        self.inputs: torch.Tensor = torch.zeros(0)
        self.targets: torch.Tensor | None = None
        self.report: ShapeReport
        self._scheduler: Any = None  # the learning-rate schedule (schedules.py), made with each optimizer
        self.test_inputs: torch.Tensor | None = None  # a data set's test split (data/tables.py)
        self.test_targets: torch.Tensor | None = None
        self.metrics = Metrics()  # accuracy per step and test evaluations (metrics.py)
        self.runs = RunRegistry()  # every training run of this session (runs.py)
        self.reset()

    @classmethod
    def from_preset(cls, preset: Preset, **kw: Any) -> "Session":
        return cls(preset, **kw)

    @classmethod
    def for_worker(cls, preset: Preset, state: dict[str, torch.Tensor], inputs: torch.Tensor,
                   targets: torch.Tensor | None) -> "Session":
        """A session around tensors that already exist (shared memory from the app's process): the model's
        parameters and buffers *are* `state`'s tensors, so training updates them in place."""
        self = cls.__new__(cls)
        self.preset = preset
        self.original = preset
        self.budget = None
        self.device = inputs.device
        self.history = LossHistory()
        self.step = 0
        self.data_error = None
        self.inputs = inputs
        self.targets = targets
        self.report = check_model(preset.model, tuple(inputs.shape), optimizer=preset.training.optimizer.type,
                                  optimizer_args=preset.training.optimizer.args)
        with torch.device("meta"):
            model = nn.Sequential(*[build_layer(spec) for spec in preset.model.layers])
        model.load_state_dict(state, assign=True)
        for path, spec in iter_specs(preset.model.layers):
            if spec.frozen:
                set_frozen(dict(model.named_modules())[path], True)
        self.model = model
        self.loss_fn = make_loss(preset.training.loss.type, preset.training.loss.args).to(self.device)
        self.optimizer = self.new_optimizer()
        self.batch_gen = torch.Generator().manual_seed(preset.training.seed)
        self.batch_perm = None
        self.batch_pos = 0
        return self

    # -- building --------------------------------------------------------------------------------

    @property
    def spec(self) -> ModelSpec:
        return self.preset.model

    @property
    def training(self):  # noqa: ANN201 - TrainingSpec
        return self.preset.training

    def _check(self, spec: ModelSpec, inputs_shape: tuple[int, ...]) -> ShapeReport:
        t = self.training
        # a fix is offered only when the loss then computes on this session's targets too (training/target_check)
        targets = target_check(self.preset.data, t.loss.type, t.loss.args, inputs_shape, t.seed)
        report = check_model(spec, inputs_shape, optimizer=t.optimizer.type, optimizer_args=t.optimizer.args,
                             target_check=targets)
        check_memory(report, str(self.device), self.budget)
        if report.error is None and inputs_shape:
            report.warnings.extend(last_batch_warnings(report, int(inputs_shape[0]), t.batch_size, t.drop_last))
        return report

    def reset(self, *, hand_set: bool = True) -> None:
        """Rebuild data, model (seeded init + hand-set parameters) and optimizer; clear the history.
        With hand_set=False the layers' hand-set values are dropped from the spec first: every layer starts
        from the seed's initialisation (and its init scheme, if it has one)."""
        if not hand_set:
            for _, spec in iter_specs(self.spec.layers):
                spec.params.clear()
        t = self.training
        planned = planned_input_shape(self.preset.data, self.spec.input_shape)
        checked = None
        if planned is not None:  # check shapes and memory before generating anything
            checked = self._check(self.spec, planned)
        inputs, _ = make_inputs(self.preset.data, self.spec.input_shape, t.seed)
        if checked is not None and tuple(inputs.shape) == tuple(planned):
            report = checked  # checked again, the free memory would no longer hold the inputs the estimate counts
        else:
            report = self._check(self.spec, tuple(inputs.shape))
        self.report = report
        self.inputs = inputs.to(self.device)
        self._make_targets()  # draws inputs then targets again, from a freshly seeded generator
        one_stream = self.preset.data.rng == "global"  # the layers continue the data's stream
        try:
            self.model = build_model(self.spec, seed=None if one_stream else t.seed, device=self.device)
        except (RuntimeError, MemoryError) as err:  # the estimate fit, the allocator still said no
            if not isinstance(err, MemoryError) and "memory" not in str(err).lower():
                raise
            raise MemoryBudgetError(f"not enough memory to build this model (estimated {report.memory.describe()})",
                                    needed_bytes=report.memory.total, budget_bytes=0,
                                    hint="make the layers smaller, or use another device") from None
        self.loss_fn = make_loss(t.loss.type, t.loss.args).to(self.device)
        self.discard_optimizer()  # made on first use
        self._start_weights: dict[str, torch.Tensor] | None = None  # the weights the history began from
        self.input_grad: torch.Tensor | None = None  # d loss / d inputs of the last compute_gradients()
        self.step = 0
        self.history.clear()
        self.metrics.clear()
        self.runs.mark_reset()
        self.batch_gen = torch.Generator().manual_seed(t.seed)
        self.batch_perm: torch.Tensor | None = None
        self.batch_pos = 0

    def check_data_shape(self, data: DataSpec, *, hint: str = "change the model's input shape first") -> None:
        """Raise a DataError (with `hint`) when the inputs `data` plans do not fit the model's sample shape or
        have no sample; data sets and CSV files are checked when they are read."""
        planned = planned_input_shape(data, self.spec.input_shape)
        if planned is None:
            return
        if len(planned) < 1 or tuple(planned[1:]) != tuple(self.spec.input_shape[1:]):
            raise DataError(f"inputs of shape {list(planned)} do not fit the model input shape "
                            f"{list(self.spec.input_shape)}: each sample must have shape "
                            f"{list(self.spec.input_shape[1:])}", hint=hint)
        if planned[0] < 1:
            raise DataError("the inputs need at least one sample")

    def set_data(self, data: DataSpec) -> None:
        """Use other data (inline, generators, a data set or a CSV file), keeping the weights, the optimizer
        and the history. Raises an EngineError (and changes nothing) when the data does not fit the model's
        sample shape or the memory budget; targets that do not fit the loss become `data_error`."""
        self.check_data_shape(data)
        inputs, _ = make_inputs(data, self.spec.input_shape, self.training.seed)
        if tuple(inputs.shape[1:]) != tuple(self.spec.input_shape[1:]):
            raise DataError(f"the data's samples have shape {list(inputs.shape[1:])} but the model takes "
                            f"{list(self.spec.input_shape[1:])}", hint="change the model's input shape first")
        report = self._check(self.spec, tuple(inputs.shape))
        self.preset.data = data
        self.report = report
        self.inputs = inputs.to(self.device)
        self.batch_perm = None
        self.batch_pos = 0
        self._make_targets()

    def _make_targets(self) -> None:
        """Targets drawn after the inputs from the data generator, exactly as `reset()` draws them."""
        self.data_error = None
        _, gen = make_inputs(self.preset.data, self.spec.input_shape, self.training.seed)
        kind = LOSSES[self.training.loss.type].kind
        try:
            targets = make_targets(self.preset.data, self.training.loss.type, self.report.output_shape,
                                   int(self.inputs.shape[0]), gen, kind=kind)
            self.targets = targets.to(self.device) if targets is not None else None
        except DataError as err:
            self.targets = None
            self.data_error = err
        attach_test_split(self, kind)

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        """The optimizer over the model's parameters (None for a model without any), made on first use.

        Lazily, because making the first optimizer of a process imports `torch._dynamo` (torch wraps
        `add_param_group` in it), about a second: a session opens and shows its shapes and loss without it."""
        opt = self._optimizer
        if opt is _PENDING:
            with _OPTIMIZER_LOCK:  # the app's load thread may be making it while the UI thread asks
                if self._optimizer is _PENDING:
                    self._optimizer = self.new_optimizer()
                opt = self._optimizer
        return opt

    @optimizer.setter
    def optimizer(self, value: torch.optim.Optimizer | None) -> None:
        self._optimizer = value

    @property
    def optimizer_made(self) -> bool:
        """Whether the optimizer exists yet (reading `optimizer` makes it)."""
        return self._optimizer is not _PENDING

    def discard_optimizer(self) -> None:
        """Start the optimizer and its schedule afresh (made on first use)."""
        self._optimizer = _PENDING
        self._scheduler = None

    @property
    def scheduler(self) -> Any:
        """The learning-rate schedule made with the optimizer (schedules.py), or None."""
        if self._optimizer is _PENDING:
            self.optimizer  # noqa: B018 - makes both
        return self._scheduler

    @scheduler.setter
    def scheduler(self, value: Any) -> None:
        self._scheduler = value

    def new_optimizer(self) -> torch.optim.Optimizer | None:
        """The optimizer over the model's parameters; None for a model without any."""
        params = list(self.model.parameters())
        self.scheduler = None
        if not params:
            return None
        o = self.training.optimizer
        optimizer = make_optimizer(o.type, params, o.args)
        self.scheduler = make_scheduler(self.training.scheduler, optimizer)  # a fresh schedule with it
        return optimizer

    def optimizer_maker(self) -> Any:
        """A zero-argument callable that makes a fresh optimizer exactly as `new_optimizer` does, with the
        arguments checked once: the trainer's per-step path for `reset_optimizer_each_step` (lab 004). None when
        a schedule or a parameterless model needs `new_optimizer` itself. Valid while the model and the training
        settings are unchanged (a run: edits are blocked or queued while one is under way)."""
        params = list(self.model.parameters())
        if not params or self.training.scheduler is not None:
            return None
        o = self.training.optimizer
        make_optimizer(o.type, params, o.args)  # refuses invalid arguments as new_optimizer would
        cls = OPTIMIZERS[o.type].cls
        kw = optimizer_kwargs(o.type, o.args)
        return lambda: cls(params, **kw)

    def rebuild(self, spec: ModelSpec) -> ShapeReport:
        """Use a new model spec; weights of layers whose (type, arguments) are unchanged are kept (matched
        in order, so inserting or removing a layer keeps the others). The optimizer starts afresh."""
        inputs_shape = (int(self.inputs.shape[0]),) + tuple(spec.input_shape[1:])
        if tuple(spec.input_shape[1:]) != tuple(self.inputs.shape[1:]):
            inputs_shape = tuple(spec.input_shape)
        report = self._check(spec, inputs_shape)
        old_specs = list(self.spec.layers)
        old_modules = list(self.model)
        torch.manual_seed(self.training.seed)
        new_model = build_model(spec, seed=None, device=self.device)
        sig = [(s.type, sorted(s.args.items()), repr(s.layers)) for s in old_specs]
        new_sig = [(s.type, sorted(s.args.items()), repr(s.layers)) for s in spec.layers]
        matcher = difflib.SequenceMatcher(a=[repr(x) for x in sig], b=[repr(x) for x in new_sig], autojunk=False)
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                new_model[block.b + k].load_state_dict(old_modules[block.a + k].state_dict())
        self.preset.model = spec
        self.report = report
        self.model = new_model
        self._start_weights = None  # the weights the history began from belong to the model before this edit
        if tuple(spec.input_shape[1:]) != tuple(self.inputs.shape[1:]):
            self.preset.data.inputs = None
            self.preset.data.targets = None
            self.preset.data.dataset = None
            self.preset.data.csv = None
            inputs, _ = make_inputs(self.preset.data, spec.input_shape, self.training.seed)
            self.inputs = inputs.to(self.device)
        self._make_targets()
        self.optimizer = self.new_optimizer()
        return report

    # -- settings --------------------------------------------------------------------------------

    def set_loss(self, loss: CallSpec) -> None:
        """Use another loss; one that cannot be made raises an EngineError and changes nothing."""
        loss_fn = make_loss(loss.type, loss.args).to(self.device)
        self.training.loss = loss
        self.loss_fn = loss_fn
        self._make_targets()

    def set_optimizer(self, optimizer: CallSpec) -> None:
        """Use another optimizer (its state starts afresh); one that cannot be made raises an EngineError and
        changes nothing."""
        params = list(self.model.parameters())
        if params:  # refused here, before anything changes (with the schedule: OneCycleLR's cycle_momentum)
            make_scheduler(self.training.scheduler, make_optimizer(optimizer.type, params, optimizer.args))
        self.training.optimizer = optimizer
        self.optimizer = self.new_optimizer()

    def set_device(self, name: str) -> None:
        dev = resolve_device(name)
        report = check_model(self.spec, tuple(self.inputs.shape), optimizer=self.training.optimizer.type,
                             optimizer_args=self.training.optimizer.args)
        check_memory(report, str(dev), self.budget)
        state = self.optimizer.state_dict() if self.optimizer is not None else None
        schedule = self.scheduler.state_dict() if self.scheduler is not None else None
        self.model.to(dev)
        if self.loss_fn is not None:
            self.loss_fn.to(dev)  # class weights (a loss's buffers) go with the data
        self.inputs = self.inputs.to(dev)
        self.targets = self.targets.to(dev) if self.targets is not None else None
        self.test_inputs = self.test_inputs.to(dev) if self.test_inputs is not None else None
        self.test_targets = self.test_targets.to(dev) if self.test_targets is not None else None
        self.device = dev
        self.training.device = str(dev)
        self.optimizer = self.new_optimizer()
        if state is not None:
            self.optimizer.load_state_dict(state)
        if schedule is not None and self.scheduler is not None:
            self.scheduler.load_state_dict(schedule)

    # -- training state --------------------------------------------------------------------------

    def train_state(self, *, copy: bool = False, weights: bool = False) -> dict[str, Any]:
        """What a later run continues from: the step, the optimizer's and the schedule's state, the mini-batch
        order and position, the RNG states and the gradients (and, with `weights`, the parameters and buffers).
        With `copy`, every tensor is cloned: a snapshot that later steps cannot change."""
        own = _snapshot if copy else (lambda value: value)
        opt = self.optimizer if self.optimizer_made else None
        state: dict[str, Any] = {
            "step": self.step,
            "optimizer": own(opt.state_dict()) if opt is not None else None,
            "scheduler": own(self.scheduler.state_dict()) if opt is not None and self.scheduler is not None else None,
            "batch_perm": own(self.batch_perm),
            "batch_pos": self.batch_pos,
            "batch_gen": self.batch_gen.get_state(),
            "rng": torch.get_rng_state(),
            "cuda_rng": (torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None),
            "grads": {n: own(p.grad) for n, p in self.model.named_parameters() if p.grad is not None},
        }
        if weights:
            state["weights"] = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return state

    def apply_train_state(self, state: dict[str, Any]) -> None:
        """Continue from `train_state()`'s result (a fresh optimizer is loaded with the saved state)."""
        import copy as copying

        self.step = state["step"]
        if "weights" in state:
            with torch.no_grad():
                for k, v in self.model.state_dict().items():
                    v.copy_(state["weights"][k])
        if state["optimizer"] is not None:
            self.optimizer = self.new_optimizer()
            if self.optimizer is not None:  # load_state_dict keeps the given tensors: hand it copies
                self.optimizer.load_state_dict(copying.deepcopy(state["optimizer"]))
                if state.get("scheduler") is not None and self.scheduler is not None:
                    self.scheduler.load_state_dict(state["scheduler"])
        elif "weights" in state:  # a snapshot taken before the optimizer had state
            self.discard_optimizer()
        perm = state["batch_perm"]
        self.batch_perm = perm.clone() if perm is not None and "weights" in state else perm
        self.batch_pos = state["batch_pos"]
        self.batch_gen.set_state(state["batch_gen"])
        torch.set_rng_state(state["rng"])
        if state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        params = dict(self.model.named_parameters())
        for p in params.values():
            p.grad = None
        for name, grad in state["grads"].items():
            if name in params:
                params[name].grad = grad.clone() if "weights" in state else grad

    # -- inspection ------------------------------------------------------------------------------

    @property
    def trainable(self) -> bool:
        return (self.report.error is None and self.targets is not None and self.data_error is None
                and self.has_parameters)

    @property
    def has_parameters(self) -> bool:
        return next(self.model.parameters(), None) is not None

    def why_not_trainable(self) -> str:
        if self.report.error is not None:
            return str(self.report.error)
        if self.data_error is not None:
            return str(self.data_error)
        if self.targets is None:
            return "there are no targets"
        if not self.has_parameters:
            return "the model has no parameters to train (add a layer with weights, such as Linear)"
        return ""

    def trace(self) -> list[tuple[str, torch.Tensor]]:
        """The input and each top-level layer's output for the current inputs (eval mode, no grad)."""
        out = [("input", self.inputs.detach())]
        if self.report.error is not None and self.report.error.layer == 0:
            return out
        was_training = self.model.training
        self.model.eval()
        try:
            x = self.inputs
            with torch.no_grad():
                for i, layer in enumerate(self.model):
                    if self.report.error is not None and i >= self.report.error.layer:
                        break
                    x = layer(x)
                    out.append((f"{i} {self.spec.layers[i].type}", x.detach()))
        finally:
            self.model.train(was_training)
        return out

    def forward(self) -> torch.Tensor | None:
        if self.report.error is not None:
            return None
        return self.trace()[-1][1]

    def loss_value(self) -> float | None:
        """The loss of the current output on the whole data; None without output or targets.
        A loss that cannot be computed (BCELoss on values outside [0, 1], say) raises DataError."""
        out = self.forward()
        if out is None or self.targets is None or self.loss_fn is None:
            return None
        try:
            with torch.no_grad():
                return float(self.loss_fn(out, self.targets).item())
        except Exception as err:  # noqa: BLE001 - torch's message becomes a value with a hint
            from ..errors import friendly_error

            message, hint = friendly_error(err)
            raise DataError(f"the loss cannot be computed: {message}", hint=hint) from None

    @property
    def can_backward(self) -> bool:
        """Whether a forward and backward pass can run (the model may have no parameters: then only the
        gradient with respect to the input comes out, as in lab 004's autograd example)."""
        return self.report.error is None and self.targets is not None and self.data_error is None

    def compute_gradients(self) -> float:
        """One forward and backward pass on the whole data, without an optimizer step; returns the loss.
        Besides the parameters' .grad, the gradient of the loss with respect to the inputs is kept in
        `input_grad` (cleared by the next training step or reset)."""
        if not self.can_backward:
            raise EngineError(self.why_not_trainable())
        assert self.loss_fn is not None and self.targets is not None
        self.model.zero_grad(set_to_none=True)
        x = self.inputs.detach().clone().requires_grad_(True)
        loss = self.loss_fn(self.model(x), self.targets)
        loss.backward()
        self.input_grad = x.grad.detach() if x.grad is not None else None
        return float(loss.item())

    def named_parameters(self) -> list[tuple[str, torch.Tensor]]:
        return [(n, p) for n, p in self.model.named_parameters()]

    def get_param(self, name: str) -> torch.Tensor:
        return get_param(self.model, name)

    def set_param(self, name: str, value: Any, index: tuple[int, ...] | None = None) -> None:
        set_param(self.model, name, value, index)

    def _module(self, path: str) -> nn.Module:
        return dict(self.model.named_modules())[path]

    def _layer_spec(self, path: str) -> LayerSpec:
        return dict(iter_specs(self.spec.layers))[path]

    def init_layer(self, path: str, init: dict[str, Any]) -> None:
        init_module(self._module(path), init)

    def freeze(self, path: str, frozen: bool = True) -> None:
        set_frozen(self._module(path), frozen)
        self._layer_spec(path).frozen = frozen
        self.report = check_model(self.spec, tuple(self.inputs.shape), optimizer=self.training.optimizer.type,
                                  optimizer_args=self.training.optimizer.args)

    def note_run_start(self) -> None:
        """Called as a run begins: at step 0, remember the weights the loss history starts from. The input
        gradient of an earlier backward pass no longer matches the weights."""
        self.input_grad = None
        if self.step == 0:
            self._start_weights = {k: v.detach().clone() for k, v in self.model.named_parameters()}

    @property
    def has_start_weights(self) -> bool:
        """Whether `current_preset(at_start=True)` can give the weights of step 0 (or the session is there)."""
        return self.step == 0 or getattr(self, "_start_weights", None) is not None

    def current_preset(self, *, with_weights: bool = True, at_start: bool = False) -> Preset:
        """The experiment as a preset; with_weights writes every parameter as a hand-set value: the current
        ones, or with `at_start` those the loss history began from at step 0 (when known: has_start_weights),
        so that training the preset from there reproduces the history."""
        preset = self.preset.copy()
        if with_weights:
            start = getattr(self, "_start_weights", None) if at_start and self.step > 0 else None
            params = start if start is not None else dict(self.model.named_parameters())
            for path, spec in iter_specs(preset.model.layers):
                if spec.type == "Residual":
                    continue
                prefix = f"{path}." if path else ""
                module = dict(self.model.named_modules())[path]
                for name, _ in module.named_parameters(recurse=False):
                    spec.params[name] = tensor_to_list(params[prefix + name])
        return preset


def target_note(data: DataSpec, input_shape: tuple[int, ...], loss: str, seed: int,
                targets: torch.Tensor | None) -> str | None:
    """`reshape_note` for the targets the session uses (`targets`, as match_targets made them): the raw targets
    are drawn again, as the data says, to see their shape. None without such a reshape."""
    if targets is None or (data.targets is None and data.dataset is None and data.csv is None):
        return None  # random targets are drawn in the output's shape
    kind = LOSSES[loss].kind
    x, gen = make_inputs(data, input_shape, seed)
    try:
        raw = make_targets(data, loss, None, int(x.shape[0]), gen, kind=kind)
    except Exception:  # noqa: BLE001 - the session made them once; a note is not worth an error
        return None
    return None if raw is None else reshape_note(tuple(raw.shape), tuple(targets.shape), loss, kind=kind)
