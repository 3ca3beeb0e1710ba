"""What the five lab notebooks (shared/labs) print, and which bundled preset reproduces each exercise.

Numbers are copied from the notebooks' printed outputs (cell numbers in the comments), so the tests can
assert them without reading the notebooks.
"""

from __future__ import annotations

# (lab, exercise, preset stem): every exercise of the notebooks must have a bundled preset.
EXERCISES: list[tuple[str, str, str]] = [
    ("000", "shallow 5-10-3 network (Linear, ReLU, Linear, Softmax), forward step by step", "lab000-shallow-forward"),
    ("001", "single neuron Linear(10, 1) without bias on zeros, ones and 1000s", "lab001-neuron-no-bias"),
    ("001", "Linear(10, 5): y = x A^T + b", "lab001-linear-10-5"),
    ("001", "three-layer MLP without activation", "lab001-mlp-no-activation"),
    ("001", "three-layer MLP with ReLU", "lab001-mlp-relu"),
    ("001", "Conv2d(3, 1, 3) stride 1 padding 1 on 9x9", "lab001-conv-stride1"),
    ("001", "Conv2d(3, 1, 3) stride 2 padding 1 on 9x9", "lab001-conv-stride2"),
    ("001", "three-layer conv net on 16x16", "lab001-convnet-16"),
    ("001", "three-layer conv net on 32x32", "lab001-convnet-32"),
    ("001", "conv + Flatten + Linear classifier on 32x32", "lab001-classifier-32"),
    ("001", "the classifier on 16x16: the shape error", "lab001-classifier-16"),
    ("001", "TODO list: numerical gradient check", "lab001-gradient-check"),
    ("002", "tensors from a list, rand, zeros, ones; shape, dtype, device", "lab002-tensors"),
    ("002", "first network: Linear(3, 2) with printed weights", "lab002-first-linear"),
    ("002", "stacked Linear layers 10-18-20-5", "lab002-stacked-linear"),
    ("002", "model_with_sigmoid: Linear(5, 4), Linear(4, 1), Sigmoid", "lab002-sigmoid-head"),
    ("002", "model_with_softmax: Softmax over one output", "lab002-softmax-one-output"),
    ("002", "binary head on the 8-feature sample (Sigmoid)", "lab002-binary-head"),
    ("002", "multi-class head on the 8-feature sample (Softmax)", "lab002-multiclass-head"),
    ("002", "CrossEntropyLoss on two scores with a one-hot target (0.8130)", "lab002-cross-entropy"),
    ("003", "Linear(10, 3) with MSELoss on a random input", "lab003-mse-linear"),
    ("003", "train(): Linear(4, 2), MSELoss, SGD lr 0.1, 10 steps", "lab003-train-sgd"),
    ("003", "Sequential 3-20-2", "lab003-sequential-3-20-2"),
    ("003", "broken Sequential Linear(4, 5), ReLU, Linear(4, 2)", "lab003-broken-sequential"),
    ("003", "hand-written neuron W = 0.5, b = 0.5 on (5, 5, 5)", "lab003-hand-neuron"),
    ("003", "2-3-2 sigmoid model with printed parameters", "lab003-sigmoid-2-3-2"),
    ("003", "seeded 10-128-64-2 network (seed 172)", "lab003-seeded-fnn"),
    ("003", "batch gradient descent", "lab003-gd-batch"),
    ("003", "mini-batch gradient descent", "lab003-gd-minibatch"),
    ("003", "stochastic gradient descent", "lab003-gd-stochastic"),
    ("003", "optimizer: SGD", "lab003-optim-sgd"),
    ("003", "optimizer: SGD with momentum", "lab003-optim-momentum"),
    ("003", "optimizer: Adagrad", "lab003-optim-adagrad"),
    ("003", "optimizer: RMSprop", "lab003-optim-rmsprop"),
    ("003", "optimizer: Adam", "lab003-optim-adam"),
    ("003", "activation functions by hand", "lab003-activations"),
    ("004", "hand-set 3-3-3-3 network, Adam lr 0.09, 50 steps (the notebook's quirks)", "lab004-hand-set-network"),
    ("004", "the same network the usual way (logits into CrossEntropyLoss, one Adam)", "lab004-fixed"),
    ("004", "autograd: y = a**3, m = y**2, z = m.mean(), z.backward() = 3a^5/2", "lab004-autograd"),
]

