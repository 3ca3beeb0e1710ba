import os

import pytest
import torch

from tui_nn.engine.devices import list_devices, resolve_device
from tui_nn.engine.errors import DeviceError
from tui_nn.engine.storage import atomic_write_bytes


def test_cpu_is_listed_and_resolves():
    assert list_devices()[0].name == "cpu"
    assert resolve_device("cpu") == torch.device("cpu")


def test_absent_device_names_what_exists():
    with pytest.raises(DeviceError) as info:
        resolve_device("cuda:9")
    assert "available: cpu" in str(info.value)
    with pytest.raises(DeviceError):
        resolve_device("tpu-of-dreams")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_devices_listed_with_memory():
    cuda = [d for d in list_devices() if d.name.startswith("cuda")]
    assert cuda and cuda[0].free_bytes and "free" in cuda[0].label


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text("old")
    atomic_write_bytes(path, b"new")
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["x.toml"]


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "x.toml"
    path.write_text("old")

    def boom(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(path, b"new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["x.toml"]


def test_atomic_write_gives_a_new_file_the_umask_mode_and_keeps_an_old_files_mode(tmp_path):
    old = os.umask(0o022)
    try:
        new = tmp_path / "new.toml"
        atomic_write_bytes(new, b"x")
        assert new.stat().st_mode & 0o777 == 0o644  # as open(path, "w") would: readable by the class
        shared = tmp_path / "shared.toml"
        shared.write_text("old")
        shared.chmod(0o664)
        atomic_write_bytes(shared, b"new")
        assert shared.stat().st_mode & 0o777 == 0o664 and shared.read_text() == "new"
        os.umask(0o077)
        private = tmp_path / "private.tuinn"
        atomic_write_bytes(private, b"x")
        assert private.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
