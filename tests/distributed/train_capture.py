"""train.py's entry point under torchrun, plus a dump of each rank's final weights for the test to compare.

Runs exactly what ``train.py`` runs (``amlvision.training.loop.main``); the only addition is a hook on
``distributed.wrap_model`` that keeps a reference to the rank's model so its state can be saved to
``<dump_dir>/rank<R>.pt`` after training (and the
starting weights to ``rank<R>.initial.pt``). Usage: torchrun ... train_capture.py DUMP_DIR [train.py options]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from amlvision.training import distributed, loop

captured: dict[str, torch.nn.Module] = {}
_wrap = distributed.wrap_model


def _capturing_wrap(model: torch.nn.Module, info: distributed.DistInfo) -> torch.nn.Module:
    captured["model"] = model
    wrapped = _wrap(model, info)  # DDP has now broadcast rank 0's initial weights
    captured["initial"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return wrapped


if __name__ == "__main__":
    dump_dir = Path(sys.argv[1])
    loop.distributed.wrap_model = _capturing_wrap
    code = loop.main(sys.argv[2:])
    rank = int(os.environ.get("RANK", "0"))
    state = {k: v.detach().cpu() for k, v in captured["model"].state_dict().items()}
    torch.save(state, dump_dir / f"rank{rank}.pt")
    torch.save(captured["initial"], dump_dir / f"rank{rank}.initial.pt")
    raise SystemExit(code)
