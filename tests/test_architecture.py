"""The package's shape (DESIGN.md): imports run one way, no module reaches into another's private
names, the TensorFlow-free packages stay so. Read from the source with `ast`, imports inside
functions included."""
import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "rise_tf")


def _modules():
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                relative = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                yield relative.removesuffix(".__init__"), path


def _imports(path):
    """(module imported, names taken from it) for every import in the file."""
    with open(path) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [alias.name for alias in node.names]


def _unit(module):
    """The node of the package graph: a sub-package (rise_tf.parts) or a top-level module (rise_tf.config)."""
    parts = module.split(".")
    return ".".join(parts[:2])


def test_packages_import_one_way():
    graph = {}
    for module, path in _modules():
        for imported, names in _imports(path):
            targets = [imported] + [f"{imported}.{name}" for name in names]
            for target in targets:
                if target.startswith("rise_tf.") and _unit(target) != _unit(module) and _unit(target) in {
                        _unit(m) for m, _ in _modules()}:
                    graph.setdefault(_unit(module), set()).add(_unit(target))
    # depth-first search for a cycle; report it whole
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"
    for node in sorted(graph):
        if node not in state:
            visit(node)
    # the leaves stay leaves
    assert not graph.get("rise_tf.networks"), graph.get("rise_tf.networks")
    assert not {"rise_tf.networks", "rise_tf.agents"} & graph.get("rise_tf.replay", set())
    assert "rise_tf.train" not in graph.get("rise_tf.distributed", set())


def test_no_module_takes_another_modules_private_names():
    offenders = [f"{module}: from {imported} import {name}" for module, path in _modules()
                 for imported, names in _imports(path) for name in names
                 if imported.startswith(("rise_tf", "rise_runtime")) and name.startswith("_") and imported != module]
    assert offenders == []


def test_nothing_subclasses_the_trainer():
    for module, path in _modules():
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(base) for base in node.bases]
                assert not any("Trainer" in base for base in bases), f"{module}.{node.name}({', '.join(bases)})"


def test_analysis_and_config_load_no_tensorflow():
    code = ("import sys; import rise_tf.analysis.report, rise_tf.analysis.runs, rise_tf.analysis.aggregate, "
            "rise_tf.config, rise_tf.config_flags, rise_tf.run_dir, rise_tf.parts.updates, rise_tf.parts.schedules, "
            "rise_tf.parts.counters; print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"
