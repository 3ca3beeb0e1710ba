"""Data sets and CSV data: the preset tables, their validation, the seeded train/test split, CSV errors."""

import math
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_nn.engine import spec as spec_module
from tui_nn.engine.data import csvfile, generated
from tui_nn.engine.data import tables as datasets
from tui_nn.engine.data.csvfile import CsvError
from tui_nn.engine.data.generated import DATASETS
from tui_nn.engine.data.tables import load_split
from tui_nn.engine.errors import DataError, PresetError
from tui_nn.engine.files.preset_read import load_preset, loads_preset
from tui_nn.engine.files.preset_write import dumps_preset, save_preset
from tui_nn.engine.spec import DatasetSpec
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train

MLP2 = '''
[model]
input_shape = [1, {features}]
[[model.layers]]
type = "Linear"
in_features = {features}
out_features = 8
[[model.layers]]
type = "Tanh"
[[model.layers]]
type = "Linear"
in_features = 8
out_features = {outputs}
[data]
{data}
[training]
loss = "{loss}"
optimizer = {{ type = "Adam", lr = 0.05 }}
seed = {seed}
'''


def preset(data: str, *, features: int = 2, outputs: int = 2, loss: str = "CrossEntropyLoss", seed: int = 0,
           source: str = "p.toml"):
    return loads_preset(MLP2.format(data=data, features=features, outputs=outputs, loss=loss, seed=seed), source)


def _err(data: str, **kw) -> PresetError:
    with pytest.raises(PresetError) as info:
        preset(data, **kw)
    return info.value


# ------------------------------------------------------------------------------------------------- generated


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_data_set_is_seeded_split_and_labelled(name):
    info = DATASETS[name]
    spec = DatasetSpec(name, samples=101, noise=0.1, test_fraction=0.2)
    a = generated.generate_dataset(spec, seed=5)
    b = generated.generate_dataset(spec, seed=5)
    c = generated.generate_dataset(spec, seed=6)
    for t, u in zip((a.x_train, a.y_train, a.x_test, a.y_test), (b.x_train, b.y_train, b.x_test, b.y_test)):
        assert torch.equal(t, u)  # same seed, same data
    assert not torch.equal(a.x_train, c.x_train)
    assert a.x_train.shape == (81, info.features) and a.x_test.shape == (20, info.features)
    assert a.y_train.shape == (81,) and a.x_train.dtype == torch.float32
    assert bool(torch.isfinite(a.x_train).all()) and bool(torch.isfinite(a.y_train).all())
    assert a.task == info.task
    if info.task == "classification":
        labels = torch.cat([a.y_train, a.y_test])
        assert set(labels.tolist()) == {0.0, 1.0}  # both classes present, as class indices
        counts = torch.bincount(labels.long())
        if name != "xor":  # balanced by construction (xor's classes are the random quadrants)
            assert counts.min() == 101 // 2


def test_data_set_labels_follow_their_rule_without_noise():
    xor = generated.generate_dataset(DatasetSpec("xor", samples=300), 0)
    assert torch.equal(xor.y_train, (xor.x_train[:, 0] * xor.x_train[:, 1] >= 0).float())
    circles = generated.generate_dataset(DatasetSpec("circles", samples=300), 0)
    r = circles.x_train.norm(dim=1)
    assert torch.equal(circles.y_train, (r <= 0.5).float()) and bool(((r <= 0.5) | (r >= 0.7)).all())
    sine = generated.generate_dataset(DatasetSpec("sine", samples=50), 0)
    assert torch.allclose(sine.y_train, torch.sin(math.pi * sine.x_train[:, 0]))
    plane = generated.generate_dataset(DatasetSpec("plane", samples=50), 0)
    assert torch.allclose(plane.y_train, plane.x_train.sum(1) / 2)


def test_classes_for_blobs_and_spiral():
    s = generated.generate_dataset(DatasetSpec("spiral", samples=90, classes=3), 0)
    assert set(s.y_train.tolist()) == {0.0, 1.0, 2.0}
    p = preset('dataset = { name = "blobs", classes = 4, samples = 80 }', outputs=4)
    assert p.data.dataset == DatasetSpec("blobs", samples=80, classes=4)
    assert Session(p).targets.max().item() == 3


