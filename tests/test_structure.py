"""The package's shape: short functions and no import circles.

Both checks read the source with `ast` (nothing is imported), so they run in
a fraction of a second.
"""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "keras_adamixup"

# Docstrings included: a longer function is split where its steps have names.
MAX_LINES = 60

# Long functions that are being split right now (`(file, qualified name)`).
# The set only shrinks: the test fails on a new long function, and on an entry
# here that is already short (remove it then). Empty: mixing.py, pipeline.py
# and model.py were split before this test was written.
_NOT_YET = set()

# Import circles inside the package, as sets of modules. Only shrinks, like
# `_NOT_YET`: a new circle, or one that grew, fails, and so does an entry here
# that is gone.
_KNOWN_CYCLES = set()


def _modules():
    """`{dotted module name: path}` of every module of the package."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


class _FunctionLengths(ast.NodeVisitor):
    """Collects `{qualified name: lines}` of every function, nested ones too."""

    def __init__(self):
        self.scope = []
        self.lengths = {}

    def _visit_scope(self, node):
        self.scope.append(node.name)
        if not isinstance(node, ast.ClassDef):
            self.lengths[".".join(self.scope)] = node.end_lineno - node.lineno + 1
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _visit_scope


def _long_functions():
    """`{(file, qualified name): lines}` of the functions over `MAX_LINES`."""
    found = {}
    for path in _modules().values():
        visitor = _FunctionLengths()
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        relative = path.relative_to(PACKAGE.parent).as_posix()
        for name, lines in visitor.lengths.items():
            if lines > MAX_LINES:
                found[(relative, name)] = lines
    return found


def _imported_modules(module, path, modules):
    """The package's modules that `module` imports, at any level of its code.

    ``from a import b`` imports the module ``a.b`` when there is one, else
    (``b`` is a name defined in ``a``) the module ``a``.
    """
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    root = module.split(".")[0]

    def owner(name):  # the module that defines `name`: its longest module prefix
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(owner(a.name) for a in node.names
                            if a.name.split(".")[0] == root)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(parts + ([node.module] if node.module else []))
            else:
                source = node.module
            if source.split(".")[0] != root:
                continue
            for alias in node.names:
                full = f"{source}.{alias.name}"
                imported.add(full if full in modules else owner(source))
    imported.discard(module)
    imported.discard("")
    return imported


def _import_graph():
    """`{module: modules it imports}` inside the package."""
    modules = _modules()
    return {m: _imported_modules(m, path, modules) for m, path in modules.items()}


def _cycles(graph):
    """The import circles of `graph`: its strongly connected components (Tarjan's)
    of two modules or more, as frozensets."""
    order, low, stack, on_stack, cycles = {}, {}, [], set(), set()

    def visit(node):
        order[node] = low[node] = len(order)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in order:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], order[successor])
        if low[node] == order[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.add(frozenset(component))

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return cycles


def test_no_function_over_the_limit():
    long = _long_functions()
    new = {key: lines for key, lines in long.items() if key not in _NOT_YET}
    assert not new, "Functions over {} lines (split them into named steps):\n{}".format(
        MAX_LINES, "\n".join(f"  {lines} {f} {name}" for (f, name), lines in sorted(new.items())))
    short = sorted(_NOT_YET - set(long))
    assert not short, f"Already short, remove from _NOT_YET: {short}"


def test_the_length_check_sees_nested_functions_and_methods():
    visitor = _FunctionLengths()
    visitor.visit(ast.parse("class A:\n    def f(self):\n        def g():\n            pass\n"))
    assert visitor.lengths == {"A.f": 3, "A.f.g": 2}


def test_no_import_circle_inside_the_package():
    cycles = _cycles(_import_graph())
    new = cycles - _KNOWN_CYCLES
    assert not new, "Import circles inside the package:\n{}".format(
        "\n".join("  " + " <-> ".join(sorted(c)) for c in new))
    gone = [sorted(c) for c in _KNOWN_CYCLES - cycles]
    assert not gone, f"Circles no longer there, remove from _KNOWN_CYCLES: {gone}"


def test_the_cycle_finder_finds_circles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _cycles(graph) == {frozenset("abc")}


def test_the_import_graph_reads_every_kind_of_import(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from pkg import a\n")
    (package / "a.py").write_text("def f():\n    import pkg.sub.b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("from .. import a\nfrom . import c\nfrom .c import X\n")
    (package / "sub" / "c.py").write_text("from pkg import X\nimport numpy\n")
    modules = {"pkg": package / "__init__.py", "pkg.a": package / "a.py",
               "pkg.sub": package / "sub" / "__init__.py",
               "pkg.sub.b": package / "sub" / "b.py", "pkg.sub.c": package / "sub" / "c.py"}
    graph = {m: _imported_modules(m, p, modules) for m, p in modules.items()}
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.sub.b"}, "pkg.sub": set(),
                     "pkg.sub.b": {"pkg.a", "pkg.sub.c"}, "pkg.sub.c": {"pkg"}}
    assert _cycles(graph) == {frozenset({"pkg", "pkg.a", "pkg.sub.b", "pkg.sub.c"})}
