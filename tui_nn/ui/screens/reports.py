"""Text reports in a dialog: the numerical gradient check, the confusion matrix, a neuron in numbers; and
`Reports`, the keys that open them, the runs compared and the data set dialog, acting through the app's
`EditHost` interface (ui/host.py). Outside text is always literal."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen

from tui_nn import engine

from ..safe import Shown, Text
from .dataset import DatasetModal, dataset_spec
from .dialogs import ErrorModal, TextEditModal, _hint
from .runs import RunsModal

if TYPE_CHECKING:
    from tui_nn.engine import ConfusionMatrix, GradcheckReport, Session

    from ..host import EditHost

MAX_NEURON_TERMS = 256  # terms of y = sum w_i x_i + b written out in the neuron dialog


class ReportModal(ModalScreen[None]):
    """A title and a text (a Rich Text or a plain string, shown literally), scrollable."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, title: str, body: Text | str, *, dialog_id: str = "report-dialog") -> None:
        super().__init__()
        self.title_text = title
        self.body = Text(body) if isinstance(body, str) else body
        self.dialog_id = dialog_id

    def compose(self):  # noqa: ANN201
        with Vertical(classes="dialog report-dialog", id=self.dialog_id):
            yield Shown(Text(self.title_text, style="bold"), classes="dialog-title", line=True)
            with VerticalScroll(id="report-scroll"):
                yield Shown(self.body, id="report-body", markup=False)
            yield _hint("enter / esc: close   arrows: scroll")

    def on_mount(self) -> None:
        self.query_one("#report-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)


def gradcheck_text(report: GradcheckReport) -> Text:
    """The engine's report (largest absolute and relative error per parameter), flagged rows in bold red."""
    bad = [p.name for p in report.params if not p.ok]
    text = Text()
    for line in report.text().splitlines():
        flagged = any(line.startswith(name + " ") for name in bad)
        text.append(line + "\n", style="bold red" if flagged else "")
    return text


def gradcheck_screen(report: GradcheckReport) -> ReportModal:
    verdict = "gradients agree" if report.ok else "GRADIENTS DISAGREE (flagged ✗)"
    return ReportModal(f"Numerical gradient check: {verdict}", gradcheck_text(report), dialog_id="gradcheck-dialog")


def confusion(session: Session) -> tuple[ConfusionMatrix | None, str]:
    """The confusion matrix of the test split, else of the training data (in a worker): (None, _) without a
    classification loss."""
    cm = engine.confusion_matrix(session, "test")
    if cm is None:
        return engine.confusion_matrix(session, "train"), "training data"
    return cm, "test split"


def confusion_screen(result: tuple[ConfusionMatrix | None, str], step: int) -> ModalScreen[None]:
    cm, split = result
    if cm is None:
        return ErrorModal("No confusion matrix", "A confusion matrix needs a classification loss (CrossEntropyLoss, "
                                                 "NLLLoss, BCELoss, BCEWithLogitsLoss) and targets.")
    acc = cm.accuracy
    title = f"Confusion matrix, {split} (step {step})" + (f", accuracy {acc:.1%}" if acc is not None else "")
    return ReportModal(title, Text(cm.text() + "\n\nrows: true class, columns: predicted class"),
                       dialog_id="confusion-dialog")


def engine_text(err: BaseException) -> str:
    """An engine error (or any other) as one line: its message and its hint."""
    message = getattr(err, "message", None) or str(err) or type(err).__name__
    hint = getattr(err, "hint", "")
    return str(message) + (f" ({hint})" if hint else "")


def neuron_screen(session: Session, path: str, show: Callable[[ModalScreen[None]], None]) -> ModalScreen[Any] | None:
    """N on a Linear layer: the dialog that asks which output unit (None when the layer has one unit: its report
    goes to `show` at once). The report writes y = sum w_i x_i + b with the current weights and sample 0."""
    spec = engine.get_layer(session.spec, path)
    assert spec is not None and spec.type == "Linear"
    out_features = int(spec.args.get("out_features", 1))

    def apply(text: str) -> str | None:
        try:
            unit = int(text.strip())
        except ValueError:
            return f"a whole number in 0..{out_features - 1}"
        if not 0 <= unit < out_features:
            return f"a unit in 0..{out_features - 1}"
        try:
            # every term written out (the dialog scrolls); a very wide layer is cut with a count of the rest
            terms = min(int(spec.args.get("in_features", 8)), MAX_NEURON_TERMS)
            eq = engine.neuron_equation(session, engine.module_path(path), unit, max_terms=terms)
        except Exception as err:  # noqa: BLE001
            return engine_text(err)
        show(ReportModal(f"Layer {path} (Linear), unit {unit}, sample 0", Text(eq.text), dialog_id="neuron-dialog"))
        return None

    if out_features == 1:
        apply("0")
        return None
    return TextEditModal(f"Layer {path} (Linear): which output unit?",
                         f"An output unit in 0..{out_features - 1}: its equation with the current "
                         "weights and the first input sample.", "0", apply)


class Reports:
    """D (the data set), the confusion matrix, the gradient check, N (a neuron) and the runs compared: each
    refused while the session is busy, the engine's part run in the host's worker, the report pushed after."""

    def __init__(self, host: EditHost) -> None:
        self.host = host

    @property
    def session(self) -> Session:
        assert self.host.session is not None  # the keys act only once a session is open
        return self.host.session

    def choose_dataset(self) -> None:
        if self.host.refuse("change the data"):
            return
        self.host.action_show_tab("data")
        self.host.push_screen(DatasetModal(self.session.preset.data, self.apply_dataset))

    def apply_dataset(self, values: dict[str, Any]) -> str | None:
        host = self.host
        reason = host.busy_reason()
        if reason:
            return reason
        s = self.session
        try:
            spec = dataset_spec(values, s.preset.data)
        except ValueError as err:
            return str(err)
        except engine.EngineError as err:
            return engine_text(err)
        host.engine_op("use the new data", lambda: s.set_data(spec),
                       then=lambda _r: host.notify(f"data: {engine.describe(spec)}", markup=False))
        return None

    def confusion(self) -> None:
        host = self.host
        if host.refuse("compute the confusion matrix"):
            return
        s = self.session
        host.engine_op("compute the confusion matrix", partial(confusion, s),
                       then=lambda result: host.push_screen(confusion_screen(result, s.step)))

    def gradcheck(self) -> None:
        host = self.host
        if host.refuse("check the gradients"):
            return
        s = self.session
        if not s.trainable:
            host.notify(f"No gradient check: {s.why_not_trainable()}", severity="warning", markup=False)
            return
        host.engine_op("check the gradients", partial(engine.gradcheck_session, s),
                       then=lambda report: host.push_screen(gradcheck_screen(report)))

    def neuron(self) -> None:
        host = self.host
        if host.refuse("write out a neuron"):
            return
        path = host.selected_path()
        spec = engine.get_layer(self.session.spec, path) if path is not None else None
        if spec is None or spec.type != "Linear":
            host.notify("Highlight a Linear layer on the Layers tab (1), then press N.", severity="warning")
            return
        assert path is not None
        dialog = neuron_screen(self.session, path, lambda report: host.call_later(host.push_screen, report))
        if dialog is not None:
            host.push_screen(dialog)

    def compare_runs(self) -> None:
        s = self.host.session
        if s is None:
            return
        if not s.runs.runs:
            self.host.notify("No runs yet: train a little (n, r), change a setting, train again.",
                             severity="information")
            return
        self.host.push_screen(RunsModal(s))