def test_session_uses_the_training_split_and_keeps_the_test_split():
    p = preset('dataset = { name = "moons", samples = 50, noise = 0.1, test_fraction = 0.3 }')
    s = Session(p)
    split = load_split(p.data, p.training.seed)
    assert torch.equal(s.inputs, split.x_train) and s.inputs.shape == (35, 2)
    assert torch.equal(s.targets, split.y_train.long()) and s.targets.dtype == torch.long
    assert torch.equal(s.test_inputs, split.x_test) and s.test_inputs.shape == (15, 2)
    assert s.test_targets.dtype == torch.long
    # the documented recipe: generator, then one permutation from the same generator
    g = torch.Generator().manual_seed(0)
    x, y = generated.make_moons(50, 0.1, g)
    perm = torch.randperm(50, generator=g)
    assert torch.equal(s.inputs, x[perm[15:]]) and torch.equal(s.test_inputs, x[perm[:15]])
    # the seed is training.seed
    other = Session(preset('dataset = { name = "moons", samples = 50, noise = 0.1, test_fraction = 0.3 }', seed=1))
    assert not torch.equal(other.inputs, s.inputs)


def test_regression_and_binary_targets_fit_the_loss():
    s = Session(preset('dataset = { name = "sine", samples = 40 }', features=1, outputs=1, loss="MSELoss"))
    assert s.targets.shape == (40, 1) and s.targets.dtype == torch.float32 and s.test_inputs is None
    s = Session(preset('dataset = { name = "xor", samples = 40, test_fraction = 0.25 }', outputs=1,
                       loss="BCEWithLogitsLoss"))
    assert s.targets.shape == (30, 1) and s.test_targets.shape == (10, 1)
    s.set_loss(type(s.training.loss)("MSELoss"))  # a new loss converts both splits
    assert s.test_targets.dtype == torch.float32


@pytest.mark.parametrize("stem", ["playground-spiral", "playground-xor", "playground-circles", "playground-sine",
                                  "playground-moons", "playground-blobs", "playground-plane"])
def test_playground_presets_learn_their_problem(stem):
    from tui_nn.engine.training.metrics import evaluate

    s = Session(load_preset(stem))
    assert s.preset.data.dataset is not None and s.test_inputs is not None
    fin, losses = train(s, s.training.steps)
    assert fin.ok, fin.message
    test = evaluate(s, "test")
    if DATASETS[s.preset.data.dataset.name].task == "classification":
        assert test.accuracy >= 0.9, test
    else:
        assert test.loss < 0.01, test
    assert losses[-1] < losses[0] / 5


# ------------------------------------------------------------------------------------------------- preset format


def test_dataset_round_trips_through_the_preset_format(tmp_path):
    p = preset('dataset = { name = "spiral", samples = 200, noise = 0.1, test_fraction = 0.2, classes = 3 }',
               outputs=3)
    assert p.data.dataset == DatasetSpec("spiral", 200, 0.1, 0.2, 3)
    text = dumps_preset(p)
    assert 'dataset = { name = "spiral", samples = 200, noise = 0.1, test_fraction = 0.2, classes = 3 }' in text
    q = loads_preset(text, "p.toml")
    assert q == p
    path = tmp_path / "s.toml"
    save_preset(p, path)
    assert load_preset(path).data == p.data


@pytest.mark.parametrize("data,field,words", [
    ('dataset = { name = "spirals" }', "data.dataset.name", 'did you mean "spiral"'),
    ('dataset = { name = "spiral", sample = 10 }', "data.dataset.sample", 'did you mean "samples"'),
    ('dataset = { name = "spiral", samples = 0 }', "data.dataset.samples", "must be >= 1"),
    ('dataset = { name = "spiral", samples = 10.5 }', "data.dataset.samples", "expected an integer"),
    ('dataset = { name = "spiral", noise = -1 }', "data.dataset.noise", "must be >= 0"),
    ('dataset = { name = "spiral", test_fraction = 0.95 }', "data.dataset.test_fraction", "must be <= 0.9"),
    ('dataset = { name = "spiral", samples = 2, test_fraction = 0.9 }', "data.dataset.test_fraction",
     "leaves no training sample"),
    ('dataset = { name = "xor", classes = 3 }', "data.dataset.classes", "only blobs and spiral"),
    ('dataset = { samples = 3 }', "data.dataset.name", "needs a \"name\""),
    ('dataset = 3', "data.dataset", "expected a table"),
    ('dataset = { name = "sine" }', "data.dataset", "1 feature(s) per sample"),
    ('dataset = { name = "xor" }\ninputs = [[1.0, 2.0]]', "data.inputs", "cannot be combined with dataset"),
    ('dataset = { name = "xor" }\ncsv = { path = "a.csv", features = ["a"], target = "b" }', "data.csv",
     "either dataset or csv"),
    ('datset = { name = "xor" }', "data.datset", 'did you mean "dataset"'),
])
def test_dataset_errors_name_the_field(data, field, words):
    err = _err(data)
    assert err.field == field, str(err)
    assert words in str(err)
    assert str(err).startswith("p.toml")


