"""Checkpoint names -> local paths: a file, a folder, or `hf://OWNER/REPO[/PATH][@REVISION]`.

A folder that is not a converted model dir must hold one checkpoint, chosen as the
original's `bin/load_pretrained.py` chooses it: `step_N.pt`, else `step_N_repeat_1.pt`
(name the file, e.g. `.../step_N_repeat_2.pt`, for another repeat). Anything else is
ambiguous: a one-line error listing the candidates.

Hub names are resolved with huggingface_hub (its cache, HF_HOME / HF_HUB_CACHE, HF_TOKEN or a
stored login, revisions; HF_HUB_OFFLINE=1 uses the cache only). Only the chosen file is
downloaded. The released models: `rjflynn2/<model>` with one folder per context length and
repeat, e.g. `hf://rjflynn2/lcasr-6L-768D-6H-RB-1p5M/n_seq_sched_1024_rp_1`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from lcasr_jax.checkpoints import integrity, store

HF_PREFIX = "hf://"
_STEP = re.compile(r"step_(\d+)(?:_repeat_(\d+))?\.pt")
_FILE_SUFFIXES = (".pt", ".pth")  # a hub PATH ending so is a file, anything else is listed


@dataclasses.dataclass(frozen=True)
class HubName:
    repo_id: str  # OWNER/REPO
    path: str  # file or folder in the repository; "" = its root
    revision: str | None  # branch, tag or commit; None = main

    def __str__(self) -> str:
        path = f"/{self.path}" if self.path else ""
        rev = f"@{self.revision}" if self.revision else ""
        return f"{HF_PREFIX}{self.repo_id}{path}{rev}"


def is_hub_name(name: str | os.PathLike) -> bool:
    return str(name).startswith(HF_PREFIX)


def parse_hub_name(name: str) -> HubName:
    """`hf://OWNER/REPO[/PATH][@REVISION]` -> HubName; ValueError naming the problem."""
    if not is_hub_name(name):
        raise ValueError(f"{name}: not a hub name (hf://OWNER/REPO[/PATH][@REVISION])")
    body, at, revision = name[len(HF_PREFIX):].partition("@")
    parts = [p for p in body.split("/") if p]
    if len(parts) < 2 or (at and not revision) or any(p in (".", "..") for p in parts):
        raise ValueError(f"{name}: expected hf://OWNER/REPO[/PATH][@REVISION]")
    return HubName(f"{parts[0]}/{parts[1]}", "/".join(parts[2:]), revision or None)


def choose_checkpoint(folder: str | os.PathLike, names: Iterable[str],
                      folders: Iterable[str] = ()) -> str:
    """The checkpoint file the original's loader takes among a folder's file `names`;
    with none, the error lists its sub`folders` (a repository root's n_seq_sched_* ...)."""
    pts = sorted(n for n in names if n.endswith(".pt"))
    if len(pts) == 1:
        return pts[0]
    if not pts:
        subs = sorted(f for f in folders if not f.startswith("."))
        if subs:
            raise FileNotFoundError(f"{folder}: no checkpoint (.pt) here; name one of its "
                                    f"folders: {', '.join(subs)}")
        raise FileNotFoundError(f"{folder}: no checkpoint (.pt) in this folder")
    steps = {m.group(1) for m in map(_STEP.fullmatch, pts) if m}
    if len(steps) == 1 and all(_STEP.fullmatch(n) for n in pts):
        (step,) = steps
        for name in (f"step_{step}.pt", f"step_{step}_repeat_1.pt"):
            if name in pts:
                return name
    raise ValueError(f"{folder}: {len(pts)} checkpoints, name one: {', '.join(pts)}")


def _local(path: Path, shown: str) -> Path:
    """A local file, converted model dir, or folder holding one checkpoint -> its path
    (an interrupted `--overwrite` of it is repaired first: `integrity.recover`)."""
    integrity.recover(path)
    if not path.exists():
        hint = ""
        if shown.startswith("hf:") and not is_hub_name(shown):  # hf:/x, hf:x
            hint = " (a hub name is hf://OWNER/REPO[/PATH][@REVISION], with two slashes)"
        raise FileNotFoundError(f"{shown}: checkpoint not found{hint}")
    if path.is_dir() and not store.is_model_dir(path):
        names = [p.name for p in path.iterdir() if p.is_file()]
        half = [n for n in (store.CONFIG_FILE, store.VARIABLES_DIR) if (path / n).exists()]
        if half and not any(n.endswith(".pt") for n in names):  # a damaged model dir
            missing = store.VARIABLES_DIR + "/" if half == [store.CONFIG_FILE] else \
                store.CONFIG_FILE
            raise FileNotFoundError(f"{shown}: not a complete converted model dir: {missing} "
                                    f"is missing (a model dir holds {store.CONFIG_FILE} and "
                                    f"{store.VARIABLES_DIR}/)")
        folders = [p.name for p in path.iterdir() if p.is_dir()]
        return path / choose_checkpoint(shown, names, folders)
    return path


def resolve_checkpoint(name: str | os.PathLike, offline: bool = False) -> Path:
    """A checkpoint name -> a local released .pt or converted model dir (downloaded into the
    Hugging Face cache for hub names; `offline`: the cache only, as HF_HUB_OFFLINE=1, with
    no network call). Errors are one line naming `name`."""
    if not is_hub_name(name):
        return _local(Path(name), str(name))
    return _resolve_hub(parse_hub_name(str(name)), offline)


def hub_offline(timeout_s: float = 5.0) -> bool:
    """Whether the hub is to be treated as offline: HF_HUB_OFFLINE is set, or one request to
    its endpoint fails within `timeout_s` (one probe, instead of each download's retries)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return True
    try:
        urllib.request.urlopen(urllib.request.Request(constants.ENDPOINT, method="HEAD"),
                               timeout=timeout_s).close()
    except OSError as e:  # URLError, timeouts; an HTTP error status still means reachable
        return not isinstance(e, urllib.error.HTTPError)
    return False


def _resolve_hub(ref: HubName, offline: bool = False) -> Path:
    try:
        import huggingface_hub as hf
        from huggingface_hub import constants, errors
        from huggingface_hub.hf_api import RepoFile
    except ImportError:
        raise ImportError(f"{ref}: hub names need huggingface_hub "
                          "(pip install huggingface_hub)") from None
    shown = str(ref)
    try:
        if offline or constants.HF_HUB_OFFLINE:
            return _from_cache(hf, ref, shown)
        if ref.path.endswith(_FILE_SUFFIXES):  # huggingface_hub falls back to its cache
            return Path(hf.hf_hub_download(ref.repo_id, ref.path, revision=ref.revision))
        try:
            entries = list(hf.HfApi().list_repo_tree(ref.repo_id, path_in_repo=ref.path or None,
                                                      revision=ref.revision))
        except (errors.RepositoryNotFoundError, errors.RevisionNotFoundError):
            raise
        except errors.EntryNotFoundError:  # not a folder: a file, or nothing (an error)
            entries = None
        except Exception:  # no connection or hub down: the cache, as huggingface_hub does
            return _from_cache(hf, ref, shown)
        if entries is None or (len(entries) == 1 and entries[0].path == ref.path
                               and isinstance(entries[0], RepoFile)):
            return Path(hf.hf_hub_download(ref.repo_id, ref.path, revision=ref.revision))
        names = {e.path.rsplit("/", 1)[-1]: e for e in entries}
        if store.CONFIG_FILE in names and store.VARIABLES_DIR in names:  # converted model
            root = hf.snapshot_download(ref.repo_id, revision=ref.revision,
                                        allow_patterns=[f"{ref.path}/**" if ref.path else "**"])
            return Path(root) / ref.path
        files = [n for n, e in names.items() if isinstance(e, RepoFile)]
        chosen = choose_checkpoint(shown, files, [n for n in names if n not in files])
        return Path(hf.hf_hub_download(ref.repo_id, f"{ref.path}/{chosen}".lstrip("/"),
                                       revision=ref.revision))
    except errors.RepositoryNotFoundError:
        raise FileNotFoundError(f"{shown}: no repository {ref.repo_id} on the Hugging Face hub "
                                "(private or gated: log in or set HF_TOKEN)") from None
    except errors.RevisionNotFoundError:
        raise FileNotFoundError(f"{shown}: {ref.repo_id} has no revision "
                                f"{ref.revision!r}") from None
    except errors.LocalEntryNotFoundError:
        raise FileNotFoundError(f"{shown}: not in the Hugging Face cache "
                                f"({constants.HF_HUB_CACHE}) and the hub cannot be reached") \
            from None
    except errors.EntryNotFoundError:
        raise FileNotFoundError(f"{shown}: {ref.repo_id} has no {ref.path!r}") from None


def _from_cache(hf, ref: HubName, shown: str) -> Path:
    """`ref` in the cached snapshot of its revision (HF_HUB_OFFLINE or no connection), found
    with huggingface_hub's own cache scan."""
    cache = hf.constants.HF_HUB_CACHE
    offline = (f"{shown}: not in the Hugging Face cache ({cache}) and the hub is offline "
               "(HF_HUB_OFFLINE or no connection): download it once online")
    try:
        repos = hf.scan_cache_dir(cache).repos
    except hf.CacheNotFound:
        raise FileNotFoundError(offline) from None
    wanted = ref.revision or "main"
    cached = [rev for repo in repos if repo.repo_id == ref.repo_id and repo.repo_type == "model"
              for rev in repo.revisions]
    snapshots = [rev.snapshot_path for rev in cached
                 if wanted in rev.refs or rev.commit_hash == wanted]
    if cached and not snapshots:
        known = sorted({r for rev in cached for r in rev.refs} | {rev.commit_hash[:12]
                                                                  for rev in cached})
        raise FileNotFoundError(f"{shown}: revision {wanted!r} of {ref.repo_id} is not in the "
                                f"Hugging Face cache ({cache}; cached: {', '.join(known)}) "
                                "and the hub is offline (HF_HUB_OFFLINE or no connection)")
    path = snapshots[0] / ref.path if snapshots else None
    if path is None or not path.exists():
        raise FileNotFoundError(offline)
    return _local(path, shown)
