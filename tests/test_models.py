"""Model files load without running code from the file; tampered files are refused."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import rewrite_schema

import hpctune
from hpctune.errors import ModelError
from hpctune.search.model_file import load_model, load_model_file, model_path


@pytest.fixture(scope="module")
def finished(tmp_path_factory, dask_client):
    from helpers import synthetic, synthetic_spec, write_spec

    folder = tmp_path_factory.mktemp("models")
    synthetic(cells=2).to_netcdf(folder / "cells.nc")
    path = write_spec(folder, synthetic_spec(folder / "cells.nc"))
    hpctune.run(path, client=dask_client)
    return hpctune.load_spec(path)


def test_best_model_loads_and_predicts(finished):
    model = load_model(finished, 1)
    assert type(model).__name__ == "Pipeline"
    assert model.predict(np.zeros((4, 3))).shape == (4,)
    assert model_path(finished, 1).name == "1.skops"


def test_a_file_asking_for_other_types_is_refused(finished, tmp_path):
    def smuggle(schema):
        schema["__module__"] = "builtins"
        schema["__class__"] = "eval"

    tampered = tmp_path / "tampered.skops"
    rewrite_schema(model_path(finished, 0), tampered, smuggle)
    with pytest.raises(ModelError, match=r"refusing to load .* builtins.eval"):
        load_model_file(tampered)


def test_damaged_files_are_a_clear_error(tmp_path):
    garbage = tmp_path / "garbage.skops"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(ModelError, match="damaged or not a skops file"):
        load_model_file(garbage)
    with pytest.raises(ModelError, match="no model file"):
        load_model_file(tmp_path / "absent.skops")
