"""A stand-in for GAN training: N steps of sleep, resumable from a progress file.

Each step is committed atomically to ``params.state`` (outside the declared output),
so when SLURM kills the job at its time limit and Snakemake retries it, the next
attempt continues from the last committed step instead of starting over -- the same
contract as the real checkpointing training. Every start is appended to
``<state>.starts`` so the test can see where each attempt began.
"""

import json
import os
import sys
import time
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821

params = snakemake.params  # noqa: F821
state = Path(params.state)
state.parent.mkdir(parents=True, exist_ok=True)
starts = state.with_name(state.name + ".starts")

step = json.loads(state.read_text())["step"] if state.exists() else 0
job = os.environ.get("SLURM_JOB_ID", "none")
gpus = os.environ.get("CUDA_VISIBLE_DEVICES", os.environ.get("SLURM_JOB_GPUS", "none"))
runtime = snakemake.resources.get("runtime", "none")  # noqa: F821
with starts.open("a") as fh:
    fh.write(f"start_step={step} slurm_job_id={job} gpus={gpus} runtime={runtime}\n")
print(f"job {job}: resuming at step {step}/{params.steps}", file=sys.stderr)

while step < params.steps:
    time.sleep(params.step_seconds)
    step += 1
    tmp = state.with_name(state.name + ".tmp")
    tmp.write_text(json.dumps({"step": step}))
    os.replace(tmp, state)  # atomic commit of the progress
    print(f"step {step}", file=sys.stderr)

out = Path(snakemake.output[0])  # noqa: F821
tmp = out.with_name(out.name + ".tmp")
tmp.write_text(
    f"train_slurm_job_id={job}\ntrain_gpus={gpus}\nsteps={step}\n" + starts.read_text()
)
os.replace(tmp, out)