# Presets with nothing to train on purpose (no parameters): the autograd exercise
NOT_TRAINABLE = {"lab004-autograd"}

# Presets that fail the shape check on purpose: stem -> (layer, type, PyTorch's message, fix arg, fix value)
BROKEN = {
    "lab001-classifier-16": (7, "Linear", "mat1 and mat2 shapes cannot be multiplied (1x768 and 3072x10)",
                             "in_features", 768),
    "lab003-broken-sequential": (2, "Linear", "mat1 and mat2 shapes cannot be multiplied (1x5 and 4x2)",
                                 "in_features", 5),
}

# ---- lab 000
L000_X = [0.9165, 0.8504, 0.4030, 0.9713, 0.4783]  # In 136
L000_Y = 1  # In 137
L000_HIDDEN = [0.5684, 0.8043, 0.0449, 0.0240, -0.3472, -0.5172, -0.0321, -0.7034, -0.1720, 0.4197]  # In 141/142
L000_RELU = [0.5684, 0.8043, 0.0449, 0.0240, 0.0, 0.0, 0.0, 0.0, 0.0, 0.4197]  # In 144/145
L000_OUTPUT = [-0.4243, 0.1639, 0.5530]  # In 146/147
L000_SOFTMAX = [0.1832, 0.3299, 0.4869]  # In 148/149
L000_W1 = [[-0.3646, 0.2963, -0.2007, 0.3272, -0.0337], [-0.0173, 0.1944, 0.0164, 0.1191, 0.4206],  # In 140
           [-0.3664, 0.0666, -0.4121, 0.3695, 0.3009], [0.2638, -0.2859, 0.0034, -0.1858, 0.4321],
           [-0.3570, -0.0592, 0.0775, -0.0298, 0.2510], [-0.2177, -0.3864, -0.2467, 0.3437, 0.2321],
           [0.2404, 0.3210, 0.2272, -0.3242, -0.4134], [-0.1686, 0.0423, -0.4178, -0.1454, 0.1543],
           [-0.4054, 0.0991, -0.1222, -0.3320, 0.1154], [0.2185, -0.2747, 0.3672, 0.1464, 0.0720]]
L000_B1 = [0.4298, 0.3314, -0.0127, -0.0022, -0.0920, -0.3345, -0.1043, -0.3490, 0.4319, 0.1284]

# ---- lab 001
L001_NEURON = [0.0, 0.3221, 322.0690]  # In 38: zeros, ones, 1000s
L001_NEURON_SUM = 0.3221  # In 39
L001_LINEAR = [0.6386, 0.6646, 0.1082, 0.4698, 0.2296]  # In 42/43
L001_WRONG_LAYOUT = [[0.6386, 0.5418, 0.2708, 0.4533, 0.4407],  # In 44: mm(W, x^T) + b (broadcast)
                     [0.7613, 0.6646, 0.3936, 0.5761, 0.5634],
                     [0.4759, 0.3791, 0.1082, 0.2906, 0.2780],
                     [0.6551, 0.5583, 0.2873, 0.4698, 0.4572],
                     [0.4275, 0.3307, 0.0598, 0.2423, 0.2296]]
L001_WRONG_LAYOUT_ERROR = "mat1 and mat2 shapes cannot be multiplied (5x10 and 1x10)"  # In 44
L001_MLP = -0.2671  # In 49
L001_MLP_RELU = 0.0154  # In 51
L001_CONV_STRIDE1 = (1, 1, 9, 9)  # In 54
L001_CONV_STRIDE2 = (1, 1, 5, 5)  # In 56
L001_CONVNET = {16: (1, 3, 16, 16), 32: (1, 3, 32, 32)}  # In 60
L001_CLASSIFIER_32 = (1, 10)  # In 63

