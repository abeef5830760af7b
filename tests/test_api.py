"""The Python API mirrors the commands and returns objects; the CLI is a thin layer over it."""

from __future__ import annotations

import importlib
import json

import xarray as xr
from helpers import synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune as command

import hpctune
from hpctune import api as api_module
from hpctune.cli import cli

#: Commands whose library function has another name (none so far).
RENAMED: dict[str, str] = {}


def test_every_command_has_a_library_function():
    for name in cli.commands:
        function = getattr(api_module, RENAMED.get(name, name), None)
        assert callable(function), f"hpctune {name} has no hpctune.api.{name}"
        assert function.__doc__, f"hpctune.api.{name} has no docstring"


def test_package_exports_the_api():
    for name in (
        "load_spec",
        "validate",
        "run",
        "submit",
        "status",
        "cancel",
        "merge",
        "results",
        "report",
        "predict",
        "prediction",
        "plan",
        "load_model",
    ):
        assert callable(getattr(hpctune, name)), name
        assert name in hpctune.__all__


def test_functions_named_like_modules_stay_functions():
    """Importing the modules of plan, predict and the report leaves the package's attributes the
    API functions."""
    for name, module_name in (
        ("plan", "hpctune.plan"),
        ("predict", "hpctune.predict"),
        ("report", "hpctune.reporting.page"),
    ):
        module = importlib.import_module(module_name)
        assert module.__name__ == module_name
        assert getattr(hpctune, name) is getattr(api_module, name)


def test_api_returns_objects_and_the_cli_prints_the_same(tmp_path, capsys, dask_client):
    synthetic(cells=3, steps=150).to_netcdf(tmp_path / "cells.nc")
    path = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.nc"))
    job = hpctune.load_spec(path, ["search.cv.splits=4"])
    assert isinstance(job, hpctune.Job) and job.search.cv.splits == 4

    summary = hpctune.run(job, client=dask_client)
    assert isinstance(summary.results, xr.Dataset)
    assert list(summary.results.status.values) == ["ok"] * 3
    loaded = hpctune.results(job)
    assert isinstance(loaded, xr.Dataset)
    xr.testing.assert_identical(loaded.drop_attrs(), summary.results.drop_attrs())

    state = hpctune.status(job)
    assert state.partitions["ok"] == 3 and state.jobs == []

    described = hpctune.validate(path, ["search.cv.splits=4"])
    printed = hpctune_json(capsys, "validate", path, "--set", "search.cv.splits=4")
    assert printed == {"valid": True, **json.loads(json.dumps(described))}

    status_json = hpctune_json(capsys, "status", path, "--set", "search.cv.splits=4")
    assert status_json == json.loads(json.dumps(state.to_dict(), default=str))


def hpctune_json(capsys, *args):
    outcome = command(capsys, *args, "--json")
    assert outcome.code == 0, outcome.err
    return json.loads(outcome.out)


def test_json_on_the_commands_that_print_data():
    for name in ("validate", "submit", "status", "run", "plan", "predict", "report", "merge"):
        options = {opt for param in cli.commands[name].params for opt in param.opts}
        assert "--json" in options, name
