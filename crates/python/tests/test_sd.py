"""A Stable Diffusion folder from Python: the tiny pipelines of the Rust tests (random weights in
diffusers' layout), the same images as `diffuse sample --model DIR`."""

import struct
import subprocess
import zlib

import numpy as np
import pytest

import diffuse
from conftest import ROOT

TINY = ROOT / "crates" / "nn" / "tests" / "fixtures" / "sd"


def read_png(path):
    """An 8-bit RGB, non-interlaced PNG as (H, W, 3) uint8 (all the command line writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, colour, interlace) == (8, 2, 0)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride = zlib.decompress(idat), 3 * w
    out = np.zeros((h, stride), dtype=np.int32)
    for y in range(h):
        f, line = raw[y * (stride + 1)], np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1)
        prev = out[y - 1] if y else np.zeros(stride, np.int32)
        row = out[y]
        for x in range(stride):
            a = row[x - 3] if x >= 3 else 0
            b, c = prev[x], (prev[x - 3] if x >= 3 else 0)
            if f == 0:
                p = 0
            elif f == 1:
                p = a
            elif f == 2:
                p = b
            elif f == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            row[x] = (int(line[x]) + p) % 256
    return out.astype(np.uint8).reshape(h, w, 3)


@pytest.mark.parametrize("name", ["tiny-sd1", "tiny-sd2"])
def test_the_same_images_as_the_command_line(cli, tmp_path, name):
    sd = diffuse.load(TINY / name)
    assert isinstance(sd, diffuse.StableDiffusion)
    images = sd("a photo of a cat", steps=3, seed=5, n=2, progress=False)
    assert images.dtype == np.uint8 and images.shape[0] == 2 and images.shape[3] == 3
    subprocess.run(
        [cli, "sample", "--model", str(TINY / name), "--prompt", "a photo of a cat", "--nfe", "3",
         "--seed", "5", "--n", "2", "--out", str(tmp_path)],
        check=True, capture_output=True,
    )
    for i in range(2):
        np.testing.assert_array_equal(images[i], read_png(tmp_path / "images" / f"{i:04}.png"))


def test_bad_requests_are_one_line_errors():
    sd = diffuse.load(TINY / "tiny-sd2")
    with pytest.raises(ValueError) as e:
        sd("a cat", sampler="wobble", progress=False)
    assert "unknown sampler 'wobble'" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ValueError) as e:
        sd("a cat", height=33, progress=False)
    assert "33" in str(e.value)


def test_the_shipped_colour_fashion_model_by_name(cli, tmp_path):
    """The latent model trained here loads by name and draws, at its own defaults (guidance 3,
    20 steps), what `diffuse sample --model colour-fashion` draws."""
    sd = diffuse.load("colour-fashion")
    assert isinstance(sd, diffuse.StableDiffusion)
    images = sd("a red sandal", seed=2, n=2, progress=False)
    assert images.shape == (2, 32, 32, 3)
    subprocess.run(
        [cli, "sample", "--model", "colour-fashion", "--prompt", "a red sandal", "--seed", "2",
         "--n", "2", "--out", str(tmp_path)],
        check=True, capture_output=True,
    )
    for i in range(2):
        np.testing.assert_array_equal(images[i], read_png(tmp_path / "images" / f"{i:04}.png"))