# ---- lab 002
L002_FIRST_X = [0.3471, 0.457, -0.2356]  # In 35
L002_FIRST_W = [[-0.0459, 0.0295, 0.2518], [0.4441, 0.5070, 0.0743]]
L002_FIRST_B = [0.5265, 0.1087]
L002_SAMPLE8 = [3, 4, 6, 2, 3, 6, 8, 9]  # In 47
L002_BINARY = 0.6717  # In 47
L002_MULTICLASS = [0.8205, 0.0070, 0.1243, 0.0482]  # In 47
L002_SCORES = [-0.121, 0.1059]  # In 50
L002_CROSS_ENTROPY = 0.8130  # In 50

# ---- lab 003
L003_INPUT = [0.7889, -0.8749, -1.7647, -0.4678, 0.1724, -0.7130, -0.1860, -1.1708, -0.7079, 1.1622]  # In 3
L003_PRED = [-0.7739, 0.4137, 0.3271]  # In 4
L003_MSE = 0.4076  # In 4
L003_TRAIN_LOSSES = [1.2210241556167603, 0.7814555168151855, 0.5001314878463745, 0.3200841248035431,  # In 5
                     0.2048538327217102, 0.13110646605491638, 0.08390815556049347, 0.053701214492321014,
                     0.03436878323554993, 0.02199600636959076]
L003_NEURON = 8.0  # In 9
L003_PRINT_3_20_2 = """Sequential(
  (0): Linear(in_features=3, out_features=20, bias=True)
  (1): ReLU()
  (2): Linear(in_features=20, out_features=2, bias=True)
)"""  # In 6
L003_PRINT_BROKEN = """Sequential(
  (0): Linear(in_features=4, out_features=5, bias=True)
  (1): ReLU()
  (2): Linear(in_features=4, out_features=2, bias=True)
)"""  # In 7
L003_MODEL_PARAMS = {  # In 11: named_parameters() of the 2-3-2 model (linear1 = layer 0, linear2 = layer 2)
    "0.weight": [[-0.19976814, -0.01980531], [-0.70210934, -0.2804035], [-0.47918278, -0.36394453]],
    "0.bias": [-0.00917335, 0.2128045, -0.6331857],
    "2.weight": [[-0.31730545, -0.38738433, -0.28919014], [0.16225891, 0.349739, -0.31868428]],
    "2.bias": [0.54793125, 0.49512607],
}
L003_MODEL_X = [-0.5350, 0.3057]  # In 11
L003_MODEL_Y = [0.5077, 0.6630]  # In 11
L003_SEED = 172  # In 12
L003_SEEDED = [0.2195, 0.0326]  # In 12

# ---- lab 004
L004_LOSSES = [  # In 31: the loss printed in each of the notebook's 49 iterations
    1.2942, 1.1835, 1.0450, 0.8881, 0.7508, 0.6554, 0.6015, 0.5748, 0.5624, 0.5566, 0.5539, 0.5526, 0.5520,
    0.5517, 0.5516, 0.5515, 0.5515, 0.5515, 0.5515] + [0.5514] * 30
