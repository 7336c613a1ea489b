"""Job scripts for PBS and SLURM clusters: training (torchrun), sweeps and prediction arrays.

The scripts only call beadseg; the cluster's scheduler does the scheduling. A job array of N
prediction workers uses ``beadseg predict --shard i/N`` (no coordination needed) and
``beadseg merge`` joins the shards; a sweep runs many workers on one Optuna storage.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, fields, replace

from ..core.errors import InputError


@dataclass(frozen=True)
class JobSpec:
    """What a job needs; rendered by :func:`render_job` (the ``beadseg hpc`` defaults).

    Attributes
    ----------
    scheduler : ``slurm`` or ``pbs``.
    job : ``train`` (torchrun over ``gpus`` x ``nodes`` processes), ``predict`` (a job array of
        ``array`` shards, 1 when not given) or ``sweep`` (``array`` workers of one study).
    config : the training config (train) or the search-space file (sweep).
    trials : sweep: finished trials wanted in the shared study; each worker keeps taking new
        trials until the study has that many (see :func:`beadseg.workflows.hyperparameter_search.sweep`).
    """

    scheduler: str = "slurm"
    job: str = "train"
    config: str = "config.yaml"
    name: str = "beadseg"
    gpus: int = 1
    nodes: int = 1
    cpus: int = 8
    mem_gb: int = 32
    hours: float = 4.0
    array: int | None = None
    queue: str | None = None
    account: str | None = None
    venv: str | None = None
    modules: tuple[str, ...] = ()
    out_dir: str = "runs"
    inputs: str = "frames/"
    model: str = "default"
    storage: str | None = None
    trials: int = 10


def _walltime(hours: float) -> str:
    total = int(round(hours * 3600))
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def _header(s: JobSpec) -> list[str]:
    if s.scheduler == "slurm":
        lines = [
            f"#SBATCH --job-name={s.name}",
            f"#SBATCH --nodes={s.nodes}",
            "#SBATCH --ntasks-per-node=1",
            f"#SBATCH --cpus-per-task={s.cpus}",
            f"#SBATCH --mem={s.mem_gb}G",
            f"#SBATCH --time={_walltime(s.hours)}",
            f"#SBATCH --output={s.out_dir}/logs/%x-%A_%a.out",
        ]
        if s.gpus:
            lines.append(f"#SBATCH --gpus-per-node={s.gpus}")
        if s.array:
            lines.append(f"#SBATCH --array=0-{s.array - 1}")
        if s.queue:
            lines.append(f"#SBATCH --partition={s.queue}")
        if s.account:
            lines.append(f"#SBATCH --account={s.account}")
        return lines
    select = f"select={s.nodes}:ncpus={s.cpus}:mem={s.mem_gb}gb" + (f":ngpus={s.gpus}" if s.gpus else "")
    lines = [
        f"#PBS -N {s.name}",
        f"#PBS -l {select}",
        f"#PBS -l walltime={_walltime(s.hours)}",
        "#PBS -j oe",
        f"#PBS -o {s.out_dir}/logs/",
    ]
    if s.array:
        lines.append(f"#PBS -J 0-{s.array - 1}")
    if s.queue:
        lines.append(f"#PBS -q {s.queue}")
    if s.account:
        lines.append(f"#PBS -P {s.account}")
    return lines


#: what a value written into a ``#SBATCH`` / ``#PBS`` line may hold: those lines are read by the
#: scheduler, not by bash, so quoting cannot protect them
_HEADER_VALUE = re.compile(r"^[A-Za-z0-9_.:@+/%-]+$")
_OPTION = {"name": "--name", "queue": "--queue", "account": "--account", "out_dir": "--out-dir"}


def check_spec(s: JobSpec) -> None:
    """Refuse values that would change the script's meaning: control characters (a newline
    starts a new command) anywhere, and anything but a plain token in the scheduler's header
    lines (the queue, the account, the job name and the log folder under ``out_dir``).

    Raises
    ------
    InputError
        Naming the option and the value.
    """
    for f in fields(s):
        values = getattr(s, f.name)
        for v in values if isinstance(values, tuple) else (values,):
            if isinstance(v, str) and any(ord(ch) < 32 or ord(ch) == 127 for ch in v):
                flag = "--" + f.name.replace("_", "-").removesuffix("s")
                raise InputError(f"{flag} {v!r} holds a control character (a newline?); give one line")
    for name, flag in _OPTION.items():
        v = getattr(s, name)
        if v is not None and not _HEADER_VALUE.match(v):
            raise InputError(
                f"{flag} {v!r} cannot go into a #SBATCH/#PBS line (spaces, quotes or shell "
                "characters); use letters, digits and _ . - / only"
            )


def render_job(s: JobSpec) -> str:
    """The job script as text (bash)."""
    if s.scheduler not in ("slurm", "pbs"):
        raise InputError(f"scheduler {s.scheduler!r} is not slurm or pbs")
    if s.job not in ("train", "predict", "sweep"):
        raise InputError(f"job {s.job!r} is not train, predict or sweep")
    check_spec(s)
    if s.job == "predict" and not s.array:
        s = replace(s, array=1)  # a copy: the caller's spec stays as given
    q = shlex.quote
    lines = ["#!/usr/bin/env bash", *_header(s), "set -euo pipefail"]
    if s.scheduler == "pbs":
        lines.append('cd "${PBS_O_WORKDIR:-.}"')
    lines.append(f"mkdir -p {q(s.out_dir)}/logs")
    lines += [f"module load {q(m)}" for m in s.modules]
    if s.venv:
        lines.append(f"source {q(s.venv)}/bin/activate")
    idx = "${SLURM_ARRAY_TASK_ID:-0}" if s.scheduler == "slurm" else "${PBS_ARRAY_INDEX:-0}"
    if s.job == "train":
        train = f"-m beadseg train --config {q(s.config)} --out {q(s.out_dir)}/train --quiet"
        nproc = max(s.gpus, 1)
        rdzv = "--rdzv-backend=c10d --rdzv-endpoint=$MASTER_ADDR:$MASTER_PORT"
        if s.nodes > 1 and s.scheduler == "slurm":
            lines += [
                'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
                "export MASTER_ADDR MASTER_PORT=29500",
                f"srun torchrun --nnodes={s.nodes} --nproc-per-node={nproc} {rdzv} "
                f"--rdzv-id=$SLURM_JOB_ID {train}",
            ]
        elif s.nodes > 1:
            # pbsdsh starts one shell per node; it inherits nothing, so set the environment there
            setup = " && ".join(
                [f"module load {q(m)}" for m in s.modules]
                + ([f"source {q(s.venv)}/bin/activate"] if s.venv else [])
            )
            lines += [
                'MASTER_ADDR=$(head -n 1 "$PBS_NODEFILE")',
                "export MASTER_ADDR MASTER_PORT=29500",
                f'pbsdsh -u bash -lc "cd $PBS_O_WORKDIR && {setup + " && " if setup else ""}'
                f"torchrun --nnodes={s.nodes} --nproc-per-node={nproc} "
                f"--rdzv-backend=c10d --rdzv-endpoint=$MASTER_ADDR:$MASTER_PORT "
                f'--rdzv-id=$PBS_JOBID {train}"',
            ]
        else:
            lines.append(f"torchrun --standalone --nproc-per-node={nproc} {train}")
    elif s.job == "predict":
        lines += [
            f"beadseg predict {q(s.model)} {q(s.inputs)} --out {q(s.out_dir)}/shard-{idx} "
            f"--shard {idx}/{s.array} --quiet",
            f"# after the array: beadseg merge {q(s.out_dir)}/shard-* --out {q(s.out_dir)}/merged",
        ]
    else:
        storage = s.storage or f"sqlite:///{s.out_dir}/study.db"
        lines.append(
            f"beadseg sweep {q(s.config)} --trials {s.trials} --storage {q(storage)} "
            f"--out {q(s.out_dir)}/sweep-{idx}"
        )
        lines.append("# every array task is one worker of the same study (shared storage)")
    return "\n".join(lines) + "\n"
