"""parse_tensor_text: pasted matrices in every accepted form, and clear refusals."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_nn.engine.data.textparse import parse_tensor_text, shape_of
from tui_nn.engine.errors import WeightError


@pytest.mark.parametrize("text, want", [
    ("0.5", 0.5),
    ("  -3 ", -3.0),
    ("1e-3", 0.001),
    ("-.5", -0.5),
    ("1.", 1.0),
    ("\u22122", -2.0),
    ("1 2 3", [1.0, 2.0, 3.0]),
    ("1, 2, 3", [1.0, 2.0, 3.0]),
    ("1,2,3", [1.0, 2.0, 3.0]),
    ("1 2; 3 4", [[1.0, 2.0], [3.0, 4.0]]),
    ("1 2\n3 4\n", [[1.0, 2.0], [3.0, 4.0]]),
    ("1, 2;\n3, 4", [[1.0, 2.0], [3.0, 4.0]]),
    ("\n\n1 2\n\n3 4\n\n", [[1.0, 2.0], [3.0, 4.0]]),
    ("[1, 2, 3]", [1.0, 2.0, 3.0]),
    ("[[1, 2], [3, 4]]", [[1.0, 2.0], [3.0, 4.0]]),
    ("[[1, 2],\n [3, 4],]", [[1.0, 2.0], [3.0, 4.0]]),
    ("[[1. 2.]\n [3. 4.]]", [[1.0, 2.0], [3.0, 4.0]]),
    ("tensor([[0.1000, 0.3000],\n        [0.2000, 0.2000]], requires_grad=True)", [[0.1, 0.3], [0.2, 0.2]]),
    ("Parameter containing:\ntensor([[ 0.1000, -0.3000]], requires_grad=True)", [[0.1, -0.3]]),
    ("tensor([1.5, 2.5], device='cuda:0', grad_fn=<AddBackward0>)", [1.5, 2.5]),
    ("torch.tensor([[1, 2]])", [[1.0, 2.0]]),
    ("array([[1., 2.]], dtype=float32)", [[1.0, 2.0]]),
    ("tensor(0.5000)", 0.5),
    ("tensor(0.5000, grad_fn=<MeanBackward0>)", 0.5),
    ("[[[1, 2]], [[3, 4]]]", [[[1.0, 2.0]], [[3.0, 4.0]]]),
    ("[]", []),
])
def test_accepted_forms(text: str, want: object) -> None:
    assert parse_tensor_text(text) == want


@pytest.mark.parametrize("text, words", [
    ("", "nothing to read"),
    ("   \n ", "nothing to read"),
    ("1 2; 3", "row 2 has 1 number but row 1 has 2"),
    ("[[1, 2], [3]]", "row 2 has 1 entry"),
    ("[[1, 2], 3]", "mixed numbers and lists"),
    ("1 abc", "'abc' at line 1, column 3 is not a number"),
    ("1 2\n3 x", "line 2, column 3"),
    ("nan", "NaN or Inf is not allowed"),
    ("1 -inf", "NaN or Inf is not allowed"),
    ("[1, NaN]", "NaN or Inf is not allowed"),
    ("1e999", "overflows"),
    ("[1, 2", "never closed"),
    ("1, 2]", "no matching '['"),
    ("[1,, 2]", "unexpected ','"),
    ("1,,2", "unexpected ','"),
    ("1, 2,", "missing after the last ','"),
    ("__import__('os')", "is not a number"),
    ("foo [1, 2]", "unexpected text"),
    ("[1, 2] junk", "unexpected text"),
    ("[" * 9 + "1" + "]" * 9, "nested more than 8"),
    ("[1, (2)]", "unexpected '('"),
    ("0x10", "is not a number"),
])
def test_refused_with_reason(text: str, words: str) -> None:
    with pytest.raises(WeightError) as err:
        parse_tensor_text(text)
    assert words in err.value.message


def test_shape_of() -> None:
    assert shape_of(parse_tensor_text("1 2 3; 4 5 6")) == (2, 3)
    assert shape_of(parse_tensor_text("7")) == ()


finite = st.floats(allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4).flatmap(lambda cols: st.lists(st.lists(finite, min_size=cols, max_size=cols),
                                                         min_size=1, max_size=4)))
def test_round_trip_printed_forms(rows: list[list[float]]) -> None:
    nested = repr(rows)
    flat = "\n".join(" ".join(repr(v) for v in r) for r in rows)
    semis = "; ".join(", ".join(repr(v) for v in r) for r in rows)
    assert parse_tensor_text(nested) == rows
    for text in (flat, semis):
        got = parse_tensor_text(text)
        if len(rows) == 1:
            want = rows[0] if len(rows[0]) > 1 else rows[0][0]
        else:
            want = rows
        assert got == want
    assert all(math.isfinite(v) for r in rows for v in r)


@pytest.mark.parametrize("text, where", [("1e39", "line 1, column 1"), ("[[1, -1e39]]", "line 1, column 6"),
                                         ("1 2\n3 4e38", "line 2, column 3")])
def test_numbers_that_overflow_float32_are_refused(text: str, where: str) -> None:
    """Parameters and data are float32: a number finite as a Python float but inf there is refused, where it is."""
    with pytest.raises(WeightError) as err:
        parse_tensor_text(text)
    assert "too large for float32" in err.value.message and where in err.value.message
    assert parse_tensor_text("3.4028234e38") == 3.4028234e38


def _outcome(text: str) -> object:
    try:
        return parse_tensor_text(text)
    except WeightError as err:
        return ("refused", str(err))


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789.eE+-_ ;\n\t\u2212naifx", max_size=40))
def test_the_fast_plain_rows_path_reads_exactly_what_the_tokenizer_reads(text: str) -> None:
    """Whitespace-separated rows are read with str.split and float() (issue 6/7: 10^7 pasted numbers took 35 s);
    on any text the result, or the refusal's words, must be the tokenizer's."""
    import tui_nn.engine.data.textparse as tp

    fast = _outcome(text)
    real = tp._plain_rows
    tp._plain_rows = lambda *a: None  # the tokenizer alone
    try:
        slow = _outcome(text)
    finally:
        tp._plain_rows = real
    assert repr(fast) == repr(slow)  # repr: NaN never comes out, and -0.0 vs 0.0 must agree too


def test_more_numbers_than_the_cap_are_refused_without_reading_them_all() -> None:
    with pytest.raises(WeightError, match="too many numbers"):
        parse_tensor_text("1 " * (10_000_001))
