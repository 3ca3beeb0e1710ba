"""The layer table's edits (tab 1): the forms for a new or an edited layer, the fix to apply, the model input
shape typed in, freezing and initialising a layer, undo and redo, and `LayerEdits`, which applies them to the
session through the app's small `EditHost` interface (ui/host.py; the app rebuilds the model in a worker)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from tui_nn import engine

from ..screens.dialogs import InitModal, TextEditModal
from ..screens.layer_form import LayerFormScreen, preview_text
from ..screens.pickers import LayerPicker

if TYPE_CHECKING:
    from tui_nn.engine import Fix, LayerSpec, ModelSpec, Session, ShapeError, UndoStack

    from ..host import EditHost


def where(path: str | None) -> str:
    return f"after layer {path}" if path is not None else "at the end"


def add_form(session: Session, type_name: str, path: str | None, new: LayerSpec) -> LayerFormScreen:
    """The arguments of a new layer of `type_name` after `path`, with the model's shapes previewed."""
    return LayerFormScreen(f"Add {type_name} {where(path)}", type_name, new.args,
                           partial(preview_text, session, path, type_name, True))


def edit_form(session: Session, path: str, spec: LayerSpec) -> LayerFormScreen:
    return LayerFormScreen(f"Layer {path}: {spec.type}", spec.type, spec.args,
                           partial(preview_text, session, path, spec.type, False))


def not_editable(spec: LayerSpec) -> tuple[str, str]:
    """(why the layer has no arguments to edit, the notice's severity), or ("", "")."""
    if spec.type == "Residual":
        return "A Residual block has no arguments: edit the layers inside it.", "warning"
    if not engine.CATALOGUE[spec.type].args:
        return f"{spec.type} has no arguments.", "information"
    return "", ""


def fix_to_apply(err: ShapeError | None, alternative: bool) -> Fix | None:
    """The shape error's fix (f), or its alternative (F: changing the model input shape first)."""
    if err is None:
        return None
    fixes = [err.fix] if not alternative else list(err.extra_fixes)
    if alternative:
        fixes = [f for f in err.extra_fixes if f.layer == engine.INPUT_FIX] or fixes
    return fixes[0] if fixes else None


def has_parameters(session: Session, module_path: str) -> bool:
    module = dict(session.model.named_modules()).get(module_path)
    return module is not None and any(True for _ in module.parameters())


def parse_input_shape(text: str) -> tuple[int, ...] | str:
    """The model input shape typed in ("1, 3" or "[8, 1, 28, 28]"), or the refusal."""
    try:
        shape = tuple(int(x) for x in text.replace("[", " ").replace("]", " ").replace(",", " ").split())
    except ValueError:
        return "whole numbers, e.g. 1, 3 (batch, features) or 8, 1, 28, 28"
    if not shape or any(v < 1 for v in shape) or len(shape) > 8:
        return "one to eight positive sizes, the first counting samples"
    return shape


def input_shape_dialog(current: tuple[int, ...], apply: Callable[[tuple[int, ...]], Any]) -> TextEditModal:
    """I: the model input shape; apply(shape) when it is valid and new."""

    def typed(text: str) -> str | None:
        shape = parse_input_shape(text)
        if isinstance(shape, str):
            return shape
        if shape != tuple(current):
            apply(shape)
        return None

    return TextEditModal("Model input shape", "Sizes separated by commas; the first counts samples (the batch).\n"
                         "Changing the sample shape replaces inline data with random data.",
                         ", ".join(str(v) for v in current), typed)