# ------------------------------------------------------------------------------------------------- CSV


CSV = "x1,x2,label,note\n0.5,1.0,0,a\n-1.5,2.0,1,b\n\n2.5,-3.0,1,c\n0.0,0.25,0,d\n"


@pytest.fixture
def csv_dir(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "points.csv").write_text(CSV)
    return tmp_path


def csv_preset(folder, table='csv = { path = "data/points.csv", features = ["x1", "x2"], target = "label" }',
               **kw):
    path = folder / "p.toml"
    path.write_text(MLP2.format(data=table, features=kw.get("features", 2), outputs=kw.get("outputs", 2),
                                loss=kw.get("loss", "CrossEntropyLoss"), seed=0))
    return path


def test_csv_columns_become_inputs_and_targets_and_the_file_is_never_modified(csv_dir):
    path = csv_preset(csv_dir)
    data_file = csv_dir / "data" / "points.csv"
    before = (data_file.read_bytes(), os.stat(data_file).st_mtime_ns)
    p = load_preset(path)
    assert p.data.csv.path == "data/points.csv" and p.data.csv.features == ["x1", "x2"]
    assert p.data.csv.target == ["label"]
    s = Session(p)
    # no test split: every row, in the permuted order of the seeded split
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(4, generator=g)
    rows = torch.tensor([[0.5, 1.0], [-1.5, 2.0], [2.5, -3.0], [0.0, 0.25]])
    assert torch.equal(s.inputs, rows[perm]) and torch.equal(s.targets, torch.tensor([0, 1, 1, 0])[perm])
    train(s, 5)
    assert (data_file.read_bytes(), os.stat(data_file).st_mtime_ns) == before


def test_csv_round_trips_and_relative_paths_follow_the_preset(csv_dir, tmp_path):
    p = load_preset(csv_preset(csv_dir))
    text = dumps_preset(p)
    assert 'csv = { path = "data/points.csv", features = ["x1", "x2"], target = "label" }' in text
    # saved into a folder that holds the file, the path is rewritten to reach the same file from there
    save_preset(p, csv_dir / "data" / "copy.toml")
    q = load_preset(csv_dir / "data" / "copy.toml")
    assert q.data.csv.path == "points.csv"
    assert torch.equal(Session(q).inputs, Session(p).inputs)
    save_preset(q, csv_dir / "again.toml")
    assert load_preset(csv_dir / "again.toml").data.csv.path == os.path.join("data", "points.csv")


def test_saving_a_csv_preset_where_the_file_is_outside_is_refused(csv_dir, tmp_path):
    """A saved preset must load again: its CSV path would lead out of its folder, so the save is refused."""
    p = load_preset(csv_preset(csv_dir))
    for folder in (tmp_path / "elsewhere", csv_dir / "sub"):
        folder.mkdir()
        with pytest.raises(CsvError) as info:
            save_preset(p, folder / "copy.toml")
        assert info.value.field == "data.csv.path" and "outside the folder the preset is saved in" in str(info.value)
        assert "copy the CSV file next to the preset" in info.value.hint
        assert not (folder / "copy.toml").exists()


# ------------------------------------------------------------------------------------------------- CSV paths


CONTROL = [chr(c) for c in range(0x20)] + ["\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\u202e", "\u2066"]


def _table(path="data/points.csv", features=("x1", "x2"), target="label"):
    return {"path": path, "features": list(features), "target": target}


def _no_raw_control(err):
    for part in (err.detail, err.hint, err.source, err.field):
        assert csvfile.control_char(part) is None, repr(str(err))


@settings(max_examples=60, deadline=None)
@given(ch=st.sampled_from(CONTROL), where=st.sampled_from(["path", "features", "target"]),
       before=st.text(alphabet="ab'\"#(", max_size=4), after=st.text(alphabet="xy)# ", max_size=4))
