"""Bad specs and bad data: exit 2, one line naming the fault, no traceback, nothing written."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune


def snapshot(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def folder(tmp_path):
    ds = synthetic()
    ds["label"] = ("space", np.array(["a", "b", "c", "d", "e", "f"]))
    ds["trend"] = ("time", np.zeros(ds.sizes["time"]))
    ds.to_netcdf(tmp_path / "cells.nc")
    return tmp_path


CASES = {
    "missing variable": ({"data__target": "sig"}, "data.target: no variable 'sig' in the data"),
    "wrong dim": ({"data__space": "cell"}, "data.space: no dimension 'cell' in the data"),
    "wrong time dim": ({"data__time": "t"}, "data.time: no dimension 't'"),
    "no file": ({"data__paths": "nowhere.nc"}, "data.paths: no such file"),
    "glob matching nothing": ({"data__paths": "*.grib"}, "data.paths: the pattern"),
    "unknown estimator": (
        {"search__estimator": "sklearn.svm.SVX"},
        "search.estimator: module 'sklearn.svm' has no 'SVX' (did you mean SVR, SVC?)",
    ),
    "unknown module": ({"search__estimator": "nosuchpkg.Model"}, "search.estimator: cannot import"),
    "not an estimator": (
        {"search__estimator": "os.system"},
        "search.estimator: 'os.system' is not a scikit-learn estimator class",
    ),
    "misspelt parameter": (
        {"search__params": {"ridge__alpa": [1.0]}},
        "search.params.ridge__alpa: not a parameter of the pipeline StandardScaler -> Ridge; "
        "did you mean ridge__alpha?",
    ),
    "empty grid": (
        {"search__params": {"ridge__alpha": []}},
        "search.params: ridge__alpha: the list",
    ),
    "no grid": ({"search__params": {}}, "search.params: must not be empty"),
    "unknown method": ({"search__method": "bayes"}, "search.method: must be one of"),
    "unknown scorer": (
        {"search__scoring": ["r2", "accuracyy"]},
        "search.scoring: unknown scorer 'accuracyy'; did you mean accuracy",
    ),
    "unknown top-level key": ({"serach": {}}, "serach: unknown key"),
    "one split": ({"search__cv": {"splits": 1}}, "search.cv.splits: must be >= 2; got 1"),
    "hostile name": ({"name": "$(touch pwned)"}, "name: must match"),
    "unparsable date": ({"data__test": {"from": "2016-13-45"}}, "data.test.from: must be a date"),
    "non-numeric variable": (
        {"data__inputs": ["x1", "label"]},
        "data.inputs: variable 'label' has dtype <U1; it must be numeric",
    ),
    "variable along time alone": (
        {"data__inputs": ["x1", "trend"]},
        "data.inputs: variable 'trend' has dims (time); expected (space, time), "
        "or (space) for a static input",
    ),
    "worker threads with a timeout": (
        {"cluster__processes": False, "search__timeout": 60},
        "cluster.processes: false (workers as threads of hpctune) does not go with search.timeout",
    ),
    "worker threads reading NetCDF": (
        {"cluster__processes": False, "cluster__granularity": "partition"},
        "cluster.processes: false (workers as threads of hpctune) needs granularity fit",
    ),
    "worker threads on other nodes": (
        {"cluster__processes": False, "cluster__mode": "jobqueue"},
        "cluster.processes: false (workers as threads of hpctune) is for mode local",
    ),
    "processes neither true nor false": (
        {"cluster__processes": "sometimes"},
        "cluster.processes: must be one of 'auto', True or False; got 'sometimes'",
    ),
    "unknown partition variable": (
        {"partition__by": "region"},
        "partition.by: 'cell' or a variable",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_spec_or_data_exits_2_with_one_line(case, folder, capsys):
    changes, expected = CASES[case]
    spec = synthetic_spec(folder / "cells.nc", **changes)
    path = write_spec(folder, spec)
    before = snapshot(folder)
    for command in ("validate", "run"):
        result = hpctune(capsys, command, path)
        assert result.code == 2, (case, command, result)
        lines = result.err.strip().splitlines()
        assert len(lines) == 1, result.err
        assert lines[0].startswith("hpctune: error: ")
        assert expected in lines[0], lines[0]
        assert "Traceback" not in result.err
    assert snapshot(folder) == before, "a rejected spec wrote files"


def test_malformed_yaml_and_non_mapping(folder, capsys):
    path = folder / "job.yaml"
    for text, expected in [
        ("name: x\ndata: {paths: [a.nc\n", "spec: malformed YAML in"),
        ("[1, 2, 3]\n", "spec: must be a mapping of keys"),
        ("just a string\n", "spec: must be a mapping of keys"),
    ]:
        path.write_text(text)
        result = hpctune(capsys, "run", path)
        assert result.code == 2
        assert result.err.count("\n") == 1 and expected in result.err


def test_a_non_numeric_input_along_space_and_time(folder, capsys):
    ds = synthetic()
    ds["when"] = ds["x1"].astype(str)
    ds.to_netcdf(folder / "strings.nc")
    path = write_spec(folder, synthetic_spec(folder / "strings.nc", data__inputs=["x1", "when"]))
    result = hpctune(capsys, "validate", path)
    assert result.code == 2
    assert "data.inputs: variable 'when' has dtype" in result.err
    assert "it must be numeric" in result.err


def test_bad_override_on_the_command_line(folder, capsys):
    path = write_spec(folder, synthetic_spec(folder / "cells.nc"))
    result = hpctune(capsys, "validate", path, "--set", "search.cv.splits=1")
    assert result.code == 2 and "search.cv.splits: must be >= 2" in result.err
    result = hpctune(capsys, "validate", path, "--set", "search.cv")
    assert result.code == 2 and "--set: expects dotted.key=value" in result.err


def test_usage_errors_exit_2(folder, capsys):
    path = write_spec(folder, synthetic_spec(folder / "cells.nc"))
    assert hpctune(capsys, "run", path, "--slice", "4/4").code == 2
    assert hpctune(capsys, "run", path, "--bogus").code == 2
    assert hpctune(capsys, "frobnicate").code == 2
