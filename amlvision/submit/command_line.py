"""The train.py command line a run configuration describes, optionally under torchrun."""

from __future__ import annotations

from azureml.core.runconfig import RunConfiguration


class SubmitError(ValueError):
    """The submission cannot be made as asked (wrong target for the run configuration, bad options)."""


def train_command(
    rc: RunConfiguration, train_args: list[str], outputs: str, nproc_per_node: int = 1, python: str = "python"
) -> list[str]:
    """``python train.py <runconfig arguments> <extra arguments> --outputs <run outputs>``.

    With ``nproc_per_node`` > 1 the script runs under ``torchrun --standalone`` (one machine, a free
    rendezvous port), which sets RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT for each process.
    """
    if any(a == "--outputs" or a.startswith("--outputs=") for a in train_args):
        raise SubmitError("do not pass --outputs: a submitted run writes to runs/<run-id>/outputs/")
    if nproc_per_node < 1:
        raise SubmitError(f"--nproc-per-node must be at least 1, not {nproc_per_node}")
    if not rc.script:
        raise SubmitError("the run configuration names no script")
    launcher = (
        [python]
        if nproc_per_node == 1
        else [python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc_per_node}"]
    )
    return [*launcher, rc.script, *map(str, rc.arguments or []), *train_args, "--outputs", outputs]
