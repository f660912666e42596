"""The import graph of the package: dependencies run one way (down the layers), no cycles, no private names
across modules, imports at the top of each file (function-level imports only for optional dependencies)."""
import ast
import pathlib


PKG = pathlib.Path(__file__).resolve().parents[1] / "sparsejax"

# Layer of each top-level module / subpackage: a module may import only from strictly lower layers, or from its
# own subpackage. The package __init__ files (re-exports) are exempt.
LAYERS = {
    "_version": 0, "_validate": 0, "_backend": 0, "cores": 0,
    "shrink": 1, "dictionary": 1, "solve": 1, "datasets": 1, "interop": 1,
    "operators": 2, "patches": 2,
    "conv": 3,
    "pursuit": 4,
    "multilayer": 5, "differentiate": 5, "imaging": 5, "distributed": 5, "streaming": 5,
    "theory": 6, "learn": 6, "nn": 6, "separation": 6,
    "reproduce": 7, "sklearn": 7, "restoration": 7,
    "cli": 8,
}
# third-party packages that are optional (not in the run-time dependencies): only these may be imported lazily
OPTIONAL = {"sklearn", "spams", "sporco", "scipy"}
# matplotlib.pyplot starts a plotting backend: imported only where a figure is written, so that importing the
# package (and the CLI) stays light
LAZY_ALLOWED = OPTIONAL | {"matplotlib"}


def _modules():
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), p


MODULES = dict(_modules())


def _unit(mod: str) -> str:
    """The top-level unit of a module: ``sparsejax.pursuit.omp`` -> ``pursuit``."""
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(mod, path):
    """(target module, imported name or None, node, is_top_level) for every sparsejax import of ``mod``."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            for a in node.names:
                out.append((target, a.name, node, id(node) in top))
        elif isinstance(node, ast.Import):
            for a in node.names:
                out.append((a.name, None, node, id(node) in top))
    return out


def _resolve(target, name):
    full = f"{target}.{name}" if name else target
    return full if full in MODULES else target


def test_every_unit_has_a_layer():
    units = {_unit(m) for m in MODULES if m != "sparsejax"}
    assert units <= set(LAYERS), f"add these to LAYERS: {sorted(units - set(LAYERS))}"


def test_imports_run_down_the_layers():
    bad = []
    for mod, path in MODULES.items():
        if path.name == "__init__.py" and mod == "sparsejax":
            continue
        here = _unit(mod)
        for target, name, _, _ in _imports(mod, path):
            if not target.startswith("sparsejax"):
                continue
            dep = _resolve(target, name)
            there = _unit(dep)
            if dep == "sparsejax":
                bad.append(f"{mod} imports the top-level package (import the module itself)")
            elif there != here and LAYERS[there] >= LAYERS[here]:
                bad.append(f"{mod} (layer {LAYERS[here]}) imports {dep} (layer {LAYERS[there]})")
    assert not bad, "\n".join(bad)


def test_no_private_names_across_modules():
    bad = []
    for mod, path in MODULES.items():
        for target, name, _, _ in _imports(mod, path):
            if not target.startswith("sparsejax") or name is None:
                continue
            dep = _resolve(target, name)
            if name.startswith("_") and dep == target and target != mod and name != "__version__":
                bad.append(f"{mod} imports {target}.{name}")
            # a private module is shared within its own folder only (the top-level _validate / _version by all)
            leaf = dep.rsplit(".", 1)[-1]
            if leaf.startswith("_") and dep.count(".") > 1 and _unit(dep) != _unit(mod):
                bad.append(f"{mod} imports {dep}, a private module of another folder")
    assert not bad, "\n".join(bad)


def _cycles(graph):
    """Every import cycle found by depth-first search of ``graph`` (module -> set of modules it imports)."""
    state, found = {}, []

    def visit(v, stack):
        state[v] = 1
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                found.append(stack[stack.index(w):] + [w])
            elif w not in state:
                visit(w, stack + [w])
        state[v] = 2

    for v in sorted(graph):
        if v not in state:
            visit(v, [v])
    return found


def test_cycle_search_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = {}
    for mod, path in MODULES.items():
        if path.name == "__init__.py":
            continue
        deps = set()
        for target, name, _, _ in _imports(mod, path):
            if target.startswith("sparsejax"):
                dep = _resolve(target, name)
                if dep in MODULES and MODULES[dep].name != "__init__.py" and dep != mod:
                    deps.add(dep)
        graph[mod] = deps
    assert sum(map(len, graph.values())) > 50  # the graph was read: the package's modules import each other
    cycles = _cycles(graph)
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)


def test_imports_at_the_top():
    bad = []
    for mod, path in MODULES.items():
        for target, _, node, top in _imports(mod, path):
            if not top and target.split(".")[0] not in LAZY_ALLOWED and target != "__future__":
                bad.append(f"{mod}:{node.lineno} imports {target} inside a function or block")
    assert not bad, "\n".join(bad)
