"""``amp: auto``: bfloat16 only where the hardware computes it natively and it makes the
model faster, float32 elsewhere; the choice is logged, recorded in the checkpoints and kept
by a resumed run.

The capability checks are stubbed to each answer (an AVX-512 BF16 / AMX CPU, an AVX2-only
CPU, kernels restricted by ``ATEN_CPU_CAPABILITY`` or ``ONEDNN_MAX_CPU_ISA``, CUDA devices
of compute capability 7.0 and 8.0), and the timing probe to each outcome, so every branch
runs on any CPU.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import gpgan.train as T
from gpgan import precision as P
from gpgan.errors import ConfigError
from gpgan.models import load_checkpoint
from gpgan.train import train

from test_train import TINY, assert_same_tensors, state


def _cpu(monkeypatch, *, bf16: bool, amx: bool = False, capability: str = "AVX512",
         isa: str | None = None):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    for var in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(var, raising=False)
    if isa is not None:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)


CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Probe timings go to a folder of the test's own."""
    monkeypatch.setenv("GPGAN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _timings(f32: float, bf16: float, calls: list | None = None):
    def probe(precision):
        if calls is not None:
            calls.append(precision.dtype)
        return {"float32": f32, "bfloat16": bf16}[precision.dtype]
    return probe


@pytest.mark.parametrize("hw, expected", [
    (dict(bf16=True), "bfloat16"),
    (dict(bf16=False, amx=True), "bfloat16"),
    (dict(bf16=False), "float32"),                      # AVX2-only EPYC
    (dict(bf16=True, capability="AVX2"), "float32"),    # ATEN_CPU_CAPABILITY=avx2
    (dict(bf16=True, isa="AVX2"), "float32"),           # ONEDNN_MAX_CPU_ISA=AVX2
    (dict(bf16=True, isa="avx512_core"), "float32"),    # AVX-512 without BF16
    (dict(bf16=True, isa="AVX512_CORE_BF16"), "bfloat16"),
])
def test_auto_on_the_cpu_picks_bf16_only_where_native(monkeypatch, hw, expected):
    _cpu(monkeypatch, **hw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto never warns
        chosen = P.choose_precision("auto", "bfloat16", CPU)
    assert chosen.dtype == expected and chosen.autocast == (expected == "bfloat16")
    assert chosen.reason.startswith("amp: auto; ")
    if expected == "float32":
        assert "emulated" in chosen.reason


def test_amp_true_without_native_bf16_warns_once_and_still_autocasts(monkeypatch):
    _cpu(monkeypatch, bf16=False)
    with pytest.warns(UserWarning, match="emulated and slow") as seen:
        chosen = P.choose_precision(True, "bfloat16", CPU)
    assert len(seen) == 1 and chosen.dtype == "bfloat16"
    with chosen.context("cpu")():
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and \
            torch.is_autocast_enabled("cpu")
    _cpu(monkeypatch, bf16=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert P.choose_precision(True, "bfloat16", CPU).dtype == "bfloat16"
    assert P.choose_precision(False, "bfloat16", CPU).dtype == "float32"
    with pytest.raises(ConfigError, match="bfloat16"):
        P.choose_precision(True, "float16", CPU)
    for bad in ("yes", 1, None):
        with pytest.raises(ConfigError, match="auto, true or false"):
            P.choose_precision(bad, "bfloat16", CPU)


@pytest.mark.parametrize("capability, expected", [((7, 0), "float32"), ((8, 0), "bfloat16"),
                                                  ((9, 0), "bfloat16")])
def test_auto_on_cuda_needs_compute_capability_8(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Simulated GPU")
    # is_bf16_supported() says yes on a V100 too (emulation): it must not be what decides
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    chosen = P.choose_precision("auto", "bfloat16", torch.device("cuda"))
    assert chosen.dtype == expected and "Simulated GPU" in chosen.reason
    if expected == "float32":
        with pytest.warns(UserWarning, match="emulate"):
            assert P.choose_precision(True, "bfloat16", torch.device("cuda")).dtype == \
                "bfloat16"
    assert P.choose_precision(True, "float16", torch.device("cuda")).scaled


def test_recorded_precision_wins_over_auto(monkeypatch):
    _cpu(monkeypatch, bf16=False)
    with pytest.warns(UserWarning, match="resuming in bfloat16"):
        chosen = P.choose_precision("auto", "bfloat16", CPU,
                                    {"dtype": "bfloat16", "reason": "amp: auto; AVX-512 BF16"})
    assert chosen.dtype == "bfloat16" and "recorded when the run started" in chosen.reason
    _cpu(monkeypatch, bf16=True)
    assert P.choose_precision("auto", "bfloat16", CPU, {"dtype": "float32"}).dtype == "float32"
    # an explicit amp is the user's choice, even on a resume
    assert P.choose_precision(False, "bfloat16", CPU, {"dtype": "bfloat16"}).dtype == "float32"


@pytest.fixture(scope="module")
def data():
    from test_train import make_pairs

    torch.set_num_threads(1)
    return make_pairs(24, seed=0), make_pairs(8, seed=1)


@pytest.mark.parametrize("start_native", [True, False])
def test_a_resumed_run_keeps_the_precision_it_started_with(tmp_path, monkeypatch, data,
                                                           capfd, start_native):
    """Started where bf16 is native (or not), resumed on a machine that says the opposite:
    the run goes on in its recorded precision and ends bitwise equal to an uninterrupted
    run in that precision."""
    train_set, val_set = data
    cfg = dict(TINY, iterations=4, amp="auto", mask_input=True, skip=True, output="affine",
               affine_grid=8)
    _cpu(monkeypatch, bf16=start_native)
    monkeypatch.setattr(T, "_probe_seconds", lambda cfg, device, p: _timings(1.0, 0.5)(p))
    ref = train(cfg, train_set, val_set, tmp_path / "ref", progress=False)
    train(dict(cfg, iterations=2), train_set, val_set, tmp_path / "run", progress=True)
    first = capfd.readouterr().err
    want = "bfloat16" if start_native else "float32"
    assert f"in {want}" in first and "amp: auto" in first  # the choice and its reason
    _cpu(monkeypatch, bf16=not start_native)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = train(cfg, train_set, val_set, tmp_path / "run", progress=True)
    resumed = capfd.readouterr().err
    assert "recorded when the run started" in resumed and f"in {want}" in resumed
    assert any("resuming in bfloat16" in str(w.message) for w in seen) == start_native
    assert res["precision"]["dtype"] == want == ref["precision"]["dtype"]
    newest = load_checkpoint(tmp_path / "run" / "state" / "checkpoints" / "iter_0000004.pt")
    assert newest["precision"]["dtype"] == want
    assert_same_tensors(state(ref["final"])["generator"], state(res["final"])["generator"])


def test_a_run_saved_before_precision_was_recorded_resumes_in_its_config_amp(
        tmp_path, monkeypatch, data):
    train_set, val_set = data
    cfg = dict(TINY, iterations=4, amp=True)
    _cpu(monkeypatch, bf16=True)
    ref = train(cfg, train_set, val_set, tmp_path / "ref", progress=False)
    train(dict(cfg, iterations=2), train_set, val_set, tmp_path / "run", progress=False)
    path = tmp_path / "run" / "state" / "checkpoints" / "iter_0000002.pt"
    old = load_checkpoint(path)
    del old["precision"]  # as the checkpoints of earlier versions
    torch.save(old, path)
    _cpu(monkeypatch, bf16=False)  # auto alone would now pick float32
    with pytest.warns(UserWarning, match="resuming in bfloat16"):
        res = train(dict(cfg, amp="auto"), train_set, val_set, tmp_path / "run",
                    progress=False)
    assert res["precision"]["dtype"] == "bfloat16"
    assert_same_tensors(state(ref["final"])["generator"], state(res["final"])["generator"])


@pytest.mark.parametrize("f32, bf16, expected", [(1.0, 0.6, "bfloat16"), (1.0, 0.95, "bfloat16"),
                                                 (1.0, 0.97, "float32"), (0.158, 0.169, "float32")])
def test_where_native_the_probe_decides_with_a_margin(monkeypatch, f32, bf16, expected):
    _cpu(monkeypatch, bf16=True)
    calls = []
    chosen = P.choose_precision("auto", "bfloat16", CPU, probe=_timings(f32, bf16, calls),
                                probe_key="demo")
    assert chosen.dtype == expected and sorted(calls) == ["bfloat16", "float32"]
    assert f"float32 {f32:.3g} s, bfloat16 {bf16:.3g} s (timed now)" in chosen.reason


def test_no_probe_where_bf16_is_emulated_and_timings_are_reused(monkeypatch, cache):
    _cpu(monkeypatch, bf16=False)
    calls = []
    assert P.choose_precision("auto", "bfloat16", CPU, probe=_timings(1, 0.1, calls),
                              probe_key="demo").dtype == "float32"
    assert calls == []  # an emulated bfloat16 step is never paid for
    _cpu(monkeypatch, bf16=True)
    first = P.choose_precision("auto", "bfloat16", CPU, probe=_timings(1, 0.5, calls),
                               probe_key="demo")
    # the same machine and model later, under load that would now time it otherwise
    again = P.choose_precision("auto", "bfloat16", CPU, probe=_timings(1, 2.0, calls),
                               probe_key="demo")
    assert first.dtype == again.dtype == "bfloat16" and len(calls) == 2
    assert "timed earlier on this machine" in again.reason
    assert (cache / "precision.json").is_file()
    # another model, or the same model on other threads, is timed afresh
    P.choose_precision("auto", "bfloat16", CPU, probe=_timings(1, 2.0, calls),
                       probe_key="paper")
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        P.choose_precision("auto", "bfloat16", CPU, probe=_timings(1, 2.0, calls),
                           probe_key="demo")
    finally:
        torch.set_num_threads(threads)
    assert len(calls) == 6
    (cache / "precision.json").write_text("{not json")  # a damaged cache is ignored
    assert P.choose_precision("auto", "bfloat16", CPU, probe=_timings(1, 0.5),
                              probe_key="demo").dtype == "bfloat16"


@pytest.mark.parametrize("model", ["blending", "unsupervised"])
def test_the_trainers_probe_times_its_own_model_and_leaves_the_rngs_alone(model):
    import random

    import numpy as np

    tiny = {k: v for k, v in TINY.items() if model == "blending" or k != "n_bottleneck"}
    cfg = T.resolve_config(dict(tiny, model=model, **({"nz": 8} if model == "unsupervised"
                                                      else {})))
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    seconds = T._probe_seconds(cfg, CPU, P.Precision("float32", "test"), timed=1)
    assert seconds > 0
    assert torch.equal(torch.get_rng_state(), before[0])
    assert np.array_equal(np.random.get_state()[1], before[1]) and random.getstate() == before[2]
