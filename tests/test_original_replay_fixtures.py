"""The original's training replay (tests/fixtures/original_replay) is whole and self-consistent,
and scripts/original_replay/make_corpus.py regenerates the corpus it was made from.

Needs neither the original's checkout nor a network: only the committed dump and the corpus
generator. The step-by-step comparison of this project's trainer against the dump lives with
the trainer's tests; here the dump itself is checked.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "original_replay"
sys.path.insert(0, str(ROOT / "scripts" / "original_replay"))

import make_corpus  # noqa: E402


@pytest.fixture(scope="module")
def dump() -> dict:
    meta = json.loads((FIX / "meta.json").read_text())
    return {
        "meta": meta, "steps": dict(np.load(FIX / "steps.npz")),
        "rows": dict(np.load(FIX / "rows.npz")),
        "batches": json.loads((FIX / "batches.json").read_text()),
        "norms": dict(np.load(FIX / "norms.npz")),
        "corpus": {r.rec_id: r for r in make_corpus.recordings(**meta["corpus"])},
    }


def test_dump_covers_what_the_issue_asks(dump):
    meta, steps = dump["meta"], dump["steps"]
    assert meta["original_commit"] == "88da2264926fb2104449be047096eb1e7f169735"
    assert meta["dtype"] == "float32" and meta["n_steps"] == len(steps["step"]) >= 100
    assert list(steps["step"]) == list(range(1, meta["n_steps"] + 1))
    switch = meta["warmup_to_cosine_step"]  # the warm-up -> cosine switch happens mid-run
    assert 10 < switch < meta["n_steps"] - 10
    assert steps["warmup"][: switch - 1].all() and not steps["warmup"][switch - 1:].any()
    assert len(meta["seq_len_stages"]) >= 2  # a sequence-length doubling (and batch halving)
    assert sorted(set(steps["seq_len"] * steps["batch_size"])) == [512]
    assert meta["skipped_steps"] and meta["skipped_chunks"]  # an infeasible row, an empty chunk
    assert set(steps["epoch"]) == {0, 1}


def test_losses_follow_from_the_recorded_rows(dump):
    steps, rows = dump["steps"], dump["rows"]
    finite = np.isfinite(steps["ctc_sum"])
    assert list(np.flatnonzero(~finite) + 1) == dump["meta"]["skipped_steps"]
    assert (steps["skipped"] == ~finite).all()  # GradScaler skipped exactly the inf steps
    assert not np.isfinite(steps["grad_norm"][~finite]).any()
    per_step = np.bincount(rows["step"] - 1, minlength=len(steps["step"]))
    assert (per_step == steps["rows"]).all()
    assert (per_step <= steps["batch_size"]).all() and (per_step < steps["batch_size"]).any()
    summed = np.bincount(rows["step"] - 1, weights=rows["row_ctc"])
    np.testing.assert_allclose(summed[finite], steps["ctc_sum"][finite], rtol=1e-5)
    frames = np.bincount(rows["step"] - 1, weights=rows["audio_length"])
    assert (frames == steps["frames_in_loss"]).all()
    np.testing.assert_allclose(steps["logged_loss"][finite], (steps["ctc_sum"] / frames * 100)[
        finite], rtol=1e-6)
    np.testing.assert_allclose(
        steps["backprop_loss"][finite],
        (steps["ctc_sum"] / (steps["seq_len"] * steps["batch_size"]) * 100)[finite], rtol=1e-6)
    assert (rows["out_length"] == -(-rows["audio_length"] // 8)).all()


def test_skipped_steps_leave_parameters_but_not_batch_statistics(dump):
    names, norms, init = dump["norms"]["names"], dump["norms"]["norms"], dump["norms"]["init"]
    state = [("running" in n or "num_batches" in n) for n in names]
    stats, params = np.array(state), ~np.array(state)
    for s in dump["meta"]["skipped_steps"]:
        before = norms[s - 2] if s > 1 else init
        assert (norms[s - 1][params] == before[params]).all()
        assert (norms[s - 1][stats] != before[stats]).any()
    moved = np.flatnonzero((norms[1:] != norms[:-1])[:, params].any(axis=1)) + 2
    assert set(range(3, len(norms) + 1)) - set(moved) == set(dump["meta"]["skipped_steps"])


def test_snapshots_match_the_norms(dump):
    snaps = np.load(FIX / "snapshots.npz")
    names, norms = list(dump["norms"]["names"]), dump["norms"]["norms"]
    steps = dump["meta"]["snapshot_steps"]
    assert dump["meta"]["last_step"] in steps and 1 in steps
    for s in steps:
        for i, n in enumerate(names):
            got = np.linalg.norm(snaps[f"step{s}/{n}"].astype(np.float64).ravel())
            np.testing.assert_allclose(got, norms[s - 1][i], rtol=1e-6, err_msg=f"{s} {n}")


def test_corpus_regenerates_the_recorded_batches(dump):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(
        model_file=str(ROOT / "lcasr_jax" / "assets" / "tokenizer.model"))
    rows, steps, corpus = dump["rows"], dump["steps"], dump["corpus"]
    for b in dump["batches"]:
        assert b["lengths"] == [corpus[i].frames for i in b["ids"]]
    ms_per_frame = 1000 // make_corpus.FRAMES_PER_S
    for i in range(len(rows["step"])):
        rec = corpus[str(rows["rec_id"][i])]
        start, size = int(rows["chunk_start"][i]), int(steps["seq_len"][rows["step"][i] - 1])
        feats = rec.features[:, start:start + size].astype(np.float64)
        assert abs(feats.sum() - rows["feat_sum"][i]) < 1e-6 * max(1.0, abs(feats).sum())
        assert rows["valid_frames"][i] == min(max(rec.frames - start, 0), size)
        lo, hi = start * ms_per_frame, (start + size) * ms_per_frame
        text = " ".join(w for w, s, e in rec.words if s >= lo and e <= hi)
        o, n = rows["token_offset"][i], rows["n_tokens"][i]
        assert list(rows["tokens"][o:o + n]) == sp.encode(text), (i, text)


def test_infeasible_and_empty_chunks_are_where_the_corpus_puts_them(dump):
    rows, steps = dump["rows"], dump["steps"]
    inf_rows = ~np.isfinite(rows["row_ctc"])
    assert set(rows["rec_id"][inf_rows]) == {make_corpus.INFEASIBLE_ID}
    assert (rows["n_tokens"][inf_rows] > rows["out_length"][inf_rows]).all()
    assert set(np.unique(rows["step"][inf_rows])) == set(dump["meta"]["skipped_steps"])
    starts = {b["batch"]: b for b in dump["batches"]}
    for sk in dump["meta"]["skipped_chunks"]:  # no row of the batch has a word in that chunk
        b = starts[sk["batch"]]
        lo = sk["chunk_index"] * b["chunk_size"] * 10
        hi = lo + b["chunk_size"] * 10
        assert not any(s >= lo and e <= hi for i in b["ids"]
                       for _, s, e in dump["corpus"][i].words)
    # after a skipped first chunk the original does not advance its running offsets: the
    # rows of the later chunks are given up to a chunk more frames than they hold
    late = [sk["batch"] for sk in dump["meta"]["skipped_chunks"] if sk["chunk_index"] == 0]
    assert late
    in_late = np.isin(steps["batch"][rows["step"] - 1], late)
    assert (rows["audio_length"][in_late] > rows["valid_frames"][in_late]).any()
    assert (rows["audio_length"][~in_late] == rows["valid_frames"][~in_late]).all()


def test_initial_checkpoint_converts_and_matches_the_dump(dump):
    pytest.importorskip("torch")
    from lcasr_jax.checkpoints import convert, torch_format

    state, config, _ = torch_format.load_released(FIX / "init.pt")
    assert list(state) == list(dump["norms"]["names"])
    for i, (name, arr) in enumerate(state.items()):
        np.testing.assert_allclose(np.linalg.norm(arr.astype(np.float64).ravel()),
                                   dump["norms"]["init"][i], rtol=1e-6, err_msg=name)
    cfg, variables, _, _ = convert.read_released(FIX / "init.pt")
    assert cfg.n_layers == config["model"]["n_layers"] == 2 and variables


def test_init_stats_of_paper_models(dump):
    stats = json.loads((FIX / "init_stats.json").read_text())
    assert set(stats) == {"6L-256D", "6L-768D"}
    assert stats["6L-256D"]["model"]["d_model"] == 256
    assert stats["6L-768D"]["model"]["d_model"] == 768
    t = stats["6L-256D"]["tensors"]
    w = t["layers.0.ff1.net.0.weight"] if "layers.0.ff1.net.0.weight" in t else next(
        v for k, v in t.items() if k.endswith("weight") and len(v["shape"]) == 2)
    fan_in = w["shape"][1]
    # torch's default Linear init: kaiming_uniform(a=sqrt(5)) has std 1/sqrt(3 fan_in)
    assert abs(w["std"] * np.sqrt(3 * fan_in) - 1) < 0.05


def test_export_original_writes_the_original_format(tmp_path):
    torch = pytest.importorskip("torch")
    import export_original

    feats = np.arange(12 * 80, dtype=np.float16).reshape(12, 80) / 7
    example = {"id": b"r1", "features": np.concatenate([feats, np.zeros((4, 80), np.float16)]),
               "num_frames": np.int32(12), "text": b"hello there",
               "word_start": np.array([0.013, 0.07]), "word_end": np.array([0.06, 0.1 + 1e-9])}
    pairs = json.loads(export_original.export([example], tmp_path).read_text())
    assert list(pairs) == ["r1"] and pairs["r1"]["duration"] == 0.12
    spec = torch.load(pairs["r1"]["audio"])
    assert spec.shape == (1, 80, 12) and spec.dtype == torch.float32
    np.testing.assert_array_equal(spec[0].numpy().T, feats.astype(np.float32))
    words = json.loads(Path(pairs["r1"]["txt"]).read_text())["results"][-1]["alternatives"][0][
        "words"]
    assert [w["word"] for w in words] == ["hello", "there"]
    # the original parses float(t[:-1]): the very float64 of the example comes back
    assert [float(w["endTime"][:-1]) for w in words] == list(example["word_end"])
    with pytest.raises(ValueError, match="2 words but 1 timings"):
        export_original.words_of({**example, "word_start": np.array([0.0])})


def test_gradients_and_self_divergence_are_whole(dump):
    """grads.npz: every parameter's gradient at its steps, finite, whose global norm is the
    recorded clip_grad_norm_ return; self_divergence.npz: the original's own drift in float32
    (README), holding the skips, growing from rounding size at step 1."""
    grads = np.load(FIX / "grads.npz")
    params = [n for n in dump["norms"]["names"] if not n.endswith(
        ("running_mean", "running_std", "num_batches_tracked", "inv_freq",
         "rotary_interpolation_factor"))]
    steps = sorted({int(f.split("/")[0][4:]) for f in grads.files})
    assert steps and all(not dump["steps"]["skipped"][k - 1] for k in steps)
    for k in steps:
        g = {f.split("/", 2)[2]: grads[f] for f in grads.files if f.startswith(f"step{k}/grad/")}
        assert sorted(g) == sorted(params)
        assert all(np.isfinite(v).all() for v in g.values())
        norm = np.sqrt(sum(np.sum(np.square(v, dtype=np.float64)) for v in g.values()))
        assert norm == pytest.approx(dump["steps"]["grad_norm"][k - 1], rel=1e-5)
    d = np.load(FIX / "self_divergence.npz")
    n_var = len(d["variants"])
    assert d["skipped_equal"].all() and d["loss_rel"].shape == (n_var, dump["meta"]["n_steps"])
    assert list(d["snapshot_steps"]) == dump["meta"]["snapshot_steps"]
    assert d["param_rel"].shape == (n_var, len(d["snapshot_steps"]), len(d["names"]))
    assert d["param_rel"][:, 0].max() < 1e-6 < d["param_rel"][:, -1].max()
