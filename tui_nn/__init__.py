"""tui-nn: a terminal playground for PyTorch neural networks."""

__version__ = "0.1.0"
