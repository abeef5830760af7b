"""Property-based: no spec value gives a traceback, and every rejection names its key."""

from __future__ import annotations

import copy
from pathlib import Path

from helpers import synthetic_spec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hpctune.errors import SpecError
from hpctune.spec.load import load_spec
from hpctune.spec.schema import Job

BASE = synthetic_spec(Path("cells.nc"))
BASE["scheduler"] = {"kind": "slurm", "nodes": 2, "walltime": "01:00:00", "queue": "debug"}
BASE["cluster"] = {"mode": "local", "workers": 2}

KEYS = [
    "name",
    "output",
    "data.paths",
    "data.space",
    "data.time",
    "data.inputs",
    "data.target",
    "data.chunk",
    "data.test.from",
    "data.engine",
    "partition.by",
    "search.method",
    "search.estimator",
    "search.params",
    "search.params.ridge__alpha",
    "search.n_iter",
    "search.cv.kind",
    "search.cv.splits",
    "search.cv.repeats",
    "search.cv.shuffle",
    "search.scoring",
    "search.refit",
    "search.seed",
    "search.min_samples",
    "search.timeout",
    "search.error_score",
    "cluster.mode",
    "cluster.workers",
    "cluster.threads",
    "cluster.interface",
    "cluster.jobs",
    "cluster.adaptive",
    "cluster.start_timeout",
    "cluster.granularity",
    "scheduler.kind",
    "scheduler.nodes",
    "scheduler.cores_per_node",
    "scheduler.memory",
    "scheduler.walltime",
    "scheduler.queue",
    "scheduler.account",
    "scheduler.setup",
    "scheduler.extra",
    "scheduler.log_dir",
    "scheduler.env",
    "scheduler.grace",
    "bogus",
    "search.bogus",
    "data.test.bogus",
]

hostile_text = st.sampled_from(
    [
        "",
        "$(reboot)",
        "a\nb",
        "#SBATCH --uid=0",
        "x;y",
        "../../etc",
        "99:99:99:99",
        "lots",
        "\x00",
        "-1",
        "1e309",
        "nan",
        "scale",
        "r2",
        "2016-13-45",
        "sklearn.svm.SVR",
        "os.system",
    ]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    hostile_text,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def set_key(raw, dotted, value):
    node = raw
    *parents, last = dotted.split(".")
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last] = value


def names_the_key(error, key):
    """The rejection names ``key``: the key itself, one below it, or a parent of it whose
    message goes on to name the rest (``search: refit 'x' must be ...``)."""
    named = error.key
    if named == key or named.startswith(key + "."):
        return True
    return key.startswith(named + ".") and key.split(".")[-1] in error.message


def created_parent(dotted):
    """The deepest parent of ``dotted`` that BASE lacks (set_key creates it), or None."""
    node, parts = BASE, dotted.split(".")
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node:
            return ".".join(parts[: depth + 1])
        node = node[part]
    return None


def check(raw, overrides=(), key=None):
    """Load the spec; a rejection is one line that begins with the key it names, and it names
    ``key`` (the one the test changed, see names_the_key) or a key of a mapping the test
    created (one it requires); a ``--set`` text that is no override at all is named ``--set``."""
    try:
        job = load_spec(raw, overrides, base_dir="/base")
    except SpecError as error:
        message = str(error)
        assert error.key, "a rejection must name its key"
        assert message.startswith(f"{error.key}: "), f"no key first: {message!r}"
        assert len(message.splitlines()) == 1 and "\r" not in message, f"not one line: {message!r}"
        assert "Traceback" not in message, message
        if key is not None:
            parent = created_parent(key)
            allowed = names_the_key(error, key) or (
                parent is not None and error.key.startswith(parent + ".")
            )
            if overrides:
                allowed = allowed or error.key == "--set"
            assert allowed, f"changed {key!r} but the rejection names {error.key!r}: {message!r}"
        return None
    assert isinstance(job, Job)
    return job


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(KEYS), value=values)
def test_any_value_at_any_key_is_accepted_or_named(key, value):
    raw = copy.deepcopy(BASE)
    set_key(raw, key, value)
    check(raw, key=key)


@settings(max_examples=300, deadline=None)
@given(override=st.text(max_size=40))
def test_any_override_text_is_accepted_or_named(override):
    check(copy.deepcopy(BASE), [override], key=override.partition("=")[0].strip() or "--set")


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(KEYS), text=st.one_of(hostile_text, st.text(max_size=20)))
@example(key="name", text="2016-13-45")  # YAML reads a date; an impossible one raised ValueError
def test_any_override_of_a_known_key_is_accepted_or_named(key, text):
    check(copy.deepcopy(BASE), [f"{key}={text}"], key=key)


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(KEYS), text=hostile_text)
def test_hostile_strings_never_reach_a_job_unvalidated(key, text):
    raw = copy.deepcopy(BASE)
    set_key(raw, key, text)
    job = check(raw, key=key)
    if job is None:
        return
    for field in (
        job.name,
        job.scheduler.queue or "",
        job.scheduler.account or "",
        *job.scheduler.extra,
        *job.scheduler.setup,
    ):
        assert "\n" not in field and "\x00" not in field
    assert "$(" not in job.name and ";" not in (job.scheduler.account or "")


def test_an_impossible_date_in_the_spec_file_is_named(tmp_path):
    spec = tmp_path / "job.yaml"
    spec.write_text("name: 2016-13-45\n", encoding="utf-8")
    try:
        load_spec(spec)
    except SpecError as error:
        assert error.key == "spec" and str(spec) in str(error), str(error)
        assert len(str(error).splitlines()) == 1
    else:
        raise AssertionError("an impossible date was accepted")
