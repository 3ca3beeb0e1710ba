"""Writing presets: the TOML text that `load_preset` reads back as the same experiment."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import tomli_w

from ..spec import BLOCKS, GeneratorSpec, LayerSpec, Preset


def _layer_to_dict(spec: LayerSpec) -> dict[str, Any]:
    """A layer entry as the file writes it. PReLU's constructor argument `init` (a number) and the init
    scheme (a name or table) share one key: with both set, the scheme is written unless it is "default"
    (which is PReLU's own init from that number anyway); another scheme overwrites the slope it sets."""
    out = spec.to_dict()
    if spec.type == "PReLU" and "init" in spec.args and spec.init is not None:
        if spec.init.get("scheme", "default") == "default":
            out["init"] = spec.args["init"]
    if spec.type in BLOCKS:
        out["layers"] = [_layer_to_dict(s) for s in spec.layers]
    if spec.shortcut:
        out["shortcut"] = [_layer_to_dict(s) for s in spec.shortcut]
    return out



def preset_to_dict(preset: Preset) -> dict[str, Any]:
    head: dict[str, Any] = {"name": preset.name}
    if preset.description:
        head["description"] = preset.description
    if preset.lab:
        head["lab"] = preset.lab
    out: dict[str, Any] = {
        "preset": head,
        "model": {"input_shape": list(preset.model.input_shape),
                  "layers": [_layer_to_dict(layer) for layer in preset.model.layers]},
    }
    data: dict[str, Any] = {}
    for key in ("inputs", "targets"):
        value = getattr(preset.data, key)
        if value is not None:
            data[key] = value.to_dict() if isinstance(value, GeneratorSpec) else value
    if preset.data.dataset is not None:
        data["dataset"] = preset.data.dataset.to_dict()
    if preset.data.csv is not None:
        data["csv"] = preset.data.csv.to_dict()
    if preset.data.rng != "own":
        data["rng"] = preset.data.rng
    if data:
        out["data"] = data
    t = preset.training
    training: dict[str, Any] = {
        "loss": t.loss.to_value(), "optimizer": t.optimizer.to_value(), "steps": t.steps,
        "batch_size": t.batch_size, "shuffle": t.shuffle, "device": t.device, "seed": t.seed,
    }
    if t.target_loss is not None:
        training["target_loss"] = t.target_loss
    if t.reset_optimizer_each_step:
        training["reset_optimizer_each_step"] = True
    if t.scheduler is not None:
        training["scheduler"] = {"type": t.scheduler.type, **t.scheduler.args}
    if t.target_accuracy is not None:
        training["target_accuracy"] = t.target_accuracy
    if t.drop_last:
        training["drop_last"] = True
    if t.clip_grad_norm is not None:
        training["clip_grad_norm"] = t.clip_grad_norm
    if t.clip_grad_value is not None:
        training["clip_grad_value"] = t.clip_grad_value
    out["training"] = training
    return out



def _toml_value(value: Any) -> str:
    """One TOML value, compact: numeric lists on one line per innermost row."""
    if isinstance(value, list):
        if value and all(isinstance(v, list) for v in value):
            inner = ",\n    ".join(_toml_value(v) for v in value)
            return f"[\n    {inner},\n]"
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, float):
        text = repr(value)
        return text if ("." in text or "e" in text or "n" in text) else text + ".0"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return tomli_w.dumps({"v": value}, multiline_strings=True)[4:].rstrip("\n")



def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else tomli_w.dumps({key: 0}).split(" = ")[0]



def _table(lines: list[str], header: str, table: dict[str, Any]) -> None:
    lines.append(header)
    nested: list[tuple[str, dict[str, Any]]] = []
    for key, value in table.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            nested.extend((key, v) for v in value)
            continue
        lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    name = header.strip("[]")
    for key, sub in nested:
        lines.append("")
        _table(lines, f"[[{name}.{key}]]", sub)



def dumps_preset(preset: Preset) -> str:
    """TOML text that `loads_preset` reads back as the same experiment (weights row by row)."""
    doc = preset_to_dict(preset)
    lines: list[str] = []
    for section, table in doc.items():
        if lines:
            lines.append("")
        layers = table.pop("layers", None) if section == "model" else None
        _table(lines, f"[{section}]", table)
        for layer in layers or []:
            lines.append("")
            _table(lines, "[[model.layers]]", layer)
    return "\n".join(lines) + "\n"



def save_preset(preset: Preset, path: str | os.PathLike[str]) -> None:
    from .atomic import atomic_write_bytes

    if preset.data.csv is not None:  # keep a relative CSV path pointing at the same file from the new folder
        from ..data.csvfile import rebase

        preset = preset.copy()
        preset.data = rebase(preset.data, Path(path).resolve().parent)
    atomic_write_bytes(path, dumps_preset(preset).encode("utf-8"))


__all__ = ['dumps_preset', 'save_preset', 'preset_to_dict']
