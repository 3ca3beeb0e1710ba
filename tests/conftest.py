"""Shared by every test: the environment the app and the engine run in, and the markers of the quick loop.

Markers (README, "Contributing"): `slow` for the robustness long paths, the benchmark smoke test, the heavy Pilot
flows and the tests that start many processes; `browser` for the test that drives Chromium. The quick loop
deselects both (`pytest -m "not slow and not browser" -n 2`); CI runs everything.
"""

import inspect
import os

import pytest

# One torch thread keeps CPU results and timings stable on the 2-core CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Marked here, by place, so that the list is one and a new test in these places is marked too.
SLOW_PLACES = (
    "tests/robustness/",  # the long paths (fuzzers, kills, stops, hostile inputs; sized up by scripts/fuzz_run.py)
    "tests/test_bench_smoke.py",  # the benchmark's quick run
    "tests/ui/test_insight.py",  # Pilot flows over several dialogs each
    "tests/ui/test_app_flows.py",
    "tests/ui/test_snapshots.py",  # the SVG snapshots (run them when what the app draws changes)
    "tests/ui/test_splash.py",  # the app under a pty
)
SLOW_TESTS = (  # single tests elsewhere that take more than ~8 s on the 2-core machine (subprocesses, long runs)
    "tests/cli/test_commands.py::test_check_shape_error_exit_1_json",
    "tests/cli/test_commands.py::test_run_json_lines",
    "tests/cli/test_commands.py::test_check_text",
    "tests/cli/test_commands.py::test_check_json",
    "tests/cli/test_commands.py::test_run_steps_seed_and_text",
    "tests/engine/files/test_export.py::test_exported_scripts_print_the_engines_losses",
    "tests/engine/data/test_datasets.py::test_playground_presets_learn_their_problem",
    "tests/engine/shapes/test_budget.py::test_sizes_up_to_1e12_are_built_or_refused_never_killed",
    "tests/engine/training/test_runner.py",  # trainer processes, started and killed
    "tests/cli/test_serve.py",  # servers and their apps, started and killed
)
BROWSER_TESTS = ("tests/cli/test_serve.py::test_the_app_renders_in_chromium_and_takes_keys",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for item in items:
        path = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else str(item.path)
        node = f"{path}::{item.originalname if hasattr(item, 'originalname') else item.name}"
        if any(node.startswith(b) for b in BROWSER_TESTS):
            item.add_marker(pytest.mark.browser)
        elif path.startswith(SLOW_PLACES) or any(node == s or path == s for s in SLOW_TESTS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                 tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test autosaves into the user's data folder (the autosave tests turn it on, into tmp_path). A Pilot test
    (a coroutine: the app in this process) trains in a thread unless it is about the trainer process (those set
    TUI_NN_RUNNER themselves): a trainer process imports torch anew, seconds of a 2-core machine for every app.
    Apps started as processes (the CLI, serve, a pty) keep the app's default."""
    monkeypatch.setenv("TUI_NN_AUTOSAVE", "off")
    monkeypatch.setenv("TUI_NN_AUTOSAVE_DIR", str(tmp_path_factory.mktemp("autosave")))
    if inspect.iscoroutinefunction(getattr(request, "function", None)) and "TUI_NN_RUNNER" not in os.environ:
        monkeypatch.setenv("TUI_NN_RUNNER", "thread")
