"""Layer paths: the one home of the forms a layer is named by."""

from __future__ import annotations

from ..errors import EditError
from ..spec import LayerSpec, ModelSpec

# ---------------------------------------------------------------------------------------------
# paths: "3" is a top-level layer, "3.1" the second layer of the Residual block at 3


def flat_layers(layers: list[LayerSpec], prefix: str = "", depth: int = 0) -> list[tuple[str, int, LayerSpec]]:
    out: list[tuple[str, int, LayerSpec]] = []
    for i, spec in enumerate(layers):
        path = f"{prefix}{i}"
        out.append((path, depth, spec))
        if spec.type == "Residual":
            out.extend(flat_layers(spec.layers, f"{path}.", depth + 1))
    return out



def module_path(path: str) -> str:
    """Report path "3.1" -> module path in the built nn.Sequential "3.body.1"."""
    return ".body.".join(path.split("."))



def layer_path_of_param(name: str) -> str:
    """Parameter name "3.body.1.weight" -> report path "3.1"."""
    parts = name.split(".")[:-1]
    return ".".join(p for p in parts if p != "body")



def _container(model: ModelSpec, path: str) -> tuple[list[LayerSpec], int]:
    parts = [int(p) for p in path.split(".")]
    layers = model.layers
    for p in parts[:-1]:
        if not 0 <= p < len(layers) or layers[p].type != "Residual":
            raise EditError(f"no layer {path}")
        layers = layers[p].layers
    idx = parts[-1]
    return layers, idx



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
