"""Captioning metrics through pycocoevalcap, as the COCO caption evaluation computes them:
PTB tokenisation (Stanford CoreNLP jar, needs Java), then BLEU-1..4, METEOR (Java),
ROUGE-L and CIDEr-D.

SPICE is not computed: it needs a Stanford CoreNLP models download this harness cannot do
offline. Results carry the string ``SPICE_NOTE`` in its place, never a number.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench.data.loaders import load_examples, read_json
from bench.errors import UserError

SPICE_NOTE = "not computed (needs Stanford CoreNLP download)"
METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")


def _check(refs: Mapping, hyps: Mapping) -> dict[Hashable, list[str]]:
    if not refs:
        raise UserError("caption metrics: no references to score against")
    if set(refs) != set(hyps):
        missing = sorted(map(str, set(refs) ^ set(hyps)))[:5]
        raise UserError(f"caption metrics: references and hypotheses cover different ids "
                        f"(e.g. {', '.join(missing)})")
    out = {}
    for key, hyp in hyps.items():
        hyp = [hyp] if isinstance(hyp, str) else list(hyp)
        if len(hyp) != 1:
            raise UserError(f"caption metrics: id {key} needs exactly one hypothesis, "
                            f"got {len(hyp)}")
        if not refs[key]:
            raise UserError(f"caption metrics: id {key} has no reference captions")
        out[key] = hyp
    return out


@contextmanager
def _child_stderr_kept_back() -> Iterator[None]:
    """The PTB tokenizer's Java process prints its throughput to the inherited stderr: kept
    off the terminal, and shown only when the block fails (then it is the cause)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read()[-4000:].decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def caption_metrics(references: Mapping[Hashable, Sequence[str]],
                    hypotheses: Mapping[Hashable, str | Sequence[str]]) -> dict[str, float | str]:
    """Corpus-level BLEU-1..4, METEOR, ROUGE-L and CIDEr (CIDEr-D, x10 as COCO reports it)
    for {id: [reference captions]} and {id: hypothesis} (or {id: [hypothesis]}).
    ``result["SPICE"]`` is ``SPICE_NOTE``."""
    hyps = _check(references, hypotheses)
    if shutil.which("java") is None:
        raise UserError("caption metrics need Java on PATH (PTB tokenizer and METEOR run in Java)")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    # One tokenizer run (one JVM start) for references and hypotheses together; integer
    # positions as ids keep its bookkeeping independent of the caller's id types.
    keys = list(references)
    both = {("ref", i): [{"caption": c} for c in references[k]] for i, k in enumerate(keys)}
    both.update({("hyp", i): [{"caption": hyps[k][0]}] for i, k in enumerate(keys)})
    with _child_stderr_kept_back():
        tokens = PTBTokenizer().tokenize(both)
    gts = {i: tokens[("ref", i)] for i in range(len(keys))}
    res = {i: tokens.get(("hyp", i), [""]) for i in range(len(keys))}

    out: dict[str, float | str] = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out.update({f"BLEU-{n + 1}": float(b) for n, b in enumerate(bleu)})
    meteor = Meteor()
    try:
        out["METEOR"] = float(meteor.compute_score(gts, res)[0])
    finally:
        del meteor  # closes the Java process
    out["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    out["CIDEr"] = float(Cider().compute_score(gts, res)[0])
    out["SPICE"] = SPICE_NOTE
    return out


def score_prediction_file(predictions: str | Path, data_dir: str | Path,
                          split: str = "test") -> dict[str, float]:
    """Caption metrics of a COCO-format predictions file (``[{image_id, caption}]``) against
    the reference captions of ``split`` in ``data_dir``; bad files are one-line errors."""

    refs: dict = {}
    for ex in load_examples(data_dir, split, task="caption"):
        refs.setdefault(ex.image_id, []).extend(ex.answers)
    preds = read_json(Path(predictions))
    if not isinstance(preds, list) or not all(_is_prediction(p) for p in preds):
        raise UserError(f"{predictions}: expected a list of {{image_id, caption}} objects "
                        "(an integer or string id, a string caption)")
    if not preds:
        raise UserError(f"{predictions}: holds no predictions")
    hyps = {p["image_id"]: [p["caption"]] for p in preds}
    if len(hyps) < len(preds):
        raise UserError(f"{predictions}: {len(preds) - len(hyps)} image ids have more than "
                        "one caption")
    unknown = [repr(k) for k in hyps if k not in refs][:3]
    if unknown:
        raise UserError(f"{predictions}: image ids {', '.join(unknown)} have no reference "
                        f"captions in {split}")
    return caption_metrics({k: refs[k] for k in hyps}, hyps)


def _is_prediction(record) -> bool:
    image_id = record.get("image_id") if isinstance(record, dict) else None
    return (isinstance(image_id, (int, str)) and not isinstance(image_id, bool)
            and isinstance(record.get("caption"), str))
