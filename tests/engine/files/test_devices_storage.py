import os

import pytest
import torch

from tui_nn.engine.errors import DeviceError
from tui_nn.engine.files.atomic import atomic_write_bytes
from tui_nn.engine.training.devices import list_devices, resolve_device


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


# -- symbolic links: followed to the file they name (storage.py's docstring) -------------------------------------

def test_a_save_through_a_symlink_writes_its_target_and_keeps_the_link(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    links = tmp_path / "links"
    links.mkdir()
    target = real / "x.toml"
    target.write_text("old")
    target.chmod(0o640)
    (links / "rel.toml").symlink_to(os.path.join("..", "real", "x.toml"))  # relative: from the link's folder
    (links / "abs.toml").symlink_to(target)
    (links / "chain.toml").symlink_to(links / "rel.toml")  # a link to a link
    for name in ("rel.toml", "abs.toml", "chain.toml"):
        atomic_write_bytes(links / name, name.encode())
        assert (links / name).is_symlink() and target.read_text() == name
        assert target.stat().st_mode & 0o777 == 0o640  # the target's mode is kept
        assert sorted(os.listdir(real)) == ["x.toml"]  # the temporary file was beside the target, and is gone
        assert sorted(os.listdir(links)) == ["abs.toml", "chain.toml", "rel.toml"]
    assert os.readlink(links / "rel.toml") == os.path.join("..", "real", "x.toml")


def test_a_dangling_symlink_gets_its_target_created_if_its_folder_exists(tmp_path):
    from tui_nn.engine.files.atomic import save_target

    link = tmp_path / "new.toml"
    link.symlink_to("made.toml")
    atomic_write_bytes(link, b"x")
    assert link.is_symlink() and (tmp_path / "made.toml").read_bytes() == b"x"
    gone = tmp_path / "gone.toml"
    gone.symlink_to(tmp_path / "no-such-folder" / "y.toml")
    with pytest.raises(OSError) as info:
        atomic_write_bytes(gone, b"x")
    assert info.value.errno == 2 and "no-such-folder" in str(info.value) and "does not exist" in str(info.value)
    assert gone.is_symlink() and not (tmp_path / "no-such-folder").exists()
    assert save_target(tmp_path / "plain.toml") == tmp_path / "plain.toml"  # a new plain file: itself


def test_a_symlink_loop_and_a_non_regular_target_are_refused_and_nothing_is_written(tmp_path):
    import errno

    a, b, me = tmp_path / "a.toml", tmp_path / "b.toml", tmp_path / "me.toml"
    a.symlink_to(b)
    b.symlink_to(a)
    me.symlink_to(me)
    for path in (a, b, me):
        with pytest.raises(OSError) as info:
            atomic_write_bytes(path, b"x")
        assert info.value.errno == errno.ELOOP and "never reaches a file" in str(info.value)
    chain = [tmp_path / f"c{i}" for i in range(45)]  # longer than the kernel's limit: refused the same way
    for i in range(44):
        chain[i].symlink_to(chain[i + 1].name)
    chain[44].write_text("end")
    with pytest.raises(OSError) as info:
        atomic_write_bytes(chain[0], b"x")
    assert info.value.errno == errno.ELOOP and chain[44].read_text() == "end"
    folder = tmp_path / "folder"
    folder.mkdir()
    (tmp_path / "to-folder").symlink_to(folder)
    with pytest.raises(OSError) as info:
        atomic_write_bytes(tmp_path / "to-folder", b"x")
    assert "a folder" in str(info.value) and os.listdir(folder) == []
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "to-fifo").symlink_to(fifo)
    for path in (fifo, tmp_path / "to-fifo"):
        with pytest.raises(OSError) as info:
            atomic_write_bytes(path, b"x")
        assert "not a regular file" in str(info.value)
    assert fifo.exists() and not fifo.is_file()  # not replaced
    assert not list(tmp_path.glob(".*.tmp"))