def test_control_characters_in_the_csv_table_are_refused_naming_the_field(tmp_path_factory, ch, where, before,
                                                                         after):
    folder = tmp_path_factory.mktemp("ctl")
    (folder / "data").mkdir()
    (folder / "data" / "points.csv").write_text(CSV)
    bad = "x1" + before + ch + after
    table = {"path": _table(path="data/" + before + ch + after + ".csv"), "features": _table(features=[bad, "x2"]),
             "target": _table(target=bad)}[where]
    with pytest.raises(PresetError) as info:
        csvfile.parse_csv(table, source=str(folder / "p.toml"))
    err = info.value
    fields = {"path": "data.csv.path", "features": "data.csv.features[0]", "target": "data.csv.target"}
    assert err.field == fields[where]
    assert "control character" in err.detail and csvfile.escaped(ch) in err.detail
    _no_raw_control(err)


@settings(max_examples=60, deadline=None)
@given(ch=st.sampled_from(CONTROL), col=st.integers(0, 3), text=st.text(alphabet="ab'()#_", max_size=6))
def test_control_characters_in_the_csv_header_are_refused_naming_the_line_and_column(ch, col, text):
    import csv as csvmod
    import io

    header = ["x1", "x2", "label", "note"]
    header[col] = header[col] + ch + text
    buf = io.StringIO()
    csvmod.writer(buf).writerows([[], header, ["1", "2", "0", "z"]])
    with pytest.raises(CsvError) as info:
        csvfile.parse_csv_text(buf.getvalue().encode(), ["x1"], ["x2"], "f.csv")
    err = info.value
    assert err.line == 2 and f"column {col + 1} of the header" in err.detail  # the blank first row skipped
    assert csvfile.escaped(ch) in err.detail
    _no_raw_control(err)


def test_the_issues_example_header_is_refused(tmp_path):
    (tmp_path / "d.csv").write_text('"x\r__import__(\'os\').system(\'id > PWNED\')\r#",y\n1,0\n2,1\n')
    with pytest.raises(CsvError) as info:
        csvfile.parse_csv({"path": "d.csv", "features": ["other"], "target": "y"}, source=str(tmp_path / "p.toml"))
    assert info.value.line == 1 and "\\x0d" in str(info.value) and "\r" not in str(info.value)


@pytest.mark.parametrize("path,words", [
    ("/etc/passwd", "is an absolute path"),
    ("../outside.csv", "leads outside"),
    ("data/../../outside.csv", "leads outside"),
    ("data/../../presets/data/points.csv/../../../outside.csv", "leads outside"),
    ("link-out.csv", "leads outside"),  # a symlink in the folder to a file outside it
    ("environ.csv", "leads outside"),  # a symlink in the folder to /proc/self/environ
])
def test_csv_paths_must_stay_inside_the_presets_folder(tmp_path, path, words):
    csv_dir = tmp_path / "presets"
    (csv_dir / "data").mkdir(parents=True)
    (csv_dir / "data" / "points.csv").write_text(CSV)
    (tmp_path / "outside.csv").write_text(CSV)
    (csv_dir / "link-out.csv").symlink_to(tmp_path / "outside.csv")
    (csv_dir / "environ.csv").symlink_to("/proc/self/environ")
    table = f'csv = {{ path = "{path}", features = ["x1", "x2"], target = "label" }}'
    with pytest.raises(PresetError) as info:
        load_preset(csv_preset(csv_dir, table))
    err = info.value
    assert err.field == "data.csv.path" and words in err.detail, str(err)
    assert "copy the CSV file into the preset's folder" in err.hint
    assert "PATH=" not in str(err) and "HOME=" not in str(err)


def test_csv_paths_inside_the_folder_may_use_dots_and_symlinks(csv_dir):
    (csv_dir / "link.csv").symlink_to(csv_dir / "data" / "points.csv")
    for path in ("data/../data/points.csv", "./data/points.csv", "link.csv"):
        table = f'csv = {{ path = "{path}", features = ["x1", "x2"], target = "label" }}'
        assert Session(load_preset(csv_preset(csv_dir, table))).inputs.shape == (4, 2)


def test_absolute_csv_paths_read_only_csv_files(csv_dir, tmp_path, monkeypatch):
    """A path the user types (the app's dialog gives a base) or a session file keeps may be absolute, but only a
    file whose real name ends in .csv is read; the files of /proc, zero-sized, are refused unread."""
    good = str(csv_dir / "data" / "points.csv")
    spec = csvfile.parse_csv({"path": good, "features": ["x1", "x2"], "target": "label"}, source="the CSV dialog",
                              base=str(tmp_path))
    assert csvfile.read_csv(spec)[0].shape == (4, 2)
    (tmp_path / "env.csv").symlink_to("/proc/self/environ")
    (tmp_path / "zero.csv").write_text("")
    monkeypatch.setenv("TUI_NN_SECRET_CANARY", "s3cr3t-value")
    for path, words in (("/proc/self/environ", "does not end in .csv"), ("/etc/passwd", "does not end in .csv"),
                        (str(tmp_path / "env.csv"), "does not end in .csv"),
                        (str(tmp_path / "zero.csv"), "the file is empty")):
        with pytest.raises(CsvError) as info:
            csvfile.read_csv(spec_module.CsvSpec(path, ["x1"], ["y"]))
        assert words in str(info.value)
        assert "s3cr3t" not in str(info.value) and "root:" not in str(info.value)


