"""Which devices exist, and turning a device name into a torch.device or a clear error."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import DeviceError


@dataclass(frozen=True)
class DeviceInfo:
    name: str  # "cpu", "cuda:0", "mps"
    label: str  # "CPU", "NVIDIA H100 (75.1 GiB free of 79.2 GiB)"
    free_bytes: int | None = None
    total_bytes: int | None = None


def list_devices() -> list[DeviceInfo]:
    out = [DeviceInfo("cpu", "CPU")]
    try:
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                name = torch.cuda.get_device_name(i)
                try:
                    free, total = torch.cuda.mem_get_info(i)
                except RuntimeError:
                    free, total = None, None
                label = name if free is None else f"{name} ({free / 1024**3:.1f} GiB free of {total / 1024**3:.1f} GiB)"
                out.append(DeviceInfo(f"cuda:{i}", label, free, total))
    except RuntimeError:  # pragma: no cover - a broken driver: list the CPU only
        pass
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():  # pragma: no cover - Apple only
        out.append(DeviceInfo("mps", "Apple GPU (MPS)"))
    return out


def resolve_device(name: str) -> torch.device:
    """torch.device for `name`, or DeviceError naming the devices that do exist."""
    available = [d.name for d in list_devices()]
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(f"\"{name}\" is not a device name; available: {', '.join(available)}") from None
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda:0")
    canonical = str(dev)
    if canonical not in available:
        raise DeviceError(f"device \"{name}\" is not available here; available: {', '.join(available)}",
                          hint="CUDA devices need an NVIDIA GPU and a CUDA build of torch" if dev.type == "cuda"
                          else "")
    return dev
