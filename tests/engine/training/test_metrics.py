"""Accuracy, test loss beside the training loss, the confusion matrix, and stopping at a target accuracy."""

import pytest
import torch
from torch import nn

from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.spec import CallSpec
from tui_nn.engine.training.metrics import (
    ConfusionMatrix,
    Series,
    accuracy_kind,
    batch_accuracy,
    confusion_matrix,
    evaluate,
)
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import Progress, Trainer, train

SPIRAL = '''
[model]
input_shape = [1, 2]
[[model.layers]]
type = "Linear"
in_features = 2
out_features = 16
[[model.layers]]
type = "Dropout"
p = 0.1
[[model.layers]]
type = "Tanh"
[[model.layers]]
type = "Linear"
in_features = 16
out_features = 3
[data]
dataset = { name = "spiral", samples = 150, noise = 0.05, test_fraction = 0.2, classes = 3 }
[training]
loss = "CrossEntropyLoss"
optimizer = { type = "Adam", lr = 0.05 }
batch_size = 24
seed = 2
'''


def test_accuracy_follows_the_loss():
    out = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 5.0, 0.0], [9.0, 0.0, 0.0]])
    y = torch.tensor([0, 2, 0, -100])
    assert batch_accuracy(out, y, "CrossEntropyLoss").item() == pytest.approx(2 / 3)  # ignore_index left out
    probs = nn.functional.one_hot(torch.tensor([0, 2, 0, 1]), 3).float()
    assert batch_accuracy(out, probs, "CrossEntropyLoss").item() == 0.5  # probability rows: arg-max
    logits = torch.tensor([[0.3], [-2.0], [0.1]])
    assert batch_accuracy(logits, torch.tensor([[1.0], [0.0], [0.0]]), "BCEWithLogitsLoss").item() == \
        pytest.approx(2 / 3)
    assert batch_accuracy(torch.tensor([[0.7], [0.4]]), torch.tensor([1.0, 1.0]), "BCELoss").item() == 0.5
    assert batch_accuracy(out, out, "MSELoss") is None
    assert [accuracy_kind(n) for n in ("NLLLoss", "BCELoss", "HuberLoss")] == ["classification", "binary", None]


def test_test_loss_is_reported_beside_the_training_loss_and_changes_nothing():
    p = loads_preset(SPIRAL)
    reports: list[Progress] = []
    s = Session(p)
    fin = Trainer(s).run(60, report=reports.append, every=20)
    assert [r.step for r in reports] == [20, 40, 60]
    for r in reports:
        assert r.evaluation is not None and r.evaluation.step == r.step and r.evaluation.samples == 30
        assert r.test_loss == r.evaluation.loss and 0 <= r.test_accuracy <= 1
        assert r.accuracy is not None and 0 <= r.accuracy <= 1
    assert fin.evaluation.step == 60 and fin.evaluation == s.metrics.evals[-1]
    # the test loss is the eval-mode loss of the test split at that step
    assert fin.evaluation.loss == pytest.approx(evaluate(s, "test").loss, abs=0)
    steps, test_loss, test_acc = s.metrics.test_series()
    assert steps.tolist() == [20, 40, 60]
    assert s.metrics.accuracy.arrays()[0].tolist() == [20, 40, 60]
    # evaluating (every step here) does not change the training losses, weights or batch order
    quiet = Session(p)
    quiet.test_inputs = quiet.test_targets = None
    _, a = train(quiet, 60)
    _, b = train(Session(p), 60, interval=0)
    assert a == b


def test_reported_accuracy_is_that_of_the_steps_own_batch():
    p = loads_preset(SPIRAL.replace("p = 0.1", "p = 0.0"))
    s = Session(p)
    seen = []

    def report(r):
        seen.append(r)

    # replay: the batch of step 10 and the weights before it give the accuracy reported at step 10
    ref = Session(p)
    train(ref, 9)
    from tui_nn.engine.training.trainer import _Batches

    xb, yb = _Batches(ref, ref.training.batch_size, ref.training.shuffle).next()
    ref.model.train()
    with torch.no_grad():
        want = (ref.model(xb).argmax(1) == yb).float().mean().item()
    Trainer(s).run(10, report=report, every=10)
    assert seen[-1].accuracy == pytest.approx(want, abs=0)


