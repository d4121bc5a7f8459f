"""The same seed gives the same numbers from Python as from the `diffuse` command."""

import subprocess

import numpy as np

import diffuse


def run(cli, *args):
    subprocess.run([cli, *map(str, args)], check=True, capture_output=True)


def read(path, d):
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2).reshape(-1, d)


def test_exact_mixture_undiffusion(cli, tmp_path):
    for k, (data, d, extra, kw) in enumerate([
        ("delta:-1,1", 1, ["--sampler", "heun", "--nfe", "20"], {"sampler": "heun", "nfe": 20}),
        ("moons", 2, ["--sampler", "dpmpp-2m", "--nfe", "10", "--prior", "normal", "--steps", "1000"],
         {"sampler": "dpmpp-2m", "nfe": 10, "prior": "normal", "steps": 1000}),
        ("8gaussians", 2, ["--to", "50"], {"to": 50}),
        # The defaults of few steps from N(0, I): T = 1000 and a fitted grid, on both sides.
        ("8gaussians", 2, ["--sampler", "unipc", "--nfe", "10", "--prior", "normal"],
         {"sampler": "unipc", "nfe": 10, "prior": "normal"}),
        # dpmpp-2m's few-step ends by default, and plain ones when asked.
        ("8gaussians", 2, ["--sampler", "dpmpp-2m", "--nfe", "10", "--prior", "normal"],
         {"sampler": "dpmpp-2m", "nfe": 10, "prior": "normal"}),
        ("8gaussians", 2, ["--sampler", "dpmpp-2m", "--nfe", "10", "--prior", "normal",
                           "--ends", "plain"],
         {"sampler": "dpmpp-2m", "nfe": 10, "prior": "normal", "ends": "plain"}),
    ]):
        out = tmp_path / f"{k}-{data.replace(':', '_')}"
        run(cli, "undiffuse", "--data", data, "--n", 700, "--seed", 4, *extra, "--out", out)
        u = diffuse.undiffuse(data, n=700, seed=4, progress=False, **kw)
        np.testing.assert_array_equal(u.x, read(out / "samples.csv", d), err_msg=data)


def test_a_learned_models_samples_and_weights(cli, tmp_path):
    a, b = tmp_path / "cli", tmp_path / "py"
    run(cli, "train", "--data", "spiral", "--steps", 40, "--hidden", 16, "--depth", 1,
        "--seed", 2, "--out", a)
    model = diffuse.train("spiral", b, steps=40, hidden=16, depth=1, seed=2, progress=False)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    run(cli, "sample", "--model", a, "--n", 400, "--sampler", "ddim", "--nfe", 10, "--seed", 3,
        "--out", tmp_path / "s")
    x = model.sample(400, sampler="ddim", nfe=10, seed=3, progress=False)
    np.testing.assert_array_equal(x, read(tmp_path / "s" / "samples.csv", 2))
    # device= as --device: the CPU named is the CPU this build chose.
    run(cli, "sample", "--model", a, "--n", 400, "--sampler", "ddim", "--nfe", 10, "--seed", 3,
        "--device", "cpu", "--out", tmp_path / "c")
    x = diffuse.Model.load(b, device="cpu").sample(400, sampler="ddim", nfe=10, seed=3,
                                                   progress=False)
    np.testing.assert_array_equal(x, read(tmp_path / "c" / "samples.csv", 2))


def test_a_shipped_image_models_images(cli, tmp_path):
    run(cli, "sample", "--model", "fashion-mnist", "--n", 3, "--nfe", 6, "--label", "bag",
        "--seed", 7, "--out", tmp_path / "s")
    x = diffuse.load("fashion-mnist").sample(3, nfe=6, label="bag", seed=7, progress=False)
    np.testing.assert_array_equal(x.reshape(3, -1), read(tmp_path / "s" / "samples.csv", 28 * 28))


def test_a_prompt_to_the_shipped_image_model(cli, tmp_path):
    prompt = "a leather ankle boot"
    run(cli, "sample", "--model", "fashion-mnist", "--n", 2, "--nfe", 5, "--prompt", prompt,
        "--seed", 1, "--out", tmp_path / "s")
    x = diffuse.load("fashion-mnist").sample(2, nfe=5, prompt=prompt, seed=1, progress=False)
    np.testing.assert_array_equal(x.reshape(2, -1), read(tmp_path / "s" / "samples.csv", 28 * 28))


def test_a_prompt_read_as_a_caption_or_as_it_is(cli, tmp_path):
    prompt = "a puffer for the snow"
    m = diffuse.load("fashion-mnist")
    x, r = m.sample(2, nfe=5, prompt=prompt, seed=1, progress=False, info=True)
    assert r.report["prompt_read_as"] == "a winter coat"
    assert r.report["prompt_read_as_class"] == "coat"
    run(cli, "sample", "--model", "fashion-mnist", "--n", 2, "--nfe", 5, "--prompt", prompt,
        "--prompt-as-is", "--seed", 1, "--out", tmp_path / "s")
    y, q = m.sample(2, nfe=5, prompt=prompt, seed=1, progress=False, info=True, prompt_as_is=True)
    assert "prompt_read_as" not in q.report
    np.testing.assert_array_equal(y.reshape(2, -1), read(tmp_path / "s" / "samples.csv", 28 * 28))
    assert not np.array_equal(x, y)
