"""Bad input: a Python exception with the command line's one-line message, never a crash."""

import numpy as np
import pytest

import diffuse


def one_line(e):
    text = str(e.value)
    assert "\n" not in text, text
    return text


def test_bad_specs():
    with pytest.raises(ValueError) as e:
        diffuse.Schedule("quadratic", 100)
    assert "unknown schedule 'quadratic'" in one_line(e)
    with pytest.raises(ValueError) as e:
        diffuse.Mixture.data("no-such-data")
    assert "unknown data 'no-such-data'" in one_line(e)
    with pytest.raises(ValueError) as e:
        diffuse.sample(diffuse.Mixture.deltas([0.0, 1.0]), sampler="dpm-9000", n=10)
    assert "unknown sampler 'dpm-9000'" in one_line(e) and "dpmpp-2m" in str(e.value)
    with pytest.raises(ValueError) as e:
        diffuse.sample(diffuse.Mixture.deltas([0.0, 1.0]), grid="wobbly", n=10)
    assert "grid" in one_line(e)
    with pytest.raises(ValueError) as e:
        diffuse.langevin(energy="sombrero")
    assert "--energy" in one_line(e)
    with pytest.raises(ValueError) as e:
        diffuse.Model.load("/no/such/model")
    assert "no such folder" in one_line(e)
    with pytest.raises(TypeError):
        diffuse.sample(diffuse.Mixture.deltas([0.0]), n=10, wiggle=3)


def test_a_device_this_build_lacks_is_named(tmp_path):
    for load in (diffuse.Model.load, diffuse.load):
        with pytest.raises(ValueError) as e:
            load("fashion-mnist", device="tpu")
        assert "device=tpu: not a device" in one_line(e) and "cpu" in str(e.value)
    with pytest.raises(ValueError) as e:
        diffuse.StableDiffusion("colour-fashion", device="cuda:x")
    assert "device=cuda:x" in one_line(e)
    with pytest.raises(ValueError) as e:
        diffuse.train("spiral", tmp_path / "m", steps=5, device="tpu", progress=False)
    assert "device=tpu" in one_line(e)
    assert not (tmp_path / "m").exists()


def test_nan_input_names_its_place():
    x = np.zeros((5, 2))
    x[3, 1] = np.nan
    with pytest.raises(ValueError) as e:
        diffuse.forward(x, "linear", 3)
    assert "row 3, column 1 is nan" in one_line(e)
    with pytest.raises(ValueError) as e:
        diffuse.Mixture(means=[[0.0], [np.inf]], stds=[1, 1])
    assert "means: row 1, column 0 is inf" in one_line(e)


def test_wrong_shapes():
    m = diffuse.Mixture(means=[[0.0, 0.0]], stds=[1.0])
    with pytest.raises(ValueError) as e:
        m.log_density(np.zeros((4, 3)))
    assert "expected 2 columns" in one_line(e)
    with pytest.raises(ValueError) as e:
        diffuse.forward(np.zeros((2, 2, 2)), "linear", 1)
    assert "2-D" in one_line(e)
    with pytest.raises(ValueError) as e:
        diffuse.Mixture(means=[[0.0], [1.0]], stds=[1.0])
    assert "2 stds" in one_line(e)
    with pytest.raises(ValueError) as e:
        diffuse.sample(lambda x, s: x[:, :1], n=10, dim=2, progress=False)
    assert "returned shape (10, 1)" in one_line(e)
    with pytest.raises(ValueError) as e:
        diffuse.forward(np.zeros((2, 1)), "linear", 5000)
    assert "t must be a whole step" in one_line(e)


def test_bad_numbers_and_counts():
    with pytest.raises(ValueError) as e:
        diffuse.Mixture(means=[[0.0], [1.0]], stds=[1, 1], weights=[0.9, 0.9])
    assert "sum to" in one_line(e)
    with pytest.raises(ValueError) as e:
        diffuse.sample(diffuse.Mixture.deltas([0.0]), n=0)
    assert "n must be a positive whole number" in one_line(e)
    with pytest.raises(ValueError) as e:
        diffuse.langevin(delta=-1.0, chains=10, steps=10)
    assert "delta must be positive" in one_line(e)
    with pytest.raises(ValueError) as e:
        diffuse.sample(diffuse.Mixture.deltas([0.0]), n=10, seed=-1)
    assert "seed" in one_line(e)


def test_a_model_folder_is_not_overwritten(tmp_path):
    diffuse.train("delta:-1,1", tmp_path, steps=5, hidden=8, depth=1, progress=False)
    before = (tmp_path / "model.safetensors").read_bytes()
    with pytest.raises(ValueError) as e:
        diffuse.train("delta:-1,1", tmp_path, steps=5, hidden=16, depth=1, progress=False)
    assert "force=True" in one_line(e)
    assert (tmp_path / "model.safetensors").read_bytes() == before


def test_a_budget_a_sampler_does_not_take_is_a_warning():
    with pytest.warns(UserWarning, match="--nfe 10 does not apply to ddpm: it takes every step"):
        diffuse.sample(diffuse.Mixture.deltas([0.0, 1.0]), sampler="ddpm", nfe=10, n=10, progress=False)
