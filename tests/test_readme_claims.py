"""What the README promises about the spec's keys, each checked with exact expectations.

Several files combined by coordinates, the folds of every ``search.cv`` kind, random search's
candidates, parameter values refused by the estimator's constraints, ``search.error_score``,
``HPCTUNE_TEMPLATE_DIR`` with several folders, PBS/Torque arrays split at the server's limit,
and what ``submit`` prints without ``--json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from helpers import RUN_SPECIFIC, synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune
from sklearn import model_selection as ms
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import hpctune as api
from hpctune.search import PartitionSearch, candidates, select_rows
from hpctune.search import partition as search_module
from hpctune.spec import load_spec
from hpctune.submission.render import render_script, template_dirs

ALPHAS = [0.01, 1.0, 100.0]


def cell_rows(ds: xr.Dataset, cell: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One cell's inputs, target and times, as a run reads them."""
    x = np.stack([ds[v].isel(space=cell).values for v in ("x1", "x2", "x3")], axis=-1)
    return x, ds.y.isel(space=cell).values, ds.time.values


def reference_score(x: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]):
    """scikit-learn's grid search of the synthetic spec on explicitly given folds."""
    search = ms.GridSearchCV(
        make_pipeline(StandardScaler(), Ridge()),
        {"ridge__alpha": ALPHAS},
        cv=folds,
        scoring="r2",
        error_score="raise",
    )
    return search.fit(x, y)


