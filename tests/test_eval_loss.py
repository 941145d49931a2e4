"""CTC loss of merged posteriors (eval.loss) against torch's CTCLoss, and `eval --loss`."""

import csv

import numpy as np
import pytest

from lcasr_jax.eval import cli
from lcasr_jax.eval.loss import LossDetail, ctc_nll, loss_targets, recording_loss, total

torch = pytest.importorskip("torch")


def _log_probs(frames, classes, seed):
    x = np.random.default_rng(seed).normal(size=(frames, classes)) * 3
    return (x - np.log(np.exp(x).sum(-1, keepdims=True))).astype(np.float32)


def _torch_sum(log_probs, targets, blank):
    lp = torch.from_numpy(log_probs)[:, None]  # (T, N=1, C)
    return float(torch.nn.functional.ctc_loss(
        lp, torch.tensor([targets]), torch.tensor([lp.shape[0]]), torch.tensor([len(targets)]),
        blank=blank, reduction="sum"))


@pytest.mark.parametrize("frames, targets", [
    (40, [3, 5, 5, 2, 7]), (7, [1, 1, 1]), (1500, list(range(1, 9)) * 40), (5, []),
])
def test_matches_torch_ctc_loss_sum(frames, targets):
    log_probs = _log_probs(frames, 10, frames)
    got, want = ctc_nll(log_probs, targets, 9), _torch_sum(log_probs, targets, 9)
    assert got == pytest.approx(want, rel=1e-4, abs=1e-3)


def test_infeasible_alignment_is_inf_like_torch():
    log_probs = _log_probs(4, 10, 0)
    assert ctc_nll(log_probs, [2, 2, 2], 9) == float("inf")
    assert _torch_sum(log_probs, [2, 2, 2], 9) == float("inf")


def _sp():
    """The shipped sentencepiece model, loaded here directly (not through the project)."""
    import sentencepiece

    from lcasr_jax.data.tokenizer import default_tokenizer_path

    return sentencepiece.SentencePieceProcessor(model_file=str(default_tokenizer_path()))


def test_normalised_targets_drop_unknown_pieces():
    from lcasr_jax.data.tokenizer import default_tokenizer

    tok = default_tokenizer()
    text = "good morning \u2603"  # the snowman is not in the vocabulary
    ids = tok.encode(text)
    assert tok.sp.unk_id() in ids
    log_probs = _log_probs(200, tok.vocab_size + 1, 1)
    ref, own = loss_targets("normalised", "RAW", text, "ignored", [5, 6], tok)
    detail = recording_loss(log_probs, ref, own, tok.blank_id)
    kept = [t for t in ids if t != tok.sp.unk_id()]
    assert detail.tokens == len(kept) and detail.self_tokens == 2
    assert detail.nll == pytest.approx(_torch_sum(log_probs, kept, tok.blank_id), rel=1e-4)


def test_original_targets_as_the_original_scripts_build_them():
    """spotify_loss: encode(raw.lower().strip()), all tokens; rev16_loss: encode(decoded
    text) without id 1 (unk); both scored with torch's CTCLoss(blank=4095, 'sum')."""
    from lcasr_jax.data.tokenizer import default_tokenizer

    tok, sp = default_tokenizer(), _sp()
    raw = "  Good Morning, Mr. O'Brien \u2603!  "
    decoded = "good morning mr o brien \u2603 and 42"
    want_ref = sp.encode(raw.lower().strip())
    assert 1 in want_ref  # the snowman is unk and stays in the reference (spotify_loss)
    t = torch.tensor(sp.encode(decoded))[None]
    want_own = t[t != 1].tolist()  # rev16_loss: targets[targets != 1]
    assert len(want_own) < len(sp.encode(decoded))
    ref, own = loss_targets("original", raw, "good morning mister o brien", decoded,
                            [7, 8], tok)
    assert ref == want_ref and own == want_own
    log_probs = _log_probs(300, 4096, 2)
    detail = recording_loss(log_probs, ref, own, tok.blank_id)
    ctc = torch.nn.CTCLoss(blank=4095, reduction="sum")
    lp = torch.from_numpy(log_probs)[None]
    for targets, got in ((want_ref, detail.nll), (want_own, detail.self_nll)):
        y = torch.tensor(targets)[None]
        want = float(ctc(lp.transpose(0, 1), y, torch.LongTensor([300]),
                         torch.LongTensor([y.shape[1]])))
        assert got == pytest.approx(want, rel=1e-5)


def test_overall_is_sum_of_losses_over_sum_of_tokens():
    parts = [LossDetail(10.0, 4, 1.0, 2), LossDetail(30.0, 6, 3.0, 3)]
    row = total(parts).as_row()
    assert row["loss"] == 4.0 and row["loss_tokens"] == 10
    assert row["self_loss"] == pytest.approx(4.0 / 5)


def test_eval_loss_columns(tmp_path, parity_dir, synth_dir):
    data = synth_dir(tmp_path / "data", (3.83, 2.55))
    ckpt = str(parity_dir / "rotary_ln" / "checkpoint.pt")
    argv = ["--checkpoint", ckpt, "--dataset", "synth", "--data-dir", str(data),
            "--seq-len", "128", "--overlap-ratio", "0.5", "--out", str(tmp_path / "out"),
            "--name", "fx", "--quiet", "--loss", "--loss-targets", "normalised"]
    assert cli.main(argv) == 0
    (path,) = (tmp_path / "out").glob(
        "synth_test_fx_averaged_moving_window_128_64_loss-normalised_data-*[0-9a-f].csv")
    rows = [*csv.DictReader(path.with_name(f"{path.stem}_recordings.csv").read_text()
                            .splitlines()), *csv.DictReader(path.read_text().splitlines())]
    loss = [float(r["loss"]) for r in rows]
    tokens = [int(r["loss_tokens"]) for r in rows]
    from lcasr_jax.data.tokenizer import default_tokenizer

    n = len(default_tokenizer().encode("good morning"))
    assert tokens == [n, n, 2 * n]
    assert all(np.isfinite(loss)) and min(loss) > 0
    assert loss[2] == pytest.approx((loss[0] + loss[1]) / 2)
    self_loss = [float(r["self_loss"]) for r in rows[:2]]
    assert all(0 <= s < x for s, x in zip(self_loss, loss[:2], strict=True))
