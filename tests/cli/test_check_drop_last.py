"""`tui-nn check` warns about a BatchNorm layer that the last mini-batch of an epoch (one sample) would make
raise in training, and offers `drop_last = true` (issue 22, 1.7). What raises is plain torch's behaviour."""

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

TORCH_WORDS = "Expected more than 1 value per channel when training"


def tui(*args):
    return subprocess.run([sys.executable, "-m", "tui_nn", *args], capture_output=True, text=True, timeout=300, check=False)


def preset(norm: str, input_shape: list[int], batch_size: int, drop_last: str = "") -> str:
    layers = ('{ type = "Linear", in_features = 2, out_features = 4 }, { type = "BatchNorm1d", num_features = 4 }'
              if norm == "BatchNorm1d" else
              '{ type = "Conv2d", in_channels = 1, out_channels = 4, kernel_size = 1 }, '
              '{ type = "BatchNorm2d", num_features = 4 }, { type = "Flatten" }')
    return f"""
[model]
input_shape = {input_shape}
layers = [{layers}]

[training]
loss = "MSELoss"
batch_size = {batch_size}
{drop_last}
"""


def test_plain_torch_raises_for_one_value_per_channel_only():
    with pytest.raises(ValueError, match=TORCH_WORDS):
        nn.BatchNorm1d(4).train()(torch.rand(1, 4))
    nn.BatchNorm2d(4).train()(torch.rand(1, 4, 2, 2))  # one sample of 2 x 2 values per channel: no error
    nn.BatchNorm1d(4).eval()(torch.rand(1, 4))  # in eval mode: the running statistics, no error


def test_check_warns_and_offers_drop_last(tmp_path):
    path = tmp_path / "bn.toml"
    path.write_text(preset("BatchNorm1d", [7, 2], 3))  # 7 samples in batches of 3: the last holds 1
    out = tui("check", str(path))
    assert out.returncode == 0, out.stderr
    assert TORCH_WORDS in out.stderr and "layer 1 (BatchNorm1d)" in out.stderr
    assert "drop_last = true" in out.stderr
    doc = json.loads(tui("check", str(path), "--json").stdout)
    [w] = [w for w in doc["warnings"] if TORCH_WORDS in w["message"]]
    assert w["path"] == "1" and w["type"] == "BatchNorm1d" and "drop_last = true" in w["fix"]


@pytest.mark.parametrize("text", [
    preset("BatchNorm1d", [7, 2], 3, "drop_last = true"),  # the fix applied
    preset("BatchNorm1d", [8, 2], 3),  # the last batch holds 2
    preset("BatchNorm1d", [7, 2], 0),  # the whole data set every step
    preset("BatchNorm2d", [7, 1, 2, 2], 3),  # 1 x 2 x 2 values per channel: torch does not raise
])
def test_no_warning_where_torch_would_not_raise(tmp_path, text):
    path = tmp_path / "ok.toml"
    path.write_text(text)
    out = tui("check", str(path), "--json")
    assert out.returncode == 0, out.stderr
    assert not [w for w in json.loads(out.stdout)["warnings"] if TORCH_WORDS in w["message"]]
