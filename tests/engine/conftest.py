import pytest

EXAMPLE = '''
[preset]
name = "Hand-set 3-3-3-3 network"
description = """Shown in the app as the exercise's instructions."""

[model]
input_shape = [1, 3]          # including the batch dimension

[[model.layers]]
type = "Linear"
in_features = 3
out_features = 3
weight = [[0.1, 0.3, 0.4], [0.2, 0.2, 0.3], [0.3, 0.7, 0.9]]   # optional hand-set parameter
# bias = [0.0, 0.0, 0.0]       # likewise optional

[[model.layers]]
type = "ReLU"

[[model.layers]]
type = "Softmax"
dim = 1

[data]
inputs = [[0.1, 0.2, 0.7]]    # inline rows, as in the labs
targets = [1]                 # class indices

[training]
loss = "CrossEntropyLoss"
optimizer = { type = "Adam", lr = 0.09 }
steps = 50
batch_size = 0
device = "cpu"
seed = 0
'''


@pytest.fixture
def example_text() -> str:
    return EXAMPLE