L004_OUTPUTS = [  # In 31: model.forward(x) after each of the 49 steps (rows with a tiny value print in
    # scientific notation, 5 significant digits; the others with 4 decimals)
    [0.1865, 0.2612, 0.5523],
    [0.1551, 0.3949, 0.4499],
    [0.1093, 0.5608, 0.3300],
    [0.0671, 0.7224, 0.2105],
    [0.0349, 0.8473, 0.1178],
    [0.0166, 0.9239, 0.0595],
    [0.0076, 0.9638, 0.0286],
    [0.0035, 0.9830, 0.0135],
    [0.0016, 0.9919, 0.0064],
    [7.7343e-04, 9.9615e-01, 3.0752e-03],
    [3.7108e-04, 9.9815e-01, 1.4820e-03],
    [1.7934e-04, 9.9910e-01, 7.1770e-04],
    [8.7016e-05, 9.9956e-01, 3.4852e-04],
    [4.2303e-05, 9.9979e-01, 1.6948e-04],
    [2.0584e-05, 9.9990e-01, 8.2469e-05],
    [1.0021e-05, 9.9995e-01, 4.0143e-05],
    [4.8810e-06, 9.9998e-01, 1.9544e-05],
    [2.3791e-06, 9.9999e-01, 9.5181e-06],
    [1.1613e-06, 9.9999e-01, 4.6379e-06],
    [5.6857e-07, 1.0000e+00, 2.2625e-06],
    [2.8000e-07, 1.0000e+00, 1.1062e-06],
    [1.3950e-07, 1.0000e+00, 5.4340e-07],
    [7.0981e-08, 1.0000e+00, 2.6930e-07],
    [3.7420e-08, 1.0000e+00, 1.3567e-07],
    [2.1009e-08, 1.0000e+00, 7.1081e-08],
    [1.2370e-08, 1.0000e+00, 3.8293e-08],
    [1.0557e-08, 1.0000e+00, 2.9668e-08],
    [9.1359e-09, 1.0000e+00, 2.3448e-08],
    [8.0040e-09, 1.0000e+00, 1.8903e-08],
    [7.0888e-09, 1.0000e+00, 1.5531e-08],
    [6.3387e-09, 1.0000e+00, 1.2987e-08],
    [5.7160e-09, 1.0000e+00, 1.1036e-08],
    [5.1930e-09, 1.0000e+00, 9.5134e-09],
    [4.7490e-09, 1.0000e+00, 8.3063e-09],
    [4.3686e-09, 1.0000e+00, 7.3346e-09],
    [4.0398e-09, 1.0000e+00, 6.5411e-09],
    [3.7533e-09, 1.0000e+00, 5.8848e-09],
    [3.5018e-09, 1.0000e+00, 5.3353e-09],
    [3.2796e-09, 1.0000e+00, 4.8703e-09],
    [3.0820e-09, 1.0000e+00, 4.4729e-09],
    [2.9055e-09, 1.0000e+00, 4.1302e-09],
    [2.7469e-09, 1.0000e+00, 3.8322e-09],
    [2.6037e-09, 1.0000e+00, 3.5713e-09],
    [2.4739e-09, 1.0000e+00, 3.3411e-09],
    [2.3558e-09, 1.0000e+00, 3.1369e-09],
    [2.2479e-09, 1.0000e+00, 2.9546e-09],
    [2.1489e-09, 1.0000e+00, 2.7911e-09],
    [2.0579e-09, 1.0000e+00, 2.6437e-09],
    [1.9740e-09, 1.0000e+00, 2.5102e-09],
]
L004_W = [[[0.1, 0.3, 0.4], [0.2, 0.2, 0.3], [0.3, 0.7, 0.9]],  # In 29
          [[0.2, 0.3, 0.6], [0.3, 0.5, 0.4], [0.5, 0.7, 0.8]],
          [[0.1, 0.3, 0.5], [0.4, 0.7, 0.2], [0.8, 0.2, 0.9]]]

# ---- lab 002: tensor attributes (In 14, In 18)
L002_LIST = [22, 46, 55, 6, 7, 81, 54, 6, 100]
L002_LIST_ATTRS = ((9,), "torch.int64", "cpu")  # Shape: torch.Size([9]), Type: torch.int64, Device: cpu

# ---- lab 004: autograd (In 19-25); a is printed with 4 decimals, so what follows from it is within ~1e-3
L004_A = [[0.3183, 1.0871], [1.7827, 1.3820]]  # In 19
L004_Y = [[0.0323, 1.2847], [5.6654, 2.6394]]  # In 20: a**3
L004_M = [[1.0407e-03, 1.6503e+00], [3.2096e+01, 6.9662e+00]]  # In 21: y**2
L004_Z = 10.1785  # In 23: m.mean()
L004_GRAD = [[4.9037e-03, 2.2772e+00], [2.7007e+01, 7.5611e+00]]  # In 25: a.grad = 3a^5/2
L004_PRINTED = {  # In 19-25, as torch printed them (requires_grad/grad_fn left out): every digit
    "a": "tensor([[0.3183, 1.0871],\n        [1.7827, 1.3820]])",
    "y": "tensor([[0.0323, 1.2847],\n        [5.6654, 2.6394]])",
    "m": "tensor([[1.0407e-03, 1.6503e+00],\n        [3.2096e+01, 6.9662e+00]])",
    "z": "tensor(10.1785)",
    "grad": "tensor([[4.9037e-03, 2.2772e+00],\n        [2.7007e+01, 7.5611e+00]])",
}