def contiguous_folds(order: np.ndarray, splits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """KFold's layout: ``order`` cut into ``splits`` consecutive blocks, the first ones larger."""
    n = order.size
    sizes = np.full(splits, n // splits) + (np.arange(splits) < n % splits)
    folds, start = [], 0
    for size in sizes:
        test = order[start : start + size]
        folds.append((np.sort(np.setdiff1d(order, test)), np.sort(test)))
        start += size
    return folds


# --------------------------------------------------------------------------- data.paths


def split_by_year(ds: xr.Dataset, folder: Path) -> list[Path]:
    folder.mkdir()
    paths = []
    for year, part in ds.groupby("time.year"):
        paths.append(folder / f"cells_{year}.nc")
        part.to_netcdf(paths[-1])
    return paths


def comparable(results: xr.Dataset) -> xr.Dataset:
    return results.drop_vars(list(RUN_SPECIFIC)).drop_attrs()


def test_one_file_per_year_by_glob_or_list_equals_the_single_file(tmp_path, dask_client):
    ds = synthetic(cells=3, steps=1600)  # 12-hourly from 2010: parts of 2010, 2011 and 2012
    ds.to_netcdf(tmp_path / "whole.nc")
    paths = split_by_year(ds, tmp_path / "years")
    assert [p.name for p in paths] == ["cells_2010.nc", "cells_2011.nc", "cells_2012.nc"]
    cv = {"kind": "years"}
    grid = {"ridge__alpha": ALPHAS}
    single = synthetic_spec(tmp_path / "whole.nc", search__cv=cv, search__params=grid)
    whole = write_spec(tmp_path, single, "w.yaml")
    by_glob = synthetic_spec(
        "years/cells_*.nc", search__cv=cv, search__params=grid, output="glob/{name}"
    )
    listed = synthetic_spec("unused", output="list/{name}")
    listed["data"]["paths"] = [str(paths[2]), "years/cells_2010.nc", str(paths[1])]
    by_glob_file = write_spec(tmp_path, by_glob, "g.yaml")
    listed_file = write_spec(tmp_path, listed, "l.yaml")

    for spec_file in (by_glob_file, listed_file):  # the list is out of order: coordinates rule
        info = api.validate(spec_file)["data"]
        assert info["files"] == 3
        assert info["time"]["steps"] == 1600
        assert info["time"]["first"].startswith("2010-01-01T00:00")
        assert info["time"]["last"].startswith(str(ds.time.values[-1])[:16])

    reference = api.run(whole, client=dask_client).results
    combined = api.run(by_glob_file, client=dask_client).results
    assert list(combined.status.values) == ["ok"] * 3
    xr.testing.assert_identical(comparable(combined), comparable(reference))
    # and the folds are the calendar years of the combined time axis
    for cell in range(3):
        x, y, times = cell_rows(ds, cell)
        rows = select_rows(x, y, times, None)
        years = rows.t_train.astype("datetime64[Y]").astype(int) + 1970
        folds = [
            (np.flatnonzero(years != yr), np.flatnonzero(years == yr)) for yr in (2010, 2011, 2012)
        ]
        expected = reference_score(rows.x_train, rows.y_train, folds)
        row = combined.isel(space=cell)
        assert float(row.best_score) == pytest.approx(expected.best_score_, rel=1e-9, abs=1e-12)
        assert float(row.best_ridge__alpha) == expected.best_params_["ridge__alpha"]


# --------------------------------------------------------------------------- search.cv


def job_with_cv(tmp_path: Path, cv: dict[str, Any], seed: int = 0) -> Any:
    tmp_path.mkdir(exist_ok=True)
    data = tmp_path / "cells.nc"
    if not data.exists():
        synthetic(cells=1, steps=60).to_netcdf(data)
    spec = synthetic_spec(data, search__cv=cv, search__seed=seed)
    spec["search"]["params"] = {"ridge__alpha": ALPHAS}
    return load_spec(write_spec(tmp_path, spec))


def expected_folds(kind: str, n: int, years: np.ndarray, seed: int) -> list:
    """The folds the README describes for each kind, built by hand (3 splits, 2 repeats)."""
    rows = np.arange(n)
    if kind == "kfold":  # in order: three consecutive blocks
        return contiguous_folds(rows, 3)
    if kind == "shuffle":  # the rows permuted by search.seed, then three blocks
        order = rows.copy()
        np.random.RandomState(seed).shuffle(order)
        return contiguous_folds(order, 3)
    if kind == "repeated":  # two such shuffles, drawn one after the other from search.seed
        state, folds = np.random.RandomState(seed), []
        for _ in range(2):
            order = rows.copy()
            state.shuffle(order)
            folds += contiguous_folds(order, 3)
        return folds
    if kind == "timeseries":  # growing training periods, each tested on the next n // 4 rows
        size = n // 4
        return [(rows[: n - k * size], rows[n - k * size : n - (k - 1) * size]) for k in (3, 2, 1)]
    assert kind == "years"  # leave one calendar year out
    return [(rows[years != year], rows[years == year]) for year in np.unique(years)]


CV_KINDS = {
    "kfold": {"kind": "kfold", "splits": 3},
    "shuffle": {"kind": "kfold", "splits": 3, "shuffle": True},
    "repeated": {"kind": "repeated", "splits": 3, "repeats": 2},
    "timeseries": {"kind": "timeseries", "splits": 3},
    "years": {"kind": "years"},
}


@pytest.mark.parametrize("kind", list(CV_KINDS))
def test_each_cv_kind_makes_the_folds_the_readme_describes(tmp_path, kind):
    ds = synthetic(cells=1, steps=1600)
    x, y, times = cell_rows(ds, 0)
    rows = select_rows(x, y, times, None)
    n = rows.y_train.size
    years = rows.t_train.astype("datetime64[Y]").astype(int) + 1970
    seed = 7
    job = job_with_cv(tmp_path, CV_KINDS[kind], seed=seed)
    folds = expected_folds(kind, n, years, seed)

    splitter = search_module.make_cv(job.search.cv, job.search.seed, rows.t_train)
    made = list(splitter.split(rows.x_train, rows.y_train))
    assert len(made) == len(folds) == search_module.n_folds(job.search.cv, rows.t_train)
    for (train, test), (want_train, want_test) in zip(made, folds, strict=True):
        np.testing.assert_array_equal(np.sort(test), want_test)
        np.testing.assert_array_equal(np.sort(train), np.sort(want_train))
    # the partition's search scores on exactly these folds
    result = PartitionSearch(job.search).run(0, x, y, times)
    expected = reference_score(rows.x_train, rows.y_train, folds)
    assert result.status == "ok", result.reason
    assert result.best_score == pytest.approx(expected.best_score_, rel=1e-9, abs=1e-12)
    assert result.best_params == expected.best_params_


def test_shuffle_and_repeats_follow_search_seed(tmp_path):
    n = 30
    x = np.zeros((n, 1))
    tests = {}
    for name, cv in (("shuffle", CV_KINDS["shuffle"]), ("repeated", CV_KINDS["repeated"])):
        for seed in (0, 1):
            job = job_with_cv(tmp_path / f"{name}{seed}", cv, seed=seed)
            splitter = search_module.make_cv(job.search.cv, job.search.seed)
            tests[name, seed] = [tuple(test) for _train, test in splitter.split(x)]
    unshuffled = [tuple(test) for _train, test in contiguous_folds(np.arange(n), 3)]
    for name in ("shuffle", "repeated"):
        assert tests[name, 0] != tests[name, 1], name
        assert tests[name, 0][:3] != unshuffled, name
    first, second = tests["repeated", 0][:3], tests["repeated", 0][3:]
    assert first != second  # each repeat is another shuffle
    for repeat in (first, second):  # and each repeat tests every row once
        assert sorted(np.concatenate(repeat)) == list(range(n))


# --------------------------------------------------------------------------- random search


def random_spec(data: Path, n_iter: int, **changes: Any) -> dict[str, Any]:
    spec = synthetic_spec(data, search__method="random", search__n_iter=n_iter, **changes)
    spec["search"]["params"] = {"ridge__alpha": {"loguniform": [1e-3, 1e3]}}
    return spec


def test_random_search_tries_n_iter_candidates_the_same_for_every_partition(tmp_path, monkeypatch):
    from scipy import stats

    data = tmp_path / "cells.nc"
    ds = synthetic(cells=3, steps=200)
    ds.to_netcdf(data)
    job = load_spec(write_spec(tmp_path, random_spec(data, 4, search__seed=5)))
    drawn = list(
        ms.ParameterSampler({"ridge__alpha": stats.loguniform(1e-3, 1e3)}, n_iter=4, random_state=5)
    )
    assert candidates(job.search) == drawn
    assert len({c["ridge__alpha"] for c in drawn}) == 4

    searches: list[Any] = []
    make_search = search_module.make_search

    def recording(*args: Any, **kwargs: Any) -> Any:
        searches.append(make_search(*args, **kwargs))
        return searches[-1]

    monkeypatch.setattr(search_module, "make_search", recording)
    partition = PartitionSearch(job.search)
    for cell in range(3):
        assert partition.run(cell, *cell_rows(ds, cell)).status == "ok"
    assert len(searches) == 3
    for searcher in searches:
        assert list(searcher.cv_results_["params"]) == drawn

    counts = api.validate(job)["search"]
    assert (counts["candidates"], counts["fits_per_partition"]) == (4, 4 * 3 + 1)
    other = load_spec(write_spec(tmp_path, random_spec(data, 4, search__seed=6), "other.yaml"))
    assert candidates(other.search) != drawn
    default = random_spec(data, 4)
    del default["search"]["n_iter"]
    assert len(candidates(load_spec(write_spec(tmp_path, default, "default.yaml")).search)) == 10


def test_a_random_search_of_a_short_list_tries_each_value_once(tmp_path):
    data = tmp_path / "cells.nc"
    synthetic(cells=1, steps=60).to_netcdf(data)
    spec = random_spec(data, 10)
    spec["search"]["params"] = {"ridge__alpha": ALPHAS}
    job = load_spec(write_spec(tmp_path, spec))
    assert sorted(c["ridge__alpha"] for c in candidates(job.search)) == ALPHAS
    assert api.validate(job)["search"]["candidates"] == 3


def test_random_search_results_hold_only_drawn_candidates(tmp_path, dask_client):
    data = tmp_path / "cells.nc"
    synthetic(cells=4, steps=200).to_netcdf(data)
    job_file = write_spec(tmp_path, random_spec(data, 3))
    drawn = {c["ridge__alpha"] for c in candidates(load_spec(job_file).search)}
    results = api.run(job_file, client=dask_client).results
    assert list(results.status.values) == ["ok"] * 4
    assert set(results.best_ridge__alpha.values) <= drawn


# --------------------------------------------------------------------------- constraints


def svr_spec(data: Path, params: dict[str, Any], **changes: Any) -> dict[str, Any]:
    spec = synthetic_spec(data, **changes)
    spec["search"]["estimator"] = ["sklearn.preprocessing.StandardScaler", "sklearn.svm.SVR"]
    spec["search"]["params"] = params
    return spec


@pytest.mark.parametrize(
    ("params", "method", "key", "shown"),
    [
        ({"svr__C": [1, -1]}, "grid", "search.params.svr__C", "Got -1 instead"),
        ({"svr__C": {"uniform": [-1, 1]}}, "random", "search.params.svr__C", "Got np.float64(-"),
        ({"svr__kernel": ["rbf", "cubic"]}, "grid", "search.params.svr__kernel", "'cubic'"),
        (
            {"standardscaler__with_mean": ["yes"], "svr__C": [1]},
            "grid",
            "search.params.standardscaler__with_mean",
            "'yes'",
        ),
    ],
)
def test_values_refused_by_the_estimators_constraints_exit_2_naming_the_key(
    tmp_path, capsys, params, method, key, shown
):
    data = tmp_path / "cells.nc"
    synthetic(cells=2, steps=60).to_netcdf(data)
    job_file = write_spec(tmp_path, svr_spec(data, params, search__method=method))
    for command in ("validate", "run"):
        result = hpctune(capsys, command, job_file)
        assert result.code == 2, result.err
        assert result.out == ""
        lines = result.err.splitlines()
        assert len(lines) == 1, result.err
        assert lines[0].startswith(f"hpctune: error: {key}: the "), lines[0]
        assert shown in lines[0]
    assert not (tmp_path / "out").exists()
    # the same spec with allowed values is accepted: the refusal is about the values
    fine = svr_spec(data, {"svr__C": [1, 10], "svr__kernel": ["rbf"]})
    assert hpctune(capsys, "validate", write_spec(tmp_path, fine, "fine.yaml")).code == 0


# --------------------------------------------------------------------------- error_score


@pytest.mark.parametrize(
    ("error_score", "kernels", "granularity", "status", "reason"),
    [
        ("nan", ["precomputed", "rbf"], "fit", "ok", ""),
        ("nan", ["precomputed", "rbf"], "partition", "ok", ""),
        ("raise", ["precomputed", "rbf"], "fit", "failed", "ValueError: Precomputed matrix must"),
        ("nan", ["precomputed"], "fit", "failed", "ValueError: Precomputed matrix must"),
    ],
)
def test_error_score(tmp_path, dask_client, error_score, kernels, granularity, status, reason):
    """SVR's ``precomputed`` kernel passes the constraints but cannot fit rows of 3 inputs.

    A search runs where its partition's task runs (a worker, ``partition``) or in the driver
    (``fit``): both rank a failed candidate last."""
    data = tmp_path / "cells.nc"
    synthetic(cells=2, steps=120).to_netcdf(data)
    spec = svr_spec(
        data,
        {"svr__kernel": kernels},
        search__error_score=error_score,
        search__scoring=["neg_mean_squared_error", "r2"],
        search__refit="r2",
        cluster__granularity=granularity,
    )
    summary = api.run(write_spec(tmp_path, spec), client=dask_client)
    assert summary.granularity == granularity
    results = summary.results
    assert list(results.status.values) == [status] * 2, list(results.reason.values)
    for text in results.reason.values:
        assert text.startswith(reason), text
    if status == "ok":
        assert list(results.best_svr__kernel.values) == ["rbf", "rbf"]
        assert np.isfinite(results.best_score.values).all()
        assert (results.best_score == results.cv_r2).all()
        assert (results.cv_neg_mean_squared_error < 0).all()
        assert summary.exit_code == 0
    else:
        assert summary.exit_code == 3


# --------------------------------------------------------------------------- templates


def template(folder: Path, name: str, marker: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    kind = name.split(".")[0]
    (folder / name).write_text(
        f'{{% extends "hpctune/{kind}.sh.j2" %}}\n'
        f"{{% block setup %}}\n# {marker}\n{{{{ super() }}}}{{% endblock %}}\n"
    )


def test_hpctune_template_dir_with_several_folders_first_file_wins(tmp_path, monkeypatch):
    first, second, given = tmp_path / "first", tmp_path / "second", tmp_path / "given"
    template(first, "pbs.sh.j2", "pbs from first")
    template(second, "pbs.sh.j2", "pbs from second")
    template(second, "slurm.sh.j2", "slurm from second")
    template(given, "torque.sh.j2", "torque from --template-dir")
    monkeypatch.setenv("HPCTUNE_TEMPLATE_DIR", f"{first}{os.pathsep}{os.pathsep}{second}")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    folders = template_dirs([given])
    assert folders[:4] == [given, first, second, tmp_path / "config" / "hpctune" / "templates"]
    assert (folders[4] / "base.sh.j2").is_file() and len(folders) == 5

    data = tmp_path / "cells.nc"
    synthetic(cells=2, steps=60).to_netcdf(data)
    job = load_spec(write_spec(tmp_path, synthetic_spec(data)))
    markers = {
        kind: [
            line
            for line in render_script(job, kind=kind, template_dir=[given]).splitlines()
            if " from " in line
        ]
        for kind in ("slurm", "pbs", "torque")
    }
    assert markers == {
        "slurm": ["# slurm from second"],
        "pbs": ["# pbs from first"],
        "torque": ["# torque from --template-dir"],
    }
    plain = render_script(job, kind="torque")  # without the option: the shipped torque template
    assert " from " not in plain and "#PBS -l nodes=1:ppn=1" in plain


# --------------------------------------------------------------------------- submit


def fake_program(bin_dir: Path, name: str, body: str) -> None:
    """A stand-in for a scheduler command that appends its arguments to ``<name>.calls``."""
    path = bin_dir / name
    path.write_text(f'#!/bin/bash\necho "$*" >> {bin_dir / name}.calls\n{body}\n')
    path.chmod(0o755)


def calls(bin_dir: Path, name: str) -> list[str]:
    path = bin_dir / f"{name}.calls"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir


def batch_job(tmp_path: Path, kind: str, cells: int = 7) -> Path:
    data = tmp_path / "cells.nc"
    synthetic(cells=cells, steps=60).to_netcdf(data)
    spec = synthetic_spec(data)
    spec["scheduler"] = {"kind": kind, "walltime": "00:10:00"}
    return write_spec(tmp_path, spec)


ARRAY_FLAG = {"pbs": "-J", "torque": "-t"}
INDEX = {"pbs": "$PBS_ARRAY_INDEX", "torque": "${PBS_ARRAYID:-$SLURM_ARRAY_TASK_ID}"}
LIMIT = {"pbs": "max_array_size", "torque": "max_job_array_size"}


def fake_pbs_server(bin_dir: Path, kind: str, limit: int) -> None:
    """qsub numbers jobs from 100 (``N[].srv`` for an array); ``qstat -B -f`` shows the limit."""
    counter = bin_dir / "counter"
    counter.write_text("100")
    fake_program(
        bin_dir,
        "qsub",
        f"n=$(cat {counter}); echo $((n + 1)) > {counter}\n"
        f'if grep -q "^#PBS {ARRAY_FLAG[kind]} " "${{@: -1}}"; then echo "$n[].srv"; '
        'else echo "$n.srv"; fi',
    )
    fake_program(
        bin_dir,
        "qstat",
        'if [ "$*" = "-B -f" ]; then\n'
        "  printf 'Server: srv\\n    server_state = Active\\n"
        f"    {LIMIT[kind]} = {limit}\\n    total_jobs = 0\\n'\n"
        "else exit 153; fi",
    )


@pytest.mark.parametrize("kind", ["pbs", "torque"])
def test_pbs_arrays_are_split_at_the_servers_limit(tmp_path, fake_bin, capsys, kind):
    job_file = batch_job(tmp_path, kind)
    fake_pbs_server(fake_bin, kind, limit=3)
    result = hpctune(capsys, "submit", job_file, "--array", "7")
    assert result.code == 0, result.err
    assert result.out == "103.srv\n"  # the merge job's id, alone: what `jid=$(...)` takes
    assert result.err.splitlines() == [
        "hpctune: 7 array tasks exceed the site's limit of 3 per array: split into 3 arrays",
        "hpctune: submitted array (slices 0-2 of 7): job 100[].srv",
        "hpctune: submitted array (slices 3-5 of 7): job 101[].srv",
        "hpctune: submitted array (slices 6-6 of 7): job 102.srv",
        "hpctune: submitted merge: job 103.srv",
    ]
    merge_after = {
        "pbs": "depend=afterany:100[].srv:101[].srv:102.srv",
        "torque": "depend=afteranyarray:100[].srv:101[].srv,afterany:102.srv",
    }[kind]
    assert calls(fake_bin, "qsub") == [
        "synthetic.1.array0.sh",
        "synthetic.1.array1.sh",
        "synthetic.1.array2.sh",
        f"-W {merge_after} synthetic.1.merge.sh",
    ]
    assert calls(fake_bin, "qstat") == ["-B -f"]
    log_dir = load_spec(job_file).log_dir
    scripts = [(log_dir / f"synthetic.1.array{k}.sh").read_text() for k in range(3)]
    flag, index = ARRAY_FLAG[kind], INDEX[kind]
    for script, offset in zip(scripts[:2], (0, 3), strict=True):
        assert f"\n#PBS {flag} 0-2\n" in script  # each array indexed from 0
        assert f'--slice "$(({offset} + {index}))/7"' in script
    assert f"#PBS {flag}" not in scripts[2]  # a one-task part is a plain job
    assert " --slice 6/7" in scripts[2]
    recorded = json.loads((load_spec(job_file).output_dir / "jobs.json").read_text())
    assert [j["array"] for j in recorded["jobs"][:3]] == [
        {"offset": 0, "size": 3, "slices": 7},
        {"offset": 3, "size": 3, "slices": 7},
        {"offset": 6, "size": 1, "slices": 7},
    ]


def test_pbs_array_within_the_limit_is_one_array(tmp_path, fake_bin, capsys):
    job_file = batch_job(tmp_path, "pbs")
    fake_pbs_server(fake_bin, "pbs", limit=7)
    result = hpctune(capsys, "submit", job_file, "--array", "7")
    assert result.code == 0, result.err
    assert result.out == "101.srv\n"
    assert calls(fake_bin, "qsub") == [
        "synthetic.1.array.sh",
        "-W depend=afterany:100[].srv synthetic.1.merge.sh",
    ]
    assert "exceed" not in result.err


def test_submit_without_json_prints_the_job_id_alone(tmp_path, fake_bin, capsys):
    job_file = batch_job(tmp_path, "slurm")
    counter = fake_bin / "counter"
    counter.write_text("4242")
    fake_program(fake_bin, "sbatch", f'n=$(cat {counter}); echo $((n + 1)) > {counter}; echo "$n"')
    fake_program(fake_bin, "scontrol", "echo 'MaxArraySize            = 1001'")
    result = hpctune(capsys, "submit", job_file)
    assert result.code == 0, result.err
    assert result.out == "4242\n"
    assert result.err.splitlines() == ["hpctune: submitted run: job 4242"]
    result = hpctune(capsys, "submit", job_file, "--array", "2", "--after", "17")
    assert result.code == 0, result.err
    assert result.out == "4244\n"
    assert result.err.splitlines() == [
        "hpctune: submitted array (slices 0-1 of 2): job 4243",
        "hpctune: submitted merge: job 4244",
    ]
    submitted = calls(fake_bin, "sbatch")
    assert submitted[0].endswith("synthetic.1.run.sh")
    assert "--dependency=afterok:17" in submitted[1] and submitted[1].endswith("array.sh")
    assert "--dependency=afterany:4243" in submitted[2] and submitted[2].endswith("merge.sh")
    # the same submission with --json: the same id, as job_id
    result = hpctune(capsys, "submit", job_file, "--json")
    assert json.loads(result.out)["job_id"] == "4245"
