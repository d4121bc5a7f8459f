"""Progress callbacks, Ctrl-C, and the GIL released during long calls."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import diffuse


def test_progress_reports_each_batch_up_to_the_total():
    seen = []
    m = diffuse.Mixture.deltas([-1.0, 1.0])
    diffuse.sample(m, nfe=5, n=100, batch=30, progress=lambda *a: seen.append(a))
    assert [s[0] for s in seen] == ["sample"] * 4
    assert [s[1] for s in seen] == [30, 60, 90, 100] and all(s[2] == 100 for s in seen)


def test_an_exception_in_the_callback_stops_the_run_and_propagates():
    def fail(what, done, total):
        raise RuntimeError(f"stop at {done}")

    with pytest.raises(RuntimeError, match="stop at 10"):
        diffuse.sample(diffuse.Mixture.deltas([0.0]), nfe=5, n=100, batch=10, progress=fail)
    with pytest.raises(KeyboardInterrupt):
        diffuse.langevin(chains=10, steps=100, progress=lambda *a: signal.raise_signal(signal.SIGINT))


def interrupt_after(seconds):
    t = threading.Timer(seconds, lambda: os.kill(os.getpid(), signal.SIGINT))
    t.start()
    return t


def test_ctrl_c_stops_a_long_native_run():
    m = diffuse.Mixture.data("moons", reference=2000)
    start = time.monotonic()
    interrupt_after(0.5)
    with pytest.raises(KeyboardInterrupt):
        # Minutes of work in batches of 100: Ctrl-C is heard within a sampler step.
        diffuse.sample(m, sampler="heun", nfe=200, n=1_000_000, batch=100, progress=False)
    assert time.monotonic() - start < 20


def test_ctrl_c_stops_training_and_keeps_the_last_checkpoint(tmp_path):
    out = tmp_path / "m"
    interrupt_after(3.0)
    with pytest.raises(KeyboardInterrupt):
        diffuse.train("spiral", out, steps=10_000_000, hidden=8, depth=1, save_every=20, progress=False)
    model = diffuse.Model.load(out)
    trained = model.record["trained_steps"]
    assert trained > 0 and trained % 20 == 0
    assert model.sample(10, progress=False).shape == (10, 2)


def test_the_gil_is_released_during_a_run():
    m = diffuse.Mixture.data("moons", reference=2000)
    done = threading.Event()
    ticks = []

    def count():
        while not done.is_set():
            ticks.append(1)
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    start = time.monotonic()
    diffuse.sample(m, sampler="heun", nfe=50, n=20_000, progress=False)
    elapsed = time.monotonic() - start
    done.set()
    t.join()
    # A thread that could not run would tick once; here it ticks through the run.
    assert elapsed < 0.05 or len(ticks) > 10, (elapsed, len(ticks))
    assert np.isfinite(elapsed)


def test_a_tqdm_bar_by_default_when_tqdm_is_installed(capsys):
    pytest.importorskip("tqdm")
    diffuse.sample(diffuse.Mixture.deltas([0.0, 1.0]), nfe=5, n=100, batch=10)
    err = capsys.readouterr().err
    assert "sample:" in err and "/100" in err
    diffuse.sample(diffuse.Mixture.deltas([0.0, 1.0]), nfe=5, n=100, batch=10, progress=False)
    assert capsys.readouterr().err == ""
