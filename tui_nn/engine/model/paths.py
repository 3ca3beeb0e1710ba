"""Layer paths: the one home of the forms a layer is named by."""

from __future__ import annotations

from itertools import pairwise

from ..errors import EditError
from ..spec import BLOCKS, LayerSpec, ModelSpec

# ---------------------------------------------------------------------------------------------
# paths: "3" is a top-level layer, "3.1" the second layer of the block at 3 (a Residual's body, a Concat's second
# branch, a Sequential's second layer), "3.shortcut.0" the first layer of the Residual block's projection shortcut


def flat_layers(layers: list[LayerSpec], prefix: str = "", depth: int = 0) -> list[tuple[str, int, LayerSpec]]:
    out: list[tuple[str, int, LayerSpec]] = []
    for i, spec in enumerate(layers):
        path = f"{prefix}{i}"
        out.append((path, depth, spec))
        if spec.type in BLOCKS:
            out.extend(flat_layers(spec.layers, f"{path}.", depth + 1))
        if spec.shortcut:
            out.extend(flat_layers(spec.shortcut, f"{path}.shortcut.", depth + 1))
    return out



def module_path(path: str) -> str:
    """Report path "3.1" -> module path in the built nn.Sequential "3.body.1"; "3.shortcut.0" is both."""
    parts = path.split(".")
    out = parts[0]
    for before, part in pairwise(parts):
        out += f".{part}" if "shortcut" in (before, part) else f".body.{part}"
    return out



def layer_path_of_param(name: str) -> str:
    """Parameter name "3.body.1.weight" -> report path "3.1"."""
    parts = name.split(".")[:-1]
    return ".".join(p for p in parts if p != "body")



def _index(part: str) -> bool:
    return part.isascii() and part.isdigit()


def _container(model: ModelSpec, path: str) -> tuple[list[LayerSpec], int]:
    parts = path.split(".")
    layers = model.layers
    i = 0
    while i < len(parts) - 1:
        if not _index(parts[i]) or not 0 <= int(parts[i]) < len(layers) or layers[int(parts[i])].type not in BLOCKS:
            raise EditError(f"no layer {path}")
        block = layers[int(parts[i])]
        if parts[i + 1] == "shortcut" and block.type == "Residual":
            layers, i = block.shortcut, i + 2
        else:
            layers, i = block.layers, i + 1
    if not _index(parts[-1]):
        raise EditError(f"no layer {path}")
    return layers, int(parts[-1])



def get_layer(model: ModelSpec, path: str) -> LayerSpec:
    layers, idx = _container(model, path)
    if not 0 <= idx < len(layers):
        raise EditError(f"no layer {path}")
    return layers[idx]



def _sibling(path: str, idx: int) -> str:
    head = path.rsplit(".", 1)[0] + "." if "." in path else ""
    return f"{head}{idx}"



def sibling(path: str, delta: int) -> str:
    """The path `delta` places after `path` in the same list."""
    head, _, last = path.rpartition(".")
    return f"{head}.{int(last) + delta}" if head else str(int(last) + delta)


__all__ = ['flat_layers', 'sibling', 'module_path', 'layer_path_of_param', 'get_layer']