class LayerEdits:
    """The layer table's keys (add, edit, remove, duplicate, move, fix, freeze, initialise, input shape, undo,
    redo) applied to the host's session: each checks the run rules, asks with a form where it needs to, and
    rebuilds the model off the UI thread with an undo snapshot taken first."""

    def __init__(self, host: EditHost) -> None:
        self.host = host

    @property
    def session(self) -> Session:
        assert self.host.session is not None  # the app's actions run only once a session is open
        return self.host.session

    @property
    def undo_stack(self) -> UndoStack:
        assert self.host.undo_stack is not None
        return self.host.undo_stack

    def edit_model(self, label: str, mutate: Callable[[Any], str | None],
                   carry: dict[str, str] | None = None) -> None:
        """Apply `mutate` to a copy of the model spec and rebuild (off the UI thread). `carry` maps new layer
        paths to old ones whose weights move with them (a moved or duplicated layer)."""
        host = self.host
        if host.refuse(label, retry=lambda: self.edit_model(label, mutate, carry)):
            return
        session = self.session
        spec = session.spec.copy()
        try:
            select = mutate(spec)
        except engine.EditError as err:
            host.notify(err.message, severity="warning", markup=False)
            return
        self.undo_stack.push(engine.snapshot(session, label))

        def rebuild() -> Any:
            old = dict(session.model.named_modules())
            report = session.rebuild(spec)
            if carry:
                engine.carry_weights(session, old, carry)
            return report

        host.engine_op(label, rebuild, undo=lambda: self.undo_stack.done.pop(), select=select)

    def add(self) -> None:
        """a: the layer picker, then the new layer's form."""
        if self.host.refuse("add a layer"):
            return
        path = self.host.selected_path()
        self.host.push_screen(LayerPicker(where(path)), callback=lambda t: self.add_of_type(t, path) if t else None)

    def add_of_type(self, type_name: str, path: str | None) -> None:
        if self.host.refuse("add a layer"):
            return
        s = self.session
        in_shape = engine.shape_at(s.report, s.spec, path, after=True)
        new = engine.default_layer(type_name, in_shape)
        label = f"add {type_name}"

        def insert(args: dict[str, Any] | None) -> None:
            if args is None:
                return
            layer = engine.LayerSpec(type_name, dict(args), layers=[x.copy() for x in new.layers])
            self.edit_model(label, lambda m: engine.insert_layer(m, path, layer))

        if not engine.CATALOGUE[type_name].args:
            insert({})
            return
        self.host.push_screen(add_form(s, type_name, path, new), callback=insert)

    def edit(self) -> None:
        """e (or enter on the table): the highlighted layer's form."""
        host = self.host
        if host.refuse("edit a layer"):
            return
        path = host.selected_path()
        if path is None:
            host.notify("No layer: press a to add one.", severity="warning")
            return
        spec = engine.get_layer(self.session.spec, path)
        why, severity = not_editable(spec)
        if why:
            host.notify(why, severity=severity)
            return

        def done(args: dict[str, Any] | None) -> None:
            if args is None or args == spec.args:
                return

            def mutate(m: ModelSpec) -> str:
                engine.set_args(m, path, args)
                return path

            self.edit_model(f"edit layer {path}", mutate)

        host.push_screen(edit_form(self.session, path, spec), callback=done)

    def remove(self) -> None:
        if self.host.refuse("remove a layer", retry=self.remove):
            return
        path = self.host.selected_path()
        if path is None:
            self.host.notify("No layer to remove.", severity="warning")
            return
        self.edit_model(f"remove layer {path}", lambda m: engine.remove_layer(m, path))

    def duplicate(self) -> None:
        if self.host.refuse("duplicate a layer", retry=self.duplicate):
            return
        path = self.host.selected_path()
        if path is None:
            return
        self.edit_model(f"duplicate layer {path}", lambda m: engine.duplicate_layer(m, path),
                        carry={engine.sibling(path, 1): path})

    def move(self, delta: int) -> None:
        if self.host.refuse("move a layer", retry=lambda: self.move(delta)):
            return
        path = self.host.selected_path()
        if path is None:
            return
        other = engine.sibling(path, delta)
        self.edit_model(f"move layer {path}", lambda m: engine.move_layer(m, path, delta),
                        carry={other: path, path: other})

    def apply_fix(self, alternative: bool = False) -> None:
        s = self.host.session
        err = s.report.error if s is not None else None
        fix = fix_to_apply(err, alternative)
        if fix is None:
            self.host.notify("There is no fix to apply.", severity="warning")
            return
        self.edit_model(f"fix: {fix.text}", lambda m: engine.apply_fix(m, err, fix))

    def undo_redo(self, undo: bool) -> None:
        host = self.host
        what = "undo" if undo else "redo"
        if host.refuse(what, retry=lambda: self.undo_redo(undo)):
            return
        stack = self.undo_stack
        src = stack.done if undo else stack.undone
        dst = stack.undone if undo else stack.done
        if not src:
            host.notify(f"Nothing to {what}.", severity="information")
            return
        snap = src.pop()
        session = self.session
        dst.append(engine.snapshot(session, snap.label))

        def failed() -> None:
            dst.pop()
            src.append(snap)

        host.engine_op(f"{what} {snap.label}", lambda: engine.restore(session, snap), undo=failed,
                       then=lambda _r: host.notify(f"{what}: {snap.label}", markup=False))

    def freeze(self, path: str | None = None) -> None:
        host = self.host
        if host.refuse("freeze a layer"):
            return
        path = path if path is not None else host.selected_path()
        if path is None:
            return
        session = self.session
        spec = engine.get_layer(session.spec, path)
        mpath = engine.module_path(path)
        if not has_parameters(session, mpath):
            host.notify(f"Layer {path} ({spec.type}) has no parameters to freeze.", severity="warning")
            return
        self.undo_stack.push(engine.snapshot(session, f"freeze layer {path}"))
        session.freeze(mpath, not spec.frozen)
        host.notify(f"layer {path} {'frozen' if spec.frozen else 'unfrozen'}")
        host.changed(path)

    def init(self, path: str | None = None) -> None:
        host = self.host
        if host.refuse("initialise a layer"):
            return
        path = path if path is not None else host.selected_path()
        if path is None:
            return
        spec = engine.get_layer(self.session.spec, path)
        mpath = engine.module_path(path)

        def apply(init: dict[str, Any]) -> str | None:
            reason = host.busy_reason()
            if reason:
                return reason
            try:
                init = engine.parse_init(init, "init")
            except engine.EngineError as err:
                return getattr(err, "detail", err.message)
            session = self.session
            self.undo_stack.push(engine.snapshot(session, f"init layer {path}"))
            try:
                session.init_layer(mpath, init)
            except Exception as err:  # noqa: BLE001
                self.undo_stack.done.pop()
                return str(err)
            host.changed()
            host.notify(f"layer {path}: {init['scheme']} initialisation applied")
            return None

        host.push_screen(InitModal(f"Initialise layer {path} ({spec.type})", apply))

    def input_shape(self) -> None:
        """I: the model input shape."""
        if self.host.refuse("change the input shape"):
            return

        def apply(shape: tuple[int, ...]) -> None:
            def mutate(m: ModelSpec) -> None:
                m.input_shape = shape

            self.edit_model("set the input shape", mutate)

        self.host.push_screen(input_shape_dialog(tuple(self.session.spec.input_shape), apply))
