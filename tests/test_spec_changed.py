"""Results of another spec are never shown silently: ``status``, ``report`` and
``hpctune.results`` name the keys that changed (a warning line, ``spec_changed`` in JSON, a
:class:`hpctune.SpecChangedWarning` and a Dataset attribute), as ``run`` names them when it
refuses."""

from __future__ import annotations

import json
import warnings

import pytest
from helpers import synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune

import hpctune as api
from hpctune import HpctuneWarning, SpecChangedWarning

#: A spec changed in two keys that decide results, and one that adds a searched parameter.
CHANGES = [
    "search.cv.splits=4",
    "search.params.ridge__alpha=[5.0]",
    "search.params.ridge__fit_intercept=[true]",
]
CHANGED = ["search.cv.splits", "search.params.ridge__alpha", "search.params.ridge__fit_intercept"]
SETS = [word for change in CHANGES for word in ("--set", change)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, dask_client):
    """A finished run of six cells (the tests only read it, or write reports elsewhere)."""
    folder = tmp_path_factory.mktemp("spec-changed")
    synthetic().to_netcdf(folder / "cells.nc")
    job = write_spec(folder, synthetic_spec(folder / "cells.nc"))
    api.run(job, client=dask_client)
    return job


def warning_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("hpctune: warning:")]


def test_the_same_spec_or_other_resources_show_results_without_a_word(finished, capsys):
    resources = ["data.chunk=2", "cluster.workers=1", "search.timeout=30", "scheduler.nodes=3"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", HpctuneWarning)
        for overrides in ([], resources):
            ds = api.results(finished, overrides)
            assert "hpctune_spec_changed" not in ds.attrs
            assert list(ds.status.values) == ["ok"] * 6
            assert api.status(finished, overrides).spec_changed == []
    shown = hpctune(capsys, "status", finished, "--json")
    assert shown.code == 0 and json.loads(shown.out)["spec_changed"] == []
    assert warning_lines(shown.err) == []


def test_results_of_a_changed_spec_warn_and_name_the_keys(finished):
    with pytest.warns(SpecChangedWarning) as caught:
        ds = api.results(finished, CHANGES)
    assert len(caught) == 1
    warning = caught[0]
    assert warning.message.changed == CHANGED
    assert warning.filename == __file__  # reported at the caller's line
    assert "holds results of a different spec (changed: search.cv.splits, " in str(warning.message)
    assert ds.attrs["hpctune_spec_changed"] == CHANGED
    # what is returned is still the old spec's results: nothing was recomputed
    assert set(ds.best_ridge__alpha.values) <= {0.1, 1.0, 10.0}
    assert "best_ridge__fit_intercept" not in ds


def test_status_says_the_partitions_are_another_specs(finished, capsys):
    with pytest.warns(SpecChangedWarning):
        state = api.status(finished, CHANGES)
    assert state.spec_changed == CHANGED
    assert state.partitions["ok"] == 6

    text = hpctune(capsys, "status", finished, *SETS)
    assert text.code == 0, text.err
    lines = warning_lines(text.err)
    assert len(lines) == 1, text.err
    assert (
        "holds results of a different spec (changed: search.cv.splits, "
        "search.params.ridge__alpha, search.params.ridge__fit_intercept)"
    ) in lines[0]
    assert "--restart" in lines[0]
    assert "Traceback" not in text.err and "SpecChangedWarning" not in text.err
    assert "6 ok" in text.out

    as_json = hpctune(capsys, "status", finished, "--json", *SETS)
    assert as_json.code == 0
    assert json.loads(as_json.out)["spec_changed"] == CHANGED
    assert len(warning_lines(as_json.err)) == 1


def test_report_draws_the_results_with_their_own_spec_and_says_so(finished, capsys, tmp_path):
    unchanged = api.report(finished, folder=tmp_path / "unchanged")
    assert unchanged.spec_changed == []

    made = hpctune(capsys, "report", finished, "--json", "-o", tmp_path / "changed", *SETS)
    assert made.code == 0, made.err
    data = json.loads(made.out)
    assert data["spec_changed"] == CHANGED
    lines = warning_lines(made.err)
    assert len(lines) == 1 and "search.params.ridge__fit_intercept" in lines[0]
    # the figures are those of the results (the parameter the new spec adds has no values)
    assert [f["title"] for f in data["figures"]] == [f.title for f in unchanged.figures]
    page = (tmp_path / "changed" / "index.html").read_text()
    assert "The spec has changed" in page
    assert "search.params.ridge__fit_intercept" in page
    assert "The spec has changed" not in unchanged.index.read_text()
    spec_text = page[page.index("<h2>Job spec</h2>") :]
    assert "ridge__fit_intercept" not in spec_text and "ridge__alpha" in spec_text

    with pytest.warns(SpecChangedWarning) as caught:
        api.report(finished, CHANGES, folder=tmp_path / "api")
    assert caught[0].filename == __file__