def test_regression_has_no_accuracy():
    s = Session(loads_preset(SPIRAL.replace("CrossEntropyLoss", "MSELoss").replace("out_features = 3", "out_features = 1")
                             .replace('dataset = { name = "spiral", samples = 150, noise = 0.05, test_fraction = 0.2, '
                                      'classes = 3 }', 'dataset = { name = "plane", samples = 50, test_fraction = 0.2 }')))
    fin = Trainer(s).run(5, every=5)
    assert fin.accuracy is None and fin.evaluation.accuracy is None and fin.evaluation.loss is not None
    assert confusion_matrix(s) is None and len(s.metrics.accuracy) == 0


def _accuracy_per_step(p, steps):
    """Full batch: the accuracy of each step's own forward output, stepping a twin session one step at a time."""
    twin = Session(p)
    twin.preset.training.target_accuracy = None
    out = []
    for _ in range(steps):
        seen = []
        Trainer(twin).run(1, report=lambda r: seen.append(r))
        out.append(seen[-1].accuracy)
    return out


def test_stop_at_a_target_accuracy():
    text = SPIRAL.replace("batch_size = 24", "batch_size = 0").replace('name = "spiral"', 'name = "blobs"')
    p = loads_preset(text + "target_accuracy = 0.9\n")
    assert p.training.target_accuracy == 0.9
    s = Session(p)
    fin, losses = train(s, 2000)
    assert fin.reason == "target" and fin.accuracy >= 0.9 and 1 < fin.step < 2000
    # with a target the accuracy is checked every step (reports stay rate-limited): every earlier step was below it
    per_step = _accuracy_per_step(p, fin.step)
    assert all(a < 0.9 for a in per_step[:-1]) and per_step[-1] == fin.accuracy
    assert len(s.metrics.accuracy) < fin.step  # recorded at reports, not at every step
    assert fin.evaluation is not None and fin.evaluation.step == fin.step  # the test split at the stop