def test_an_error_quotes_little_of_the_file_and_nothing_raw(tmp_path):
    long = "k" * 5000
    blob = (",".join(f"{long}{i}" for i in range(300)) + "\n" + ",".join("1" for _ in range(300)) + "\n").encode()
    with pytest.raises(CsvError) as info:
        csvfile.parse_csv_text(blob, ["x"], ["y"], "wide.csv")
    assert len(str(info.value)) < 1500 and "(300 columns)" in str(info.value)
    blob = b"x,y\n1,\x1b[31m" + b"9" * 5000 + b"\n"
    with pytest.raises(CsvError) as info:
        csvfile.parse_csv_text(blob, ["x"], ["y"], "esc.csv")
    assert "\\x1b[31m" in str(info.value) and "\x1b" not in str(info.value) and len(str(info.value)) < 200


def test_a_session_files_csv_path_with_a_nul_is_a_clean_error():
    with pytest.raises(CsvError) as info:
        datasets.load_split(spec_module.DataSpec(csv=spec_module.CsvSpec("/tmp/a\0b.csv", ["x"], ["y"])), 0)
    assert "\\x00" in str(info.value) and "\0" not in str(info.value)


def test_csv_features_can_fill_a_multi_dimensional_sample(tmp_path):
    (tmp_path / "img.csv").write_text("a,b,c,d,y\n" + "".join(f"{i},{i + 1},{i + 2},{i + 3},{i % 2}\n"
                                                            for i in range(6)))
    text = '''
[model]
input_shape = [1, 1, 2, 2]
[[model.layers]]
type = "Flatten"
[[model.layers]]
type = "Linear"
in_features = 4
out_features = 2
[data]
csv = { path = "img.csv", features = ["a", "b", "c", "d"], target = "y", test_fraction = 0.5 }
[training]
loss = "CrossEntropyLoss"
'''
    (tmp_path / "p.toml").write_text(text)
    s = Session(load_preset(tmp_path / "p.toml"))
    assert s.inputs.shape == (3, 1, 2, 2) and s.test_inputs.shape == (3, 1, 2, 2)
    assert train(s, 2)[0].ok


@pytest.mark.parametrize("content,line,words", [
    ("x1,x2,label,note\n0.5,1.0,0,a\n-1.5,oops,1,b\n", 3, 'column "x2": expected a number; got "oops"'),
    ("x1,x2,label,note\n0.5,1.0,0,a\n\n-1.5,2.0,1\n", 4, "expected 4 cells, as the header has; got 3"),
    ("x1,x2,label,note\n0.5,1.0,,a\n", 2, "got an empty cell"),
    ("x1,x2,label,note\n0.5,inf,1,a\n", 2, "expected a finite number"),
    ("x1,x2,lable,note\n0.5,1.0,0,a\n", 1, 'no target column "label" in the header (did you mean "lable"?)'),
    ("x1,x2,label,x1\n0.5,1.0,0,1\n", 1, 'column "x1" appears twice'),
    ("x1,x2,label,note\n", 1, "no data rows"),
    ("", 1, "the file is empty"),
    ('x1,x2,label,note\n0.5,1.0,0,"unclosed\n', 2, "not valid CSV"),
])
def test_a_bad_csv_row_is_an_error_with_its_line(csv_dir, content, line, words):
    (csv_dir / "data" / "points.csv").write_text(content)
    with pytest.raises(CsvError) as info:
        load_preset(csv_preset(csv_dir))
    err = info.value
    assert isinstance(err, PresetError)
    assert err.line == line, str(err)
    assert words in str(err)
    assert err.source.endswith("points.csv") and f"points.csv, line {line}" in str(err)


def test_csv_not_utf8_names_the_line(csv_dir):
    (csv_dir / "data" / "points.csv").write_bytes(b"x1,x2,label,note\n0.5,1.0,0,a\n1,2,1,\xff\n")
    with pytest.raises(CsvError) as info:
        load_preset(csv_preset(csv_dir))
    assert info.value.line == 3 and "UTF-8" in str(info.value)


