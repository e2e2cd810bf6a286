"""``fusebench data make|baselines|info``: build the built-in dataset, print accuracy floors,
describe a data directory."""

from __future__ import annotations

import argparse
import json
import time

from bench.data import synthvqa
from bench.errors import UserError
from bench.table import print_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="built-in dataset, accuracy floors, data summaries")
    dsub = p.add_subparsers(dest="data_command", required=True, parser_class=type(p))

    m = dsub.add_parser("make", help="generate a built-in dataset (synthvqa)")
    m.add_argument("name", choices=("synthvqa",))
    m.add_argument("--out", required=True, help="output directory (new or empty)")
    m.add_argument("--seed", type=int, default=0,
                   help="generator seed (default 0: the built-in data)")
    m.add_argument("--images", type=int, default=synthvqa.DEFAULT_IMAGES,
                   help=f"number of images (default {synthvqa.DEFAULT_IMAGES}; 80/10/10 split)")
    m.add_argument("--image-size", type=int, default=synthvqa.DEFAULT_IMAGE_SIZE,
                   help=f"image side in pixels (default {synthvqa.DEFAULT_IMAGE_SIZE})")
    m.add_argument("--questions-per-image", type=int, default=synthvqa.DEFAULT_QUESTIONS,
                   help="questions per image (default 5: one per family)")
    m.add_argument("--max-objects", type=int, default=synthvqa.MAX_OBJECTS,
                   help=f"most objects in a scene (default {synthvqa.MAX_OBJECTS}; 2..8)")
    m.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    m.add_argument("--force", action="store_true", help="replace existing synthvqa data")
    m.set_defaults(func=run_make)

    b = dsub.add_parser("baselines", help="accuracy floors and the oracle ceiling")
    b.add_argument("--data", required=True, help="dataset directory (synthvqa, VQA v2 or GQA)")
    b.add_argument("--seed", type=int, default=0, help="seed of the question-only model")
    b.add_argument("--no-cache", action="store_true", help="recompute, ignore baselines.json")
    b.add_argument("--format", choices=("table", "json"), default="table")
    b.set_defaults(func=run_baselines)

    i = dsub.add_parser("info", help="splits, sizes and vocabularies of a dataset directory")
    i.add_argument("--data", required=True, help="dataset directory (synthvqa, VQA v2 or GQA)")
    i.add_argument("--format", choices=("table", "json"), default="table")
    i.set_defaults(func=run_info)


def run_make(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    manifest = synthvqa.make(args.out, seed=args.seed, images=args.images,
                             image_size=args.image_size,
                             questions_per_image=args.questions_per_image,
                             max_objects=args.max_objects, workers=args.workers,
                             force=args.force)
    seconds = time.perf_counter() - start
    rows = [{"split": s, "images": v["images"], "questions": v["questions"],
             **v["answer_types"]} for s, v in manifest["splits"].items()]
    print_table(rows)
    print(f"\nsynthvqa seed {args.seed}: {args.images} images of {args.image_size} px "
          f"written to {args.out} in {seconds:.1f} s")
    return 0


def run_baselines(args: argparse.Namespace) -> int:
    from bench.data.baselines import floors

    rows = floors(args.data, seed=args.seed, cache=not args.no_cache)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    table = []
    for r in rows:
        row = {"baseline": r["baseline"], "split": r["split"],
               "VQA acc %": round(100 * r["accuracy"], 2),
               "95 % CI": f"[{100 * r['ci_lo']:.1f}, {100 * r['ci_hi']:.1f}]",
               "exact match %": round(100 * r["exact_match"], 2)}
        row.update({f"{k[4:-1]} %": round(100 * v, 2) for k, v in r.items()
                    if k.startswith("acc[")})
        row.update({"questions": r["n"], "seed": r["seed"]})
        table.append(row)
    print_table(table)
    print("\nFloors: answers chosen without the image, scored with the official VQA accuracy "
          "(95 % CI: bootstrap over the split's questions).")
    print("oracle: the ceiling, the best single answer per question by the same rules.")
    for r in rows:
        if r["baseline"] == "oracle" and r["accuracy"] < 1.0:
            print(f"oracle below 100 % on {r['split']}: {r['disagreeing']} questions where fewer "
                  f"than 4 annotators agree, {r['unmatchable']} where no prediction can match "
                  "(the script never lower-cases or digit-converts the human answers)")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from bench.data.dataset import AnswerVocab, default_tokenizer
    from bench.data.loaders import available_splits, detect_format, load_examples, split_sources

    fmt = detect_format(args.data)
    sources = split_sources(args.data, fmt)
    if not sources:
        have = ", ".join(available_splits(args.data, fmt)) or "none"
        raise UserError(f"{args.data}: no labelled train, val or test split (files for: {have})")
    examples = {s: load_examples(args.data, s, fmt=fmt) for s in sources}
    tok = default_tokenizer(args.data, examples.get("train", next(iter(examples.values()))))
    rows = []
    for s, exs in examples.items():
        lengths = [len(ids) for ids in tok([e.question for e in exs])["input_ids"]]
        rows.append({"split": s, "from": sources[s].describe(), "format": fmt,
                     "questions": len(exs), "images": len({e.image_id for e in exs}),
                     "answers/question": max(len(e.answers) for e in exs),
                     "max question tokens": max(lengths),
                     "distinct answers": len(AnswerVocab.build(exs, 10**9))})
    unread = [name for name in available_splits(args.data, fmt)
              if name not in {source.name for source in sources.values()}]
    if args.format == "json":
        print(json.dumps({"splits": rows, "tokenizer_size": len(tok), "not_read": unread},
                         indent=2))
    else:
        print_table(rows)
        print(f"\ntokenizer: {len(tok)} tokens; 'max question tokens' counts [CLS]/[SEP] "
              "(set text_len at least that high to avoid truncation)")
        if unread:
            print(f"not read (no labels, or not a train/val/test name): {', '.join(unread)}")
    return 0
