"""TFDS dataset builder over a folder of recordings (ArrayRecord files; no TensorFlow needed).

One example per recording; features are precomputed at build time and stored as float16,
exactly as the original trained (its preprocess step saved float16 spectrograms): loading is
then pure I/O (the 2-core host cannot afford 1.5 s of CPU per hour of audio per epoch), and
chunking at any sequence length happens at read time. float16 keeps 57.6 MB per hour
(about the size of the FLAC audio).

Example fields:
  id            Text        recording id
  features      (frames, 80) float16   standardised mel features (time-major)
  num_frames    int32
  word_start    (words,) float64  seconds      word_end (words,) float64 seconds
  token_offsets (words + 1,) int64  token_ids[token_offsets[i]:token_offsets[i+1]] = word i
  token_ids     (tokens,) int32     sentencepiece ids (tokenizer.model shipped in assets/)
  text          Text        the words joined by spaces

Splits: sub-folders of the source named like a split (train, dev, test, validation, ...)
that hold recordings; otherwise every recording goes into `train`.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import multiprocessing as mp
import os
import shutil
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from lcasr_jax.data.alignments import find_recordings
from lcasr_jax.data.examples import encode_recording
from lcasr_jax.files import partial_dir, recover_swap, swap_in

NAME = "lcasr_recordings"
SPLIT_NAMES = ("train", "dev", "test", "validation", "valid", "eval")


def source_splits(source_dir: str | Path) -> dict[str, list[Path]]:
    source_dir = Path(source_dir)
    splits = {d.name: find_recordings(d) for d in sorted(source_dir.iterdir())
              if d.is_dir() and d.name.lower() in SPLIT_NAMES}
    splits = {k: v for k, v in splits.items() if v}
    if not splits:
        splits = {"train": find_recordings(source_dir)}
    if not any(splits.values()):
        raise ValueError(f"{source_dir}: no recording JSONs found")
    return splits


class LcasrRecordings(tfds.core.GeneratorBasedBuilder):
    """Word-aligned long-form recordings with precomputed float16 features."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Recording format lcasr-recording/1."}

    def __init__(self, *, source_dir: str | Path | None = None, workers: int = 1,
                 resampler: str = "soxr", **kwargs):
        self._source_dir = None if source_dir is None else Path(source_dir)
        self._workers = max(1, int(workers))
        self._resampler = resampler
        kwargs.setdefault("file_format", "array_record")
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        f = tfds.features
        raw = f.Encoding.BYTES  # exact bytes: the default encoding stores float64 as float32
        return self.dataset_info_from_configs(
            description=__doc__,
            features=f.FeaturesDict({
                "id": f.Text(),
                "features": f.Tensor(shape=(None, 80), dtype=np.float16, encoding=raw),
                "num_frames": f.Scalar(dtype=np.int32),
                "word_start": f.Tensor(shape=(None,), dtype=np.float64, encoding=raw),
                "word_end": f.Tensor(shape=(None,), dtype=np.float64, encoding=raw),
                "token_offsets": f.Tensor(shape=(None,), dtype=np.int64, encoding=raw),
                "token_ids": f.Tensor(shape=(None,), dtype=np.int32, encoding=raw),
                "text": f.Text(),
            }),
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        if self._source_dir is None:
            raise ValueError("LcasrRecordings: building needs source_dir=")
        return {name: self._generate_examples(paths)
                for name, paths in source_splits(self._source_dir).items()}

    def _generate_examples(self, paths: list[Path]):
        seen: dict[str, Path] = {}
        # spawn, not fork: the parent may run JAX threads, which fork would deadlock
        pool = cf.ProcessPoolExecutor(self._workers, mp_context=mp.get_context("spawn")) if (
            self._workers > 1) else None
        try:
            encode = functools.partial(encode_recording, resampler=self._resampler)
            results = pool.map(encode, paths) if pool else map(encode, paths)
            for path, ex in zip(paths, results, strict=True):
                if ex["id"] in seen:
                    raise ValueError(f"{path}: duplicate recording id {ex['id']!r} "
                                     f"(also {seen[ex['id']]})")
                seen[ex["id"]] = path
                yield ex["id"], ex
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)


@contextlib.contextmanager
def _array_record_options(options: str):
    """Temporarily make tfds write ArrayRecord files with `options` (tfds hard-codes
    'group_size:1', i.e. zstd). Readers detect the options from the file itself."""
    from array_record.python import array_record_module
    from tensorflow_datasets.core import file_adapters as fa

    base = fa.ADAPTER_FOR_FORMAT[fa.FileFormat.ARRAY_RECORD]

    class Adapter(base):
        @classmethod
        def write_examples(cls, path, iterator):
            writer = array_record_module.ArrayRecordWriter(os.fspath(path), options)
            for _, serialized in iterator:
                writer.write(serialized)
            writer.close()

    fa.ADAPTER_FOR_FORMAT[fa.FileFormat.ARRAY_RECORD] = Adapter
    try:
        yield
    finally:
        fa.ADAPTER_FOR_FORMAT[fa.FileFormat.ARRAY_RECORD] = base


def build(source_dir: str | Path, data_dir: str | Path, workers: int = 1,
          compressed: bool = False, resampler: str = "soxr") -> Path:
    """Build the dataset from a folder of recordings. Returns the versioned dataset folder.

    Records are written uncompressed by default: float16 features hardly compress (~10 %)
    and zstd decoding made reading ~5x slower (the loader's bottleneck on a 2-core host).
    """
    builder = LcasrRecordings(source_dir=source_dir, data_dir=str(data_dir), workers=workers,
                              resampler=resampler)
    options = "group_size:1" if compressed else "group_size:1,uncompressed"
    config = tfds.download.DownloadConfig(compute_stats=tfds.download.ComputeStatsMode.SKIP)
    with _array_record_options(options):
        builder.download_and_prepare(download_config=config)
    return Path(builder.data_dir)


def _dataset_complete(folder: Path) -> bool:
    """Whether `folder` is a finished dataset (VERSION/dataset_info.json), not the TFDS
    data_dir that `build_dataset` builds in (lcasr_recordings/VERSION/...)."""
    return any(folder.glob("*/dataset_info.json"))


def build_dataset(source_dir: str | Path, data_dir: str | Path, *, overwrite: bool = False,
                  workers: int = 1, resampler: str = "soxr") -> Path:
    """`build` into DATA_DIR/lcasr_recordings through a temporary folder beside it, then
    swapped in (`files.swap_in`): a failed build leaves any previous dataset untouched, a
    stale one is never reused, and a swap a killed run left half-done is repaired first.
    Returns the versioned dataset folder."""
    out = (Path(data_dir) / "lcasr_recordings").absolute()
    recover_swap(out, _dataset_complete)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: dataset already exists (use --overwrite to rebuild)")
    tmp = partial_dir(out)  # a TFDS data_dir: the build lands in tmp/lcasr_recordings/VERSION
    ready = out.with_name(f"{tmp.name}-ready")  # the finished dataset, beside `out`
    try:
        built = build(source_dir, tmp, workers=workers, resampler=resampler)
        (tmp / "lcasr_recordings").rename(ready)
        swap_in(ready, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(ready, ignore_errors=True)
    return out / built.relative_to(tmp / "lcasr_recordings")
