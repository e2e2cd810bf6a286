"""Helpers shared by tests."""


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run ``fusebench ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from bench.cli import main

    try:
        code = main(args)
    except SystemExit as e:  # argparse errors
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def vqa2_only(src, dst):
    """A copy of synthvqa data as third-party data in the VQA v2 layout: its question and
    annotation files and image folders only (no manifest, scenes, tokenizer or captions)."""
    import shutil

    dst.mkdir()
    for path in src.iterdir():
        if path.is_dir() and path.name in ("train", "val", "test"):
            shutil.copytree(path, dst / path.name)
        elif path.name.startswith("v2_"):
            shutil.copy(path, dst / path.name)
    return dst
