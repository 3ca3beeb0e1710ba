import pytest
import torch

from tui_nn.engine.data import targets
from tui_nn.engine.errors import DataError
from tui_nn.engine.training.objectives import LOSSES


def match_targets(raw, loss, output_shape, n):
    """data.targets.match_targets with the loss's target kind, as the session passes it."""
    return targets.match_targets(raw, loss, output_shape, n, kind=LOSSES[loss].kind)


def reshape_note(raw_shape, shape, loss):
    """data.targets.reshape_note with the loss's target kind, as the session passes it."""
    return targets.reshape_note(raw_shape, shape, loss, kind=LOSSES[loss].kind)


def test_cross_entropy_takes_indices_or_probability_rows():
    assert match_targets(torch.tensor([1, 0]), "CrossEntropyLoss", (2, 3), 2).dtype == torch.long
    probs = match_targets(torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), "CrossEntropyLoss", (2, 3), 2)
    assert probs.dtype == torch.float32 and probs.shape == (2, 3)


@pytest.mark.parametrize("raw,loss,out,n,words", [
    (torch.tensor([3]), "CrossEntropyLoss", (1, 3), 1, "class index 3 is out of range"),
    (torch.tensor([1, 0, 1]), "CrossEntropyLoss", (2, 3), 2, "3 targets but 2 input samples"),
    (torch.tensor([[2.0]]), "BCELoss", (1, 1), 1, "BCELoss needs targets in [0, 1]"),
    (torch.tensor([[1.0, 2.0, 3.0]] * 4), "MSELoss", (4, 2), 4, "targets have shape [4, 3]"),
    (torch.tensor([[0.5, 0.5]]), "NLLLoss", (1, 2), 1, "NLLLoss takes class indices"),
])
def test_mismatches_are_errors_with_hints(raw, loss, out, n, words):
    with pytest.raises(DataError) as info:
        match_targets(raw, loss, out, n)
    assert words in str(info.value)
    assert info.value.hint


def test_mse_broadcasting_trap_is_reported():
    with pytest.raises(DataError) as info:
        match_targets(torch.ones(4, 1), "MSELoss", (4, 3), 4)
    assert "broadcast" in str(info.value)
    # a [N] target for an [N, 1] output is what the user means: reshaped, not refused
    assert match_targets(torch.ones(4), "MSELoss", (4, 1), 4).shape == (4, 1)


def test_session_reports_data_error_as_value():
    from tui_nn.engine.files.preset_read import loads_preset
    from tui_nn.engine.training.session import Session

    s = Session(loads_preset('[model]\ninput_shape = [1, 2]\n[[model.layers]]\ntype = "Linear"\nin_features = 2\n'
                             'out_features = 3\n[data]\ntargets = [5]\n[training]\nloss = "CrossEntropyLoss"\n'))
    assert not s.trainable and "out of range" in s.why_not_trainable()


@pytest.mark.parametrize("loss", ["MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss"])
def test_the_reshape_note_says_what_a_literal_torch_loop_does_with_n_targets(loss):
    """[N] targets for an [N, 1] output are reshaped; the note's claim about plain PyTorch is checked here."""
    import warnings

    from torch import nn

    out, raw = torch.rand(4, 1), torch.rand(4)
    t = match_targets(raw, loss, (4, 1), 4)
    assert t.shape == (4, 1)
    note = reshape_note(tuple(raw.shape), tuple(t.shape), loss)
    assert note.startswith("targets of shape [4] are reshaped to the output's shape [4, 1]")
    fn = getattr(nn, loss)()
    if loss.startswith("BCE"):
        with pytest.raises(ValueError):
            fn(out, raw)
        assert "would refuse them" in note
        return
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        literal = fn(out, raw).item()
    assert "target size" in str(seen[-1].message) and "[4, 4]" in note
    assert literal != fn(out, t).item()  # a different loss


def test_no_reshape_note_for_targets_of_the_outputs_shape_or_class_indices():
    assert reshape_note((4, 1), (4, 1), "MSELoss") is None
    assert reshape_note((4,), (4,), "CrossEntropyLoss") is None
