"""Orbax checkpoints of the train state (sharded arrays) plus host state as JSON.

Layout: WORKDIR/checkpoints/<step>/{state,meta}. `meta` holds everything the host needs for
an exact resume: schedules, data-source position, recordings seen, epoch. Orbax writes into
a temporary directory and renames it when complete, so a run killed mid-save leaves only a
`*.orbax-checkpoint-tmp*` directory, which is reported and ignored; a step directory that
fails to restore (torn copy, missing files) is reported and the previous one is tried.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from lcasr_jax.checkpoints.store import save_model_dir
from lcasr_jax.model.config import ModelConfig
from lcasr_jax.train.config import config_changes

log = logging.getLogger(__name__)


class Checkpointer:
    """Keep-N CheckpointManager over WORKDIR/checkpoints (async optional)."""

    def __init__(self, workdir: str | Path, keep: int = 3, async_save: bool = True):
        self.directory = Path(workdir).absolute() / "checkpoints"
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                               enable_async_checkpointing=async_save)
        self.manager = ocp.CheckpointManager(self.directory, options=options,
                                             item_names=("state", "meta"))

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
        """Save asynchronously. Raises OSError (one line naming the folder) when the disk
        has no room for it, before orbax's writer threads would fail on a full disk."""
        need = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state)) + (1 << 20)
        free = shutil.disk_usage(self.directory).free
        if free < need:
            last = self.manager.latest_step()
            raise OSError(f"{self.directory}: {free:,} bytes free, the checkpoint of step "
                          f"{step} needs about {need:,}: make room, then run the same command "
                          "to resume" + (f" (from step {last})" if last is not None else ""))
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()

    def check_config(self, config: dict[str, Any]) -> None:
        """Raise ValueError if the newest checkpoint was written with another config (fields
        other than `config.RESUMABLE_CHANGES`), naming the fields that differ."""

        steps = sorted(self.manager.all_steps(), reverse=True)
        for step in steps:
            try:
                meta = self.manager.restore(step, args=ocp.args.Composite(
                    meta=ocp.args.JsonRestore()))["meta"]
            except Exception:  # noqa: BLE001,S112 - unreadable: restore_latest reports it
                continue
            changes = config_changes(meta.get("config") or {}, config) if meta.get(
                "config") else []
            if changes:
                more = f" (+{len(changes) - 3} more)" if len(changes) > 3 else ""
                raise ValueError(
                    f"{self.directory / str(step)}: this run's config differs from the "
                    f"checkpoint's: {'; '.join(changes[:3])}{more}. Resume with the same "
                    "config, or start a new run with another --workdir")
            return

    def restore_latest(self, abstract_state: Any, config: dict[str, Any] | None = None
                       ) -> tuple[int, Any, dict[str, Any]] | None:
        """(step, state, meta) of the newest readable checkpoint, or None if there is none.

        Raises ValueError when the newest checkpoint was written with another `config`
        (`check_config`), or when checkpoints exist but none can be restored: training from
        scratch there would mix two runs.

        `abstract_state`: pytree of jax.ShapeDtypeStruct with shardings (restored sharded).
        """
        for tmp in sorted(self.directory.glob("*orbax-checkpoint-tmp*")):
            print(f"checkpoint: skipping incomplete save {tmp} (the run stopped while "
                  "writing it)", flush=True)
        self.manager.reload()
        if config is not None:
            self.check_config(config)
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                restored = self.manager.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
            except Exception as e:  # noqa: BLE001 - any failure means: do not use it
                print(f"checkpoint: skipping {self.directory / str(step)}: torn or partial "
                      f"checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200]})",
                      flush=True)
                continue
            return step, restored["state"], dict(restored["meta"])
        if self.manager.all_steps():  # never silently start over on top of a run
            raise ValueError(f"{self.directory}: no checkpoint could be restored (see above); "
                             "use another --workdir or remove the broken checkpoints")
        return None


def export_model(variables: dict[str, Any], cfg: Any, dest: str | Path, dtype: str = "float32",
                 metadata: dict[str, Any] | None = None) -> Path:
    """Write the trained model as a converted-model dir (`lcasr_jax.load_pretrained(dest)`).

    `dtype='bfloat16'` halves the size of floating-point variables (for shipping).
    """

    def cast(x):
        x = jax.device_get(x)
        return x.astype(jnp.bfloat16) if dtype == "bfloat16" and x.dtype == jnp.float32 else x

    return save_model_dir(dest, ModelConfig.from_dict(dict(cfg.model)),
                          jax.tree.map(cast, variables), original_config=cfg.to_dict(),
                          metadata=metadata, overwrite=True)