@pytest.mark.parametrize("table,field,words", [
    ('csv = { path = "data/missing.csv", features = ["x1", "x2"], target = "label" }', "data.csv.path",
     "No such file"),
    ('csv = { path = "data/points.csv", feature = ["x1", "x2"], target = "label" }', "data.csv.feature",
     'did you mean "features"'),
    ('csv = { path = "data/points.csv", features = ["x1", "x2"] }', "data.csv.target", 'needs "target"'),
    ('csv = { path = "data/points.csv", features = [], target = "label" }', "data.csv.features",
     "expected the feature columns"),
    ('csv = { path = "data/points.csv", features = ["x1", "x1"], target = "label" }', "data.csv.features[1]",
     "named twice"),
    ('csv = { path = "data/points.csv", features = ["x1"], target = "label" }', "data.csv.features",
     "1 feature column(s) per sample but model.input_shape is [1, 2]"),
    ('csv = { path = "data/points.csv", features = ["x1", "x2"], target = "label", test_fraction = 1.0 }',
     "data.csv.test_fraction", "must be <= 0.9"),
])
def test_csv_table_errors_name_the_field(csv_dir, table, field, words):
    with pytest.raises(PresetError) as info:
        load_preset(csv_preset(csv_dir, table))
    assert info.value.field == field, str(info.value)
    assert words in str(info.value)


def test_csv_class_targets_must_be_whole_numbers(csv_dir):
    (csv_dir / "data" / "points.csv").write_text("x1,x2,label,note\n0.5,1.0,0.5,a\n1,2,1,b\n")
    s = Session(load_preset(csv_preset(csv_dir)))
    assert not s.trainable and isinstance(s.data_error, DataError) and "whole numbers" in s.why_not_trainable()


def test_an_edited_csv_is_read_again(csv_dir):
    path = csv_preset(csv_dir)
    assert Session(load_preset(path)).inputs.shape == (4, 2)
    f = csv_dir / "data" / "points.csv"
    f.write_text(CSV + "9,9,1,e\n")
    os.utime(f, ns=(os.stat(f).st_atime_ns, os.stat(f).st_mtime_ns + 10**9))
    assert Session(load_preset(path)).inputs.shape == (5, 2)


def test_rebuild_with_another_sample_shape_drops_the_data_set():
    s = Session(preset('dataset = { name = "xor", samples = 20 }'))
    spec = s.spec.copy()
    spec.input_shape = (1, 3)
    spec.layers[0].args["in_features"] = 3
    s.rebuild(spec)
    assert s.preset.data.dataset is None and s.inputs.shape == (1, 3) and s.test_inputs is None


CELL = st.one_of(st.floats(allow_nan=False, allow_infinity=False).map(repr), st.integers(-10**6, 10**6).map(str),
                 st.sampled_from(["1e3", "+.5", "-0", "0_1", " 2 ", "\t3", '"4.5"', "1E-7", "00012", "  -1.5e+2  "]))


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(CELL, min_size=4, max_size=4), min_size=1, max_size=12),
       crlf=st.booleans(), bom=st.booleans(), blanks=st.sets(st.integers(0, 12), max_size=3),
       order=st.permutations(["x1", " x2 ", "label", "note"]))
def test_the_exported_scripts_csv_reader_reads_as_the_engine_does(tmp_path_factory, rows, crlf, bom, blanks, order):
    """`csv_columns` (copied into scripts that read a large CSV file themselves) selects and converts exactly as
    `parse_csv_text`: the same float64 values, bit for bit."""
    end = "\r\n" if crlf else "\n"
    lines = [",".join(order)]
    for i, row in enumerate(rows):
        lines.append(",".join(row))
        if i in blanks:
            lines.append("")
    blob = (("\ufeff" if bom else "") + end.join(lines) + end).encode()
    x, y = csvfile.parse_csv_text(blob, ["x2", "x1"], ["label"], "f.csv")
    path = tmp_path_factory.mktemp("cols") / "f.csv"
    path.write_bytes(blob)
    table = torch.tensor(csvfile.csv_columns(str(path), ["x2", "x1"], ["label"]), dtype=torch.float64)
    assert torch.equal(table[:, :2], x) and torch.equal(table[:, 2:], y)
    assert [v.hex() for v in table.flatten().tolist()] == [v.hex() for v in torch.cat([x, y], 1).flatten().tolist()]
