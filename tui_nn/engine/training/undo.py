"""Undo and redo: snapshots of a session's model spec, weights and data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..model.paths import module_path
from ..spec import ModelSpec

if TYPE_CHECKING:
    import torch


UNDO_DEPTH = 50

UNDO_WEIGHT_LIMIT = 5_000_000  # undo entries keep a copy of the weights for models up to this many numbers



def carry_weights(session: Any, old_modules: dict[str, Any], carry: dict[str, str]) -> None:
    """After a rebuild: give the layers at the new paths the weights of the old layers (same shapes only)."""
    new_modules = dict(session.model.named_modules())
    for new_path, old_path in carry.items():
        src = old_modules.get(module_path(old_path))
        dst = new_modules.get(module_path(new_path))
        if src is None or dst is None or src is dst:
            continue
        try:
            dst.load_state_dict(src.state_dict())
        except (RuntimeError, KeyError):
            continue  # different layers (shapes): keep the rebuilt weights



# ---------------------------------------------------------------------------------------------
# undo


@dataclass
class Snapshot:
    label: str
    model: ModelSpec
    weights: dict[str, torch.Tensor] | None



@dataclass
class UndoStack:
    done: list[Snapshot] = field(default_factory=list)
    undone: list[Snapshot] = field(default_factory=list)

    def push(self, snap: Snapshot) -> None:
        self.done.append(snap)
        del self.done[:-UNDO_DEPTH]
        self.undone.clear()

    def clear(self) -> None:
        self.done.clear()
        self.undone.clear()



def snapshot(session: Any, label: str) -> Snapshot:
    model = session.spec.copy()
    total = sum(p.numel() for p in session.model.parameters())
    weights = None
    if total <= UNDO_WEIGHT_LIMIT:
        weights = {n: p.detach().to("cpu", copy=True) for n, p in session.model.named_parameters()}
    return Snapshot(label, model, weights)



def restore(session: Any, snap: Snapshot) -> None:
    """Rebuild the session's model from a snapshot and put its weights back (optimizer starts afresh)."""
    session.rebuild(snap.model.copy())
    if snap.weights is not None:
        params = dict(session.model.named_parameters())
        import torch

        with torch.no_grad():
            for name, value in snap.weights.items():
                p = params.get(name)
                if p is not None and tuple(p.shape) == tuple(value.shape):
                    p.copy_(value.to(p.device, p.dtype))


__all__ = ['carry_weights', 'UndoStack', 'Snapshot', 'snapshot', 'restore']
