"""Training controls: loss and its arguments, optimizer and its arguments, run settings, device."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Label, Select

from tui_nn import engine

from .. import keys
from ..safe import Shown, Text
from .forms import ArgsForm

if TYPE_CHECKING:
    from tui_nn.engine import ArgSpec, DeviceInfo, Session


class TrainControls(VerticalScroll):
    """Built once a session exists (`load`); posts `Changed` messages the app applies to the session.

    A focused text field takes every printable key, so Esc leaves it: focus goes back to this pane (the global
    keys r, p, s, n... act again; tab or a click goes back into the fields)."""

    BINDINGS = keys.bindings("train")  # ui/keys.py

    def first_error(self, *, steps: bool = True) -> str | None:
        """'lr: ...' for the first field whose text is not valid (its last valid value is the one in use);
        `steps=False` leaves out the steps field (one step, n, does not read it)."""
        for form in self.query(ArgsForm):
            if not form.display:
                continue
            for name, err in form.errors.items():
                if steps or not (form.id == "run-args" and name == "steps"):
                    return f"{name} field: {err}"
        return None

    class Changed(Message):
        """what: "loss", "optimizer", "run", "device"."""

        def __init__(self, what: str, value: Any) -> None:
            super().__init__()
            self.what = what
            self.value = value

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._loading = False
        self.devices: list[DeviceInfo] = []

    def compose(self):  # noqa: ANN201
        yield Shown("loading…", id="controls-loading")

    async def load(self, session: Session, devices: list[DeviceInfo]) -> None:
        self._loading = True
        self.devices = devices
        t = session.training
        await self.remove_children()
        widgets = [
            Shown("Loss", classes="section"),
            Horizontal(Label("loss"), Select([(n, n) for n in engine.LOSSES], value=t.loss.type, allow_blank=False,
                                              compact=True, id="loss-type"), classes="pick-row"),
            ArgsForm(engine.LOSSES[t.loss.type].args, t.loss.args, id="loss-args"),
            Shown("Optimizer", classes="section"),
            Horizontal(Label("optimizer"), Select([(n, n) for n in engine.OPTIMIZERS], value=t.optimizer.type,
                                                  allow_blank=False, compact=True, id="opt-type"),
                       classes="pick-row"),
            ArgsForm(engine.OPTIMIZERS[t.optimizer.type].args, t.optimizer.args, id="opt-args"),
            Shown("Run", classes="section"),
            ArgsForm(run_argspecs(), {"steps": t.steps, "batch_size": t.batch_size, "seed": t.seed,
                                      "shuffle": t.shuffle}, id="run-args"),
            Shown("Schedule and stop", classes="section"),
            Horizontal(Label("scheduler"), Select([("none", "none")] + [(n, n) for n in engine.SCHEDULERS],
                                                  value=t.scheduler.type if t.scheduler is not None else "none",
                                                  allow_blank=False, compact=True, id="sched-type"),
                       classes="pick-row"),
            ArgsForm(engine.SCHEDULERS[t.scheduler.type].args if t.scheduler is not None else (),
                     dict(t.scheduler.args) if t.scheduler is not None else {}, id="sched-args"),
            ArgsForm(stop_argspecs(), {k: v for k, v in (("target_loss", t.target_loss),
                                                         ("target_accuracy", t.target_accuracy)) if v is not None},
                     id="stop-args"),
            Shown("Device", classes="section"),
            Horizontal(Label("device"), Select([(d.name, d.name) for d in devices], value=str(session.device),
                                               allow_blank=False, compact=True, id="device"), classes="pick-row"),
            Shown(Text("\n".join(f"{d.name}: {d.label}" for d in devices)), id="device-label", markup=False),
        ]
        await self.mount_all(widgets)
        self.call_after_refresh(self._done_loading)

    def _in_field(self) -> bool:
        focused = self.screen.focused if self.is_attached else None
        return focused is not None and focused is not self and self in focused.ancestors

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_field":
            return self._in_field()  # shown in the footer only while a field has the focus
        return True

    def choose(self, select_id: str, value: str) -> None:
        """A loss, optimizer or device chosen elsewhere (the command palette): set in its list, which posts
        `Changed` as a choice made here does."""
        self.query_one(f"#{select_id}", Select).value = value

    def show_device(self, device: str) -> None:
        """The device list back on `device` (a move that failed); the Changed it posts asks nothing: the session
        is on `device` already."""
        for select in self.query("#device").results(Select):
            if select.value != device:
                select.value = device

    def action_leave_field(self) -> None:
        if self._in_field():
            self.focus(scroll_visible=False)

    def _done_loading(self) -> None:
        self._loading = False

    async def _replace_form(self, form_id: str, argspecs: Any, values: dict[str, Any]) -> None:
        old = self.query_one(f"#{form_id}", ArgsForm)
        children = list(self.children)
        before = children[children.index(old) - 1]
        await old.remove()
        await self.mount(ArgsForm(argspecs, values, id=form_id), after=before)

    async def on_select_changed(self, event: Select.Changed) -> None:
        sid = event.select.id
        if sid == "sched-type":
            event.stop()
            if self._loading:
                return
            name = str(event.value)
            await self._replace_form("sched-args", engine.SCHEDULERS[name].args if name != "none" else (), {})
            form = self.query_one("#sched-args", ArgsForm)
            if name == "none":
                self.post_message(self.Changed("schedule", None))
            elif form.valid:
                self.post_message(self.Changed("schedule", engine.CallSpec(name, form.args())))
            return
        if sid not in ("loss-type", "opt-type", "device"):
            return
        event.stop()
        if self._loading:
            return
        if sid == "loss-type":
            name = str(event.value)
            await self._replace_form("loss-args", engine.LOSSES[name].args, {})
            self.post_message(self.Changed("loss", engine.CallSpec(name, {})))
        elif sid == "opt-type":
            name = str(event.value)
            lr = self.query_one("#opt-args", ArgsForm).values.get("lr")
            values = {"lr": lr} if lr is not None else {}
            await self._replace_form("opt-args", engine.OPTIMIZERS[name].args, values)
            args = args_of(engine.OPTIMIZERS[name].args, values)
            self.post_message(self.Changed("optimizer", engine.CallSpec(name, args)))
        else:
            self.post_message(self.Changed("device", str(event.value)))

    def on_args_form_changed(self, event: ArgsForm.Changed) -> None:
        event.stop()
        if self._loading or not event.form.valid:
            return
        fid = event.form.id
        if fid == "loss-args":
            name = str(self.query_one("#loss-type", Select).value)
            self.post_message(self.Changed("loss", engine.CallSpec(name, event.form.args())))
        elif fid == "opt-args":
            name = str(self.query_one("#opt-type", Select).value)
            self.post_message(self.Changed("optimizer", engine.CallSpec(name, event.form.args())))
        elif fid == "run-args":
            self.post_message(self.Changed("run", event.form.all_values()))
        elif fid == "sched-args":
            name = str(self.query_one("#sched-type", Select).value)
            if name != "none":
                self.post_message(self.Changed("schedule", engine.CallSpec(name, event.form.args())))
        elif fid == "stop-args":
            self.post_message(self.Changed("stop", event.form.all_values()))


def args_of(argspecs: Any, values: dict[str, Any]) -> dict[str, Any]:
    return engine.args_from_values(argspecs, values)


def stop_argspecs() -> tuple[ArgSpec, ...]:
    arg, num = engine.ArgSpec, engine.FLOAT
    return (
        arg("target_loss", num, None, min=0.0, doc="stop once the loss is at or below this (empty: none)"),
        arg("target_accuracy", num, None, min=0.0, max=1.0,
            doc="stop once a batch's accuracy reaches this, 0..1 (classification)"),
    )


def run_argspecs() -> tuple[ArgSpec, ...]:
    arg, whole = engine.ArgSpec, engine.INT
    return (
        arg("steps", whole, 100, required=True, min=1, max=10**9, doc="steps for r (run)"),
        arg("batch_size", whole, 0, required=True, min=0, max=2**31 - 1, doc="0 = all samples each step"),
        arg("seed", whole, 0, required=True, min=0, max=2**63 - 1, doc="data and initial weights (R resets)"),
        arg("shuffle", engine.BOOL, True, doc="reshuffle mini-batches each epoch"),
    )


def apply_setting(s: Session, what: str, value: Any) -> tuple[bool, str]:
    """Apply a setting of the Train tab (a `TrainControls.Changed`, not the device) to the session: (whether
    the model's loss or optimizer changed: views redraw, a note to show). A refused value raises the engine's
    error and changes nothing."""
    t = s.training
    if what == "loss":
        if value.type != t.loss.type or value.args != t.loss.args:
            s.set_loss(value)
            return True, ""
    elif what == "optimizer":
        if value.type != t.optimizer.type or value.args != t.optimizer.args:
            s.set_optimizer(value)
            return True, ""
    elif what == "run":
        seed_changed = int(value.get("seed", t.seed)) != t.seed
        t.steps = int(value.get("steps", t.steps))
        t.batch_size = int(value.get("batch_size", t.batch_size))
        t.shuffle = bool(value.get("shuffle", t.shuffle))
        t.seed = int(value.get("seed", t.seed))
        return False, "The new seed applies at the next reset (R)." if seed_changed else ""
    elif what == "schedule":
        old = t.scheduler
        if (old is None) != (value is None) or (old is not None and (old.type, old.args) != (value.type, value.args)):
            engine.set_scheduler(s, value)
            return False, f"learning-rate schedule: {value.type if value else 'none (constant)'}"
    elif what == "stop":
        t.target_loss = value.get("target_loss")
        t.target_accuracy = value.get("target_accuracy")
    return False, ""
