"""The job spec: defaults, validation messages that name the key, overrides, paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import ROOT, synthetic_spec

from hpctune.errors import SpecError
from hpctune.spec.load import load_spec
from hpctune.units import parse_memory, parse_walltime


def spec(**changes):
    return synthetic_spec(Path("cells.nc"), **changes)


def error_of(raw, overrides=()) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec(raw, overrides, base_dir="/base")
    return info.value


def test_example_spec_loads_with_defaults_and_absolute_paths():
    job = load_spec(ROOT / "jobs" / "example.yaml")
    assert job.name == "ascat-sig-svr"
    assert job.data.paths == [str(ROOT / "data" / "ascat_isba_5cells.nc")]
    assert job.output == str(ROOT / "results" / "ascat-sig-svr")
    assert job.partition.by == "cell"
    assert job.cluster.mode == "auto"
    assert job.search.refit_metric == "r2"
    assert job.search.cv.n_splits == 3
    assert job.spec_path == (ROOT / "jobs" / "example.yaml").resolve()


def test_relative_paths_resolve_against_base_dir_and_lists_are_normalised():
    job = load_spec(spec(), base_dir="/base")
    assert job.data.paths == ["/base/cells.nc"]
    assert job.data.space == ["space"]
    assert job.output == "/base/out/synthetic"
    assert job.search.scoring == ["r2"]


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"bogus": 1}, "bogus", "unknown key (allowed: name, data, partition, search"),
        ({"search__bogus": 1}, "search.bogus", "unknown key (allowed: method, estimator"),
        ({"name": "$(rm -rf ~)"}, "name", "must match [A-Za-z0-9._-]+"),
        ({"name": "a/b"}, "name", "must match"),
        ({"name": ".."}, "name", "must not be '..'"),
        (
            {"search__method": "bayes"},
            "search.method",
            "must be one of 'grid', 'random', 'halving' or 'halving-random'; got 'bayes'",
        ),
        ({"search__params": {}}, "search.params", "must not be empty"),
        ({"search__params": {"ridge__alpha": []}}, "search.params", "the list of values is empty"),
        ({"search__params": {"ridge__alpha": 3}}, "search.params", "give a list of values"),
        ({"search__cv": {"kind": "kfold", "splits": 1}}, "search.cv.splits", "must be >= 2; got 1"),
        ({"search__cv": {"kind": "loo"}}, "search.cv.kind", "must be one of"),
        (
            {"search__cv": {"kind": "years", "splits": 3}},
            "search.cv",
            "does not apply to kind 'years'",
        ),
        ({"search__refit": "rmse"}, "search", "refit 'rmse' must be one of the scoring names"),
        ({"search__estimator": "os.system; rm"}, "search.estimator", "must be an import path"),
        (
            {"data__test": {"from": "next tuesday"}},
            "data.test.from",
            "must be a date such as 2016-01-01",
        ),
        ({"data__inputs": ["x1", "x1"]}, "data.inputs", "names an input twice: x1"),
        ({"data__inputs": ["x1", "y"]}, "data", "target 'y' is also listed in inputs"),
        ({"data__chunk": 0}, "data.chunk", "must be >= 1; got 0"),
        (
            {"search__params": {"ridge__alpha": {"uniform": [0, 1]}}},
            "search",
            "distributions need method: random",
        ),
        ({"scheduler__walltime": "99:99:99:99"}, "scheduler.walltime", "M:S, H:M:S, D-H"),
        ({"scheduler__walltime": "10:75:00"}, "scheduler.walltime", "below 60"),
        ({"scheduler__memory": "lots"}, "scheduler.memory", "must be a size such as 120GB"),
        ({"scheduler__queue": "debug\n#SBATCH --uid=0"}, "scheduler.queue", "must match"),
        ({"scheduler__account": "proj;reboot"}, "scheduler.account", "must match"),
        ({"scheduler__extra": ["--gres=gpu:1\n#SBATCH -A x"]}, "scheduler.extra", "single line"),
        ({"scheduler__extra": ["rm -rf /"]}, "scheduler.extra", "scheduler option"),
        ({"scheduler__env": {"A B": "x"}}, "scheduler.env", "not a valid environment name"),
        ({"cluster__mode": "cloud"}, "cluster.mode", "must be one of"),
        ({"output": "out/{user}"}, "output", "only the placeholder {name}"),
    ],
)
def test_bad_values_name_their_key(changes, key, words):
    error = error_of(spec(**changes))
    assert error.key == key, str(error)
    assert words in str(error)
    assert "\n" not in str(error)


def test_missing_required_key():
    raw = spec()
    del raw["data"]["target"]
    error = error_of(raw)
    assert (error.key, error.message) == ("data.target", "is required")


def test_random_search_distributions():
    job = load_spec(
        spec(
            search__method="random",
            search__n_iter=4,
            search__params={"ridge__alpha": {"loguniform": [1e-3, 10]}},
        ),
        base_dir="/base",
    )
    assert job.search.method == "random"
    for bad, words in [
        ({"loguniform": [0, 1]}, "low > 0"),
        ({"uniform": [2, 1]}, "low < high"),
        (
            {"gauss": [0, 1]},
            "unknown distribution 'gauss'; available: loguniform, uniform, randint",
        ),
        ({"randint": [1.5, 4]}, "integer bounds"),
    ]:
        error = error_of(spec(search__method="random", search__params={"ridge__alpha": bad}))
        assert words in str(error)


def test_overrides_are_yaml_scalars_on_dotted_keys():
    job = load_spec(
        spec(),
        [
            "search.cv.splits=5",
            "search.params.ridge__alpha=[1, 2]",
            "cluster.workers=3",
            "data.test.from=2011-01-01",
        ],
        base_dir="/base",
    )
    assert job.search.cv.n_splits == 5
    assert job.search.params["ridge__alpha"] == [1, 2]
    assert job.cluster.workers == 3
    assert job.data.test is not None and job.data.test.start.year == 2011


@pytest.mark.parametrize(
    ("override", "key", "words"),
    [
        ("search.cv.splits", "--set", "expects dotted.key=value"),
        ("=3", "--set", "expects dotted.key=value"),
        ("name.first=x", "name.first", "not a mapping"),
        ("search.cv.splits=[1", "search.cv.splits", "not valid YAML"),
        ("search.cv.splits=1", "search.cv.splits", "must be >= 2"),
        ("nonsense.key=1", "nonsense", "unknown key"),
    ],
)
def test_bad_overrides(override, key, words):
    error = error_of(spec(), [override])
    assert error.key == key
    assert words in str(error)


def test_yaml_files_that_are_not_specs(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match=r"malformed YAML in .*bad.yaml at line \d+"):
        load_spec(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match=r"must be a mapping of keys .* got list"):
        load_spec(bad)
    bad.write_text("")
    with pytest.raises(SpecError, match="got empty"):
        load_spec(bad)
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "missing.yaml")


def test_fingerprint_follows_results_not_resources():
    base = load_spec(spec(), base_dir="/base")
    same = load_spec(spec(data__chunk=99, cluster__workers=7, search__timeout=30), base_dir="/base")
    other = load_spec(spec(search__params={"ridge__alpha": [1.0]}), base_dir="/base")
    assert base.fingerprint() == same.fingerprint()
    assert base.fingerprint() != other.fingerprint()


#: A walltime as written in a spec's YAML -> seconds, with the meaning ``sbatch --time`` gives
#: it: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S. Unquoted, YAML 1.1 reads ``1:30`` and ``1:00:00`` as
#: sexagesimal integers (90 and 3600); the spec reads them as the text written.
WALLTIME_FORMS = [
    ("90", 90 * 60),  # M: a plain integer is minutes
    ('"90"', 90 * 60),
    ('"5"', 5 * 60),
    ('"01:00"', 60),  # M:S: one minute, not one hour
    ('"00:30"', 30),
    ('"90:00"', 90 * 60),
    ("1:30", 90),  # M:S, unquoted: YAML's sexagesimal 90
    ('"02:00:00"', 2 * 3600),  # H:M:S
    ("1:00:00", 3600),  # H:M:S, unquoted: YAML's sexagesimal 3600
    ("2:30:15", 2 * 3600 + 30 * 60 + 15),
    ('"48:00:00"', 48 * 3600),
    ('"1-12"', 36 * 3600),  # D-H
    ("2-0", 2 * 86400),
    ('"1-12:30"', 36 * 3600 + 30 * 60),  # D-H:M
    ('"1-00:00:01"', 86400 + 1),  # D-H:M:S
    ("10-00:01:01", 10 * 86400 + 61),
]


@pytest.mark.parametrize(("written", "seconds"), WALLTIME_FORMS)
def test_walltime_in_every_form_sbatch_reads(tmp_path, written, seconds):
    base = spec()
    base["scheduler"] = {"walltime": "00:00:01", "grace": 0}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(base).replace("walltime: 00:00:01", f"walltime: {written}"))
    assert f"walltime: {written}" in path.read_text()
    assert load_spec(path).scheduler.walltime == seconds
    overridden = load_spec(path, [f"scheduler.walltime={written}"])
    assert overridden.scheduler.walltime == seconds
    assert parse_walltime(written.strip('"')) == seconds


@pytest.mark.parametrize(
    "written",
    [
        '"1:2:3:4"',
        "1:00:00:00",  # YAML's sexagesimal 216000, which sbatch does not read
        '"99:99:99:99"',
        '"10:75:00"',  # minutes above 59
        '"1:60"',  # seconds above 59
        '"1-2:60"',
        '"0"',  # sbatch: no limit at all
        "0",
        '"00:00:00"',
        '"-5"',
        "-5",
        '"1.5"',
        "1.5",
        '"1h"',
        '"UNLIMITED"',
        '"1-"',
        '"-1:00"',
        '"1:"',
        '""',
        "true",
        "[1, 2]",
    ],
)
def test_other_walltimes_are_refused_naming_the_key(tmp_path, written):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec()) + f"scheduler:\n  walltime: {written}\n")
    for source, overrides in ((path, ()), (spec(), [f"scheduler.walltime={written}"])):
        with pytest.raises(SpecError) as info:
            load_spec(source, overrides, base_dir=tmp_path)
        assert info.value.key == "scheduler.walltime", str(info.value)
        assert "\n" not in str(info.value)


def test_walltime_is_written_back_as_the_same_walltime():
    for written, seconds in WALLTIME_FORMS:
        job = load_spec(spec(), [f"scheduler.walltime={written}"], base_dir="/base")
        text = job.to_dict()["scheduler"]["walltime"]
        assert isinstance(text, str) and parse_walltime(text) == seconds
    assert load_spec(spec(), base_dir="/base").to_dict()["scheduler"]["walltime"] == "01:00:00"


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("120GB", 120 * 2**30),
        ("120G", 120 * 2**30),
        ("512MiB", 512 * 2**20),
        (4, 4 * 2**30),
        ("1.5T", int(1.5 * 2**40)),
    ],
)
def test_memory_counts_in_powers_of_two(value, size):
    assert parse_memory(value) == size