def test_target_accuracy_with_mini_batches_is_the_whole_training_set_at_epoch_ends():
    text = SPIRAL.replace('name = "spiral"', 'name = "blobs"')  # batch_size 24 of 120 training samples
    p = loads_preset(text + "target_accuracy = 0.9\n")
    s = Session(p)
    fin, _ = train(s, 5000)
    assert fin.reason == "target"
    epoch = -(-int(s.inputs.shape[0]) // 24)
    assert fin.step % epoch == 0  # checked at the end of an epoch
    assert evaluate(s, "train").accuracy >= 0.9
    # the previous epoch ends were below the target
    twin = Session(p)
    twin.preset.training.target_accuracy = None
    for _ in range(fin.step // epoch - 1):
        train(twin, epoch)
        assert evaluate(twin, "train").accuracy < 0.9


def test_a_target_does_not_report_every_step():
    text = SPIRAL.replace("batch_size = 24", "batch_size = 0")
    s = Session(loads_preset(text + "target_loss = 1e-9\n"))
    seen = []
    Trainer(s).run(200, report=seen.append, every=50)
    progress = [r for r in seen if isinstance(r, Progress)]
    assert [r.step for r in progress] == [50, 100, 150, 200]


def test_mini_batches_use_every_sample_each_epoch():
    """The last batch of an epoch holds what is left (torch's DataLoader default), so no sample is skipped."""
    s = Session(loads_preset(SPIRAL.replace("batch_size = 24", "batch_size = 50")))
    n = int(s.inputs.shape[0])
    assert n % 50  # a partial last batch
    from tui_nn.engine.training.trainer import _Batches

    b = _Batches(s, 50, True)
    seen = []
    for _ in range(-(-n // 50)):
        xb, _ = b.next()
        seen.append(int(xb.shape[0]))
    assert sum(seen) == n and seen[-1] == n % 50
    assert sorted(s.batch_perm.tolist()) == list(range(n))


def test_target_accuracy_is_validated():
    with pytest.raises(Exception) as info:
        loads_preset(SPIRAL + "target_accuracy = 1.5\n")
    assert info.value.field == "training.target_accuracy"


def test_confusion_matrix_counts_predictions():
    s = Session(loads_preset(SPIRAL))
    train(s, 100)
    cm = confusion_matrix(s, "test")
    assert isinstance(cm, ConfusionMatrix) and cm.classes == 3 and cm.total == 30
    s.model.eval()
    with torch.no_grad():
        pred = s.model(s.test_inputs).argmax(1)
    for t in range(3):
        for q in range(3):
            assert cm.counts[t][q] == int(((s.test_targets == t) & (pred == q)).sum())
    assert cm.accuracy == pytest.approx(evaluate(s, "test").accuracy)
    train_cm = confusion_matrix(s, "train")
    assert train_cm.total == 120
    assert "class 2" in cm.text()


def test_binary_confusion_matrix_and_no_split():
    text = SPIRAL.replace("out_features = 3", "out_features = 1").replace("CrossEntropyLoss", "BCEWithLogitsLoss") \
        .replace(", classes = 3", "")
    s = Session(loads_preset(text))
    cm = confusion_matrix(s, "test")
    assert cm.classes == 2 and cm.total == 30
    s.test_inputs = s.test_targets = None
    assert confusion_matrix(s, "test") is None and evaluate(s, "test") is None


def test_metrics_follow_reset_and_are_bounded():
    s = Session(loads_preset(SPIRAL))
    Trainer(s).run(10, every=5)
    assert len(s.metrics.evals) == 2
    s.reset()
    assert len(s.metrics.evals) == 0 and len(s.metrics.accuracy) == 0
    series = Series(capacity=8)
    for i in range(1, 101):
        series.add(i, float(i))
    assert len(series) <= 8 and series.points[-1] == (100, 100.0)
    series.truncate(50)
    assert all(step <= 50 for step, _ in series.points)


def test_evaluation_leaves_the_mode_and_weights_alone():
    s = Session(loads_preset(SPIRAL.replace("Dropout", "BatchNorm1d").replace("p = 0.1", "num_features = 16")))
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    s.model.train()
    evaluate(s, "test")
    confusion_matrix(s, "train")
    assert s.model.training
    for k, v in s.model.state_dict().items():
        assert torch.equal(v, before[k]), k  # BatchNorm running statistics included


def test_set_loss_keeps_working_metrics():
    s = Session(loads_preset(SPIRAL))
    s.set_loss(CallSpec("CrossEntropyLoss", {"label_smoothing": 0.1}))
    assert evaluate(s, "test").loss is not None


@pytest.mark.parametrize("ending", ["stopped", "done"])
def test_the_last_report_of_a_full_batch_run_has_its_last_steps_accuracy(ending):
    """The output an accuracy is taken from is kept only at reports: a run that stops (or ends) between two
    reports still reports the accuracy of the step it ended at, not that of the report before."""
    text = SPIRAL.replace("batch_size = 24", "batch_size = 0").replace('name = "spiral"', 'name = "blobs"')
    p = loads_preset(text)
    s = Session(p)
    seen: list = []
    calls = [0]

    def should_stop() -> bool:
        calls[0] += 1
        return ending == "stopped" and calls[0] > 9  # after 9 steps

    fin = Trainer(s).run(9 if ending == "done" else None, report=seen.append, should_stop=should_stop,
                         interval=1e9)  # no timed report between the first step and the end
    progress = [r for r in seen if isinstance(r, Progress)]
    assert fin.step == 9 and [r.step for r in progress] == [1, 9]
    per_step = _accuracy_per_step(p, 9)
    assert progress[0].accuracy == per_step[0] and progress[-1].accuracy == per_step[-1] == fin.accuracy
    assert len(set(per_step)) > 1  # the accuracy moved: the test tells the last step from the first
