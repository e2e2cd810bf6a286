"""No user file is ever unpickled: checkpoints are safetensors plus a trainer state read
with ``torch.load(weights_only=True)``; YAML with ``safe_load``. Checked on the source, so a
new loader that forgets this fails here (tests/test_bad_inputs.py feeds a pickled payload
through ``--resume`` and checks that it is refused and never runs)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for d in ("bench", "variants") for p in (ROOT / d).rglob("*.py"))


def _calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def _keyword(node: ast.Call, name: str):
    for kw in node.keywords:
        if kw.arg == name:
            return ast.unparse(kw.value)
    return None


UNSAFE = {"pickle.load", "pickle.loads", "pickle.Unpickler", "yaml.load", "yaml.unsafe_load",
          "yaml.full_load", "joblib.load", "dill.load", "pd.read_pickle", "pandas.read_pickle",
          "marshal.loads"}


def test_no_unsafe_deserialisation():
    bad = []
    for path in SOURCES:
        for node, func in _calls(path):
            where = f"{path.relative_to(ROOT)}:{node.lineno}: {func}"
            if func == "torch.load" and _keyword(node, "weights_only") != "True":
                bad.append(where + " without weights_only=True")
            if func in UNSAFE:
                bad.append(where)
            if func in ("np.load", "numpy.load") and \
                    _keyword(node, "allow_pickle") not in (None, "False"):
                bad.append(where + " with allow_pickle")
    assert not bad, "\n".join(bad)


def test_the_scan_sees_the_loaders_that_exist():
    funcs = {func for path in SOURCES for _, func in _calls(path)}
    assert "torch.load" in funcs and "yaml.safe_load" in funcs
