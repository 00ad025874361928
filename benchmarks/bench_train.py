"""Blending GAN training throughput: images/s for the paper and demo models.

For each model configuration and device it times, on batches of 64x64 images:

* ``G step``   generator forward + backward + Adam step (L2 + critic term),
* ``D step``   critic step (generator forward without grad, critic on real and fake,
  backward, Adam step, weight clipping),
* ``GAN it``   one steady-state training iteration = ``critic_iters`` (5) D steps +
  1 G step, i.e. 6 batches drawn,

and prints seconds per step and images/s (the generator alone: batch / G step; the
full iteration: 6 * batch / GAN it). Data loading is excluded (random tensors; the
demo generator gets a random half-covered mask). ``--amp`` turns on bfloat16 autocast
on either device, as ``amp: true`` does in training.

Usage::

    python benchmarks/bench_train.py                      # quick: 2 timed steps each
    python benchmarks/bench_train.py --steps 5 --threads 2 --configs demo
    python benchmarks/bench_train.py --device cuda --amp  # on a GPU machine
    python benchmarks/bench_train.py --configs demo --threads 2 --amp --compare-amp
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from gpgan.models import Critic, Generator
from gpgan.train import DEFAULT_CONFIG, DEMO_CONFIG

_ARCH = ("n_bottleneck", "base_width", "mask_input", "skip", "output", "affine_grid")
CONFIGS = {
    "paper": {k: DEFAULT_CONFIG[k] for k in _ARCH},
    "demo": {k: DEMO_CONFIG[k] for k in _ARCH},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(name: str, arch: dict, device: torch.device, *, batch: int, steps: int,
          warmup: int, amp: bool, critic_iters: int = 5) -> dict:
    torch.manual_seed(0)
    G = Generator(64, **arch).to(device).train()
    D = Critic(64, arch["base_width"]).to(device).train()
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    x = torch.rand(batch, 3, 64, 64, device=device) * 2 - 1
    y = torch.rand(batch, 3, 64, 64, device=device) * 2 - 1
    m = (torch.rand(batch, 1, 64, 64, device=device) < 0.5).float()

    def ctx():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)

    def g_step():
        D.requires_grad_(False)
        with ctx():
            fake = G(x, m)
            adv = -D(fake).float().mean()
        loss = 0.999 * nn.functional.mse_loss(fake.float(), y) + 0.001 * adv
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        D.requires_grad_(True)

    def d_step():
        with torch.no_grad():
            for p in D.parameters():
                p.clamp_(-0.01, 0.01)
            with ctx():
                fake = G(x, m)
        with ctx():
            err = D(fake).float().mean() - D(y).float().mean()
        opt_d.zero_grad(set_to_none=True)
        err.backward()
        opt_d.step()

    def timed(fn) -> float:
        for _ in range(warmup):
            fn()
        _sync(device)
        t = time.perf_counter()
        for _ in range(steps):
            fn()
        _sync(device)
        return (time.perf_counter() - t) / steps

    t_g, t_d = timed(g_step), timed(d_step)
    t_it = critic_iters * t_d + t_g
    return {"config": name, "device": str(device), "params_G": sum(p.numel() for p in
                                                                   G.parameters()),
            "G_step_s": t_g, "D_step_s": t_d, "GAN_it_s": t_it,
            "G_img_s": batch / t_g, "GAN_img_s": (critic_iters + 1) * batch / t_it}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="paper,demo",
                    help=f"comma list of {sorted(CONFIGS)} or NBOTTLENECKxBASEWIDTH "
                         "(e.g. 512x32; default: paper,demo)")
    ap.add_argument("--device", default="all", help="cpu, cuda or all (default: all present)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=2, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast (CPU or CUDA)")
    ap.add_argument("--compare-amp", action="store_true",
                    help="time each config without and with autocast, side by side")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = {"cpu": ["cpu"], "cuda": ["cuda"],
               "all": ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])}[args.device]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch "
          f"{args.batch_size}, 64x64, {args.steps} timed step(s)")
    print(f"{'config':7s} {'device':6s} {'amp':5s} {'G params':>11s} {'G step s':>9s} "
          f"{'D step s':>9s} {'GAN it s':>9s} {'G img/s':>8s} {'GAN img/s':>9s}")
    amps = (False, True) if args.compare_amp else (args.amp,)
    for dev in devices:
        for name in args.configs.split(","):
            arch = CONFIGS.get(name) or dict(zip(("n_bottleneck", "base_width"),
                                                 map(int, name.split("x"))))
            for amp in amps:
                r = bench(name, arch, torch.device(dev), batch=args.batch_size,
                          steps=args.steps, warmup=args.warmup, amp=amp)
                print(f"{name:7s} {dev:6s} {str(amp):5s} {r['params_G']:11,d} "
                      f"{r['G_step_s']:9.3f} {r['D_step_s']:9.3f} {r['GAN_it_s']:9.3f} "
                      f"{r['G_img_s']:8.1f} {r['GAN_img_s']:9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
