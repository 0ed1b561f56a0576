"""The floor plan (README "Layout"): every module imports only from its own floor or the
floors below, and never a private (underscore) name of another package."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1] / "ruvector"

# Lowest first.  A module belongs to the longest prefix that names it.
FLOORS = [
    ("ground", ["ruvector.errors", "ruvector._validate", "ruvector._persist", "ruvector._arrow",
                "ruvector._threads", "ruvector._rwlock", "ruvector._progress",
                "ruvector._malloc", "ruvector._deprecated", "ruvector._compile_notice",
                "ruvector._optional"]),
    ("kernels", ["ruvector.kernels"]),
    ("nn", ["ruvector.nn"]),
    ("training", ["ruvector.training"]),
    ("attention", ["ruvector.attention"]),
    ("gnn", ["ruvector.gnn"]),
    ("index", ["ruvector.index"]),
    ("graph arrays", ["ruvector.graph.arrays"]),
    ("query", ["ruvector.graph.query"]),
    ("graph", ["ruvector.graph"]),
    ("eval", ["ruvector.eval"]),
    ("export", ["ruvector.export"]),
    ("viz", ["ruvector.viz"]),
    ("selftest", ["ruvector.selftest"]),
    ("cli", ["ruvector.cli", "ruvector.__main__"]),
]
# The package root re-exports names lazily (by module path strings) and installs the finder
# for moved paths; it sits outside the floors.
TOP = "ruvector"


def floor_of(module):
    best, rank = None, None
    for i, (_, prefixes) in enumerate(FLOORS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > len(best)):
                best, rank = p, i
    return rank


def module_name(path, root=ROOT):
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path, root=ROOT):
    """(line, imported module, imported names) of every import in the file, function-level
    ones included; relative imports resolved."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            names = [a.name for a in node.names]
            if node.module is None or node.level and not node.module:
                # "from . import x": x may be a submodule
                for name in names:
                    yield node.lineno, f"{target}.{name}", []
            else:
                yield node.lineno, target, names


def violations(root=ROOT):
    found = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        if module == TOP:
            continue
        mine = floor_of(module)
        assert mine is not None, f"{module} is on no floor: add it to FLOORS"
        for line, target, names in imports(path, root):
            if not target.startswith("ruvector"):
                continue
            if target == TOP:
                bad = [n for n in names if n.startswith("_") and n != "__version__"]
                if bad:
                    found.append(f"{module}:{line} imports {bad} from the package root")
                continue
            theirs = floor_of(target)
            if theirs is None:
                continue  # a name like ruvector.foo.Bar resolved from "from . import"
            if theirs > mine:
                found.append(f"{module}:{line} imports {target} ({FLOORS[theirs][0]}) from "
                             f"floor {FLOORS[mine][0]}")
            if theirs != mine and theirs != 0:
                private = [n for n in names if n.startswith("_")]
                tail = target.split(".")[2:]
                if private or any(t.startswith("_") for t in tail):
                    found.append(f"{module}:{line} imports a private name of {target}: "
                                 f"{private or tail}")
    return found


def test_no_module_imports_upward_or_private_names():
    assert violations() == []


def test_the_check_catches_an_upward_import(tmp_path):
    pkg = tmp_path / "ruvector"
    (pkg / "kernels").mkdir(parents=True)
    (pkg / "index").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "kernels" / "__init__.py").write_text("")
    (pkg / "index" / "__init__.py").write_text("")
    (pkg / "index" / "store.py").write_text("X = 1\n")
    (pkg / "kernels" / "bad.py").write_text("from ..index.store import X\n")
    (pkg / "kernels" / "sneaky.py").write_text("def f():\n    from ..index import _secret\n")
    found = violations(pkg)
    assert any("kernels.bad:1 imports ruvector.index.store" in v for v in found)
    assert any("kernels.sneaky:2" in v and "_secret" in v for v in found)


def _private_names_defined(path):
    """Underscore names a file defines: functions, classes, assigned attributes and names."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            out.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr" \
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
            out.add(node.args[1].value)
    return {n for n in out if isinstance(n, str) and n.startswith("_")}


def private_reads(root=ROOT):
    """``obj._name`` reads where ``_name`` is defined on another floor only (``self`` and
    ``cls`` are exempt: a subclass uses its base class's protected protocol)."""
    files = sorted(root.rglob("*.py"))
    defined = {}
    for path in files:
        defined.setdefault(floor_of(module_name(path, root)), set()).update(
            _private_names_defined(path))
    found = []
    for path in files:
        module = module_name(path, root)
        mine = defined.get(floor_of(module), set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__") and node.attr not in mine \
                    and getattr(node.value, "id", None) not in ("self", "cls"):
                found.append(f"{module}:{node.lineno} reads .{node.attr}")
    return found


def test_no_module_reads_private_attributes_of_another_floor():
    assert private_reads() == []


def test_the_check_catches_a_private_read(tmp_path):
    pkg = tmp_path / "ruvector"
    (pkg / "graph" / "query").mkdir(parents=True)
    for d in (pkg, pkg / "graph", pkg / "graph" / "query"):
        (d / "__init__.py").write_text("")
    (pkg / "graph" / "store.py").write_text("class S:\n    def __init__(self):\n"
                                            "        self._labels = []\n")
    (pkg / "graph" / "query" / "view.py").write_text("def f(store):\n    return store._labels\n")
    assert private_reads(pkg) == ["ruvector.graph.query.view:2 reads ._labels"]
