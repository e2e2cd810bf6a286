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
