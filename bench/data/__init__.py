"""Data for training and evaluation: the built-in synthvqa task, loaders for real layouts,
the tokenizer, tensorised datasets producing ``Batch``, and accuracy floors.

Where things live:
- ``synthvqa`` (+ ``scenes``, ``questions``): ``make(out, seed)`` writes the built-in data in
  the VQA v2 / COCO-caption layouts (``fusebench data make synthvqa``).
- ``loaders``: ``load_examples(root, split, task="vqa"|"caption")`` -> ``list[Example]`` for
  VQA v2, GQA and COCO captions (layout auto-detected); ``UserError`` on broken data.
- ``tokenizer``: ``build_tokenizer(texts)`` (word level, fixed special ids) and
  ``load_tokenizer(path)`` for any local tokenizer directory.
- ``dataset``: ``load_vqa_data(root, image_size=..., text_len=...)`` -> ``VQAData`` with
  ``.train/.val/.test`` ``VQADataset`` splits, ``.tokenizer`` and ``.vocab``
  (``AnswerVocab``; set ``cfg.num_answers = len(vocab)``, ``cfg.text_vocab_size =
  len(tokenizer)``). ``split[i]`` is ``i``, so a ``DataLoader(split, collate_fn=
  split.collate)`` yields ``Batch``; ``split.batch(indices)`` builds one directly, and
  ``split.examples[i]`` holds the question_id and the raw human answers for evaluation.
- ``baselines``: ``floors(root, seed)`` -> majority / type-prior / question-only accuracy
  rows and the oracle ceiling (``fusebench data baselines``), to print beside every model
  accuracy.

Metrics are in ``bench.metrics``: ``vqa_accuracy``/``vqa_report``/``oracle_accuracy``
(official VQA v2), ``exact_match`` (eP-ALM) and ``captions.caption_metrics`` (pycocoevalcap).
"""
