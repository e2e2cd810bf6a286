"""``fusebench pretrain vision|text``: the micro backbones on the built-in data or any
VQA data (``bench.pretrain``), optionally shipped as reference checkpoints."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.errors import UserError
from variants.sizes import OPT_SIZES, VIT_SIZES

# kind -> (help, its size table, what --data gives it, its default --epochs)
KINDS = {
    "vision": ("a tiny ViT (prints a linear probe of its frozen features)", VIT_SIZES,
               ", whose scene annotations the ViT learns densely; on other data it learns "
               "which answers each image's training questions get",
               "16 on the built-in data, ~1000 steps of 64 images elsewhere"),
    "text": ("a tiny OPT language model", OPT_SIZES, "; the LM reads its training questions "
             "and answers, and the captions where the data has them",
             "3 on the built-in data, elsewhere enough to read 144,000 corpus lines"),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pretrain a tiny ViT or OPT on the built-in data or "
                       "yours (vision prints a linear probe of its frozen features)")
    # one subcommand per kind: each offers its own registry's sizes (and vision its stem)
    kinds = p.add_subparsers(dest="kind", required=True, metavar="{vision,text}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--seed", type=int, default=0,
                        help="pretraining seed (default 0: the shipped checkpoint's)")
    common.add_argument("--force", action="store_true",
                        help="retrain even if cached or shipped")
    common.add_argument("--ship", action="store_true",
                        help="copy the result into bench/reference/ (with SHA256SUMS and the "
                        "command that rebuilds it) so fresh clones skip this pretraining")
    for kind, (what, sizes, data_note, epochs) in KINDS.items():
        parser = kinds.add_parser(kind, parents=[common], help=what)
        parser.add_argument("--data", help="dataset directory (default: the built-in "
                            f"data/synthvqa){data_note}")
        parser.add_argument("--epochs", type=int, help=f"default: {epochs}")
        parser.add_argument("--size", choices=tuple(sizes), default="micro",
                            help="model size (default micro)")
        if kind == "vision":
            parser.add_argument("--stem", choices=("conv", "patch"), default="conv",
                                help="ViT input stem (conv: a small timm ResNet, the tiny "
                                "presets')")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench import reference
    from bench.data.synthvqa import ensure_data
    from bench.pretrain import pretrain_text, pretrain_vision

    if args.epochs is not None and args.epochs < 1:  # before any data is generated
        raise UserError("--epochs must be >= 1")
    data_dir = ensure_data(args.data)
    if args.ship and not (data_dir / "synthvqa.json").is_file():
        raise UserError(f"--ship ships the built-in data's backbones (fresh clones use them); "
                        f"{data_dir} is not it (no synthvqa.json)")
    extra = {"epochs": args.epochs} if args.epochs else {}
    if args.kind == "vision":
        path = pretrain_vision(data_dir, args.size, seed=args.seed, force=args.force,
                               stem=args.stem, **extra)
    else:
        path = pretrain_text(data_dir, args.size, seed=args.seed, force=args.force, **extra)
    entry = Path(path if path.is_dir() else path.parent)
    print(json.dumps(json.loads((entry / "meta.json").read_text()), indent=2))
    print(f"saved: {path}")
    if args.ship:
        command = (f"fusebench pretrain {args.kind} --size {args.size} --seed {args.seed}"
                   + (f" --stem {args.stem}" if args.kind == "vision" else "")
                   + (f" --epochs {args.epochs}" if args.epochs else "") + " --force --ship")
        shipped = reference.ship(entry, command, data_dir / "synthvqa.json")
        print(f"shipped: {shipped} (commit it; fresh clones on this data skip the pretraining)")
    return 0
