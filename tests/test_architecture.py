"""The project's boundaries, read from its imports, and its size limits.

Layers, bottom up: ``scenarios`` (data) → the engine in ``simulator`` (models,
decomposition, validation, messages, schedules, windows) → ``agents`` → the top of
``simulator`` (co-simulation, recorder, runner, run files, solve, CLI, generated docs).
``outputs`` reads and writes files. Rules (docs/architecture.md):

* no import cycle between modules (module-level imports);
* ``scenarios`` and ``outputs`` import nothing from ``simulator`` or ``agents``;
  ``outputs`` imports no solver (Pyomo, HiGHS) and no network engine;
* the engine imports neither ``agents`` nor the top, nor pandapower outside the network
  layer; only the network layer (``scenarios/pandapower_net.py``, the network readers
  ``scenarios/network_sources/`` and ``scenarios/phase_sources/``, the offline data tools
  ``scenarios/tools/`` and ``simulator/validation/``) imports pandapower, lightsim2grid or
  OpenDSS;
* agents import no top module; the DSO agent imports no microgrid or DER agent module.

Sizes: no module over 400 lines, no function over 50 lines (outside
``scenarios/tools/``, the data conversion tools), median function length at most 12.
The checker is run on today's tree and on hand-made graphs with the violations it
must catch.
"""

from __future__ import annotations

import ast
import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scenarios", "simulator", "agents", "outputs")
TOP = frozenset({"gridcosim.simulator.cosim", "gridcosim.simulator.recording",
                 "gridcosim.simulator.runner", "gridcosim.simulator.run_files",
                 "gridcosim.simulator.solve", "gridcosim.simulator.cli",
                 "gridcosim.simulator.reference_docs", "gridcosim.simulator.validate",
                 "gridcosim.simulator.checkpoint", "gridcosim.simulator.market_sim",
                 "gridcosim.simulator.market_solve",
                 "gridcosim.simulator.sweep", "gridcosim.simulator.sweep_cli",
                 "gridcosim.simulator.sweep_engines", "gridcosim.simulator.sweep_grid",
                 "gridcosim.simulator.sweep_run", "gridcosim.simulator.sweep_summary",
                 "gridcosim.simulator.plot_cli", "gridcosim.simulator.view_cli"})
NETWORK_LAYER = ("gridcosim.scenarios.pandapower_net", "gridcosim.scenarios.phase_sources",
                 "gridcosim.scenarios.network_sources", "gridcosim.scenarios.tools",
                 "gridcosim.simulator.validation")
NETWORK_ENGINES = ("pandapower", "lightsim2grid", "opendssdirect")
SOLVERS = ("pyomo", "highspy")
DSO_MUST_NOT = ("gridcosim.agents.microgrid_controller", "gridcosim.agents.der_agent",
                "gridcosim.agents.generator", "gridcosim.agents.renewable",
                "gridcosim.agents.storage")
#: The market operator knows no topology: it imports no network data or network code.
MARKET_OPERATOR = ("gridcosim.agents.market_operator", "gridcosim.simulator.market.clearing")
TOPOLOGY = ("gridcosim.scenarios.phase_network", "gridcosim.scenarios.network",
            "gridcosim.scenarios.radial_tree", "gridcosim.simulator.validation",
            "gridcosim.simulator.models", "gridcosim.simulator.market.network_check",
            "gridcosim.simulator.market.network_limits", "gridcosim.agents.market_dso")
TOOLS = ("gridcosim.scenarios.tools",)
Graph = dict[str, dict[str, bool]]  # module -> imported module -> at module level?


def module_files() -> Iterator[tuple[str, Path]]:
    """Every module of the package and its file."""
    yield "gridcosim", ROOT / "__init__.py"
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(("gridcosim", *parts))
            yield name.removesuffix(".__init__"), path


def _imports(name: str, path: Path, tree: ast.Module) -> dict[str, bool]:
    """What a module imports (absolute names) and whether at module level."""
    out: dict[str, bool] = {}
    top_level = {id(n) for n in tree.body} | _type_checking_ids(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        level = id(node) in top_level and id(node) not in _type_checking_ids(tree)
        for imported in names:
            out[imported] = out.get(imported, False) or level
    return out


def _type_checking_ids(tree: ast.Module) -> set[int]:
    """Nodes under ``if TYPE_CHECKING:`` (not imported at run time)."""
    ids: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids |= {id(n) for n in ast.walk(node)}
    return ids


def import_graph() -> Graph:
    """The imports of every module of the package."""
    modules = dict(module_files())
    graph: Graph = {}
    for name, path in modules.items():
        found = _imports(name, path, ast.parse(path.read_text(encoding="utf-8")))
        graph[name] = {m: lvl for m, lvl in found.items()
                       if m in modules or not m.startswith("gridcosim")}
    return graph


def layer(module: str) -> str:
    """The layer of a package module."""
    if module in TOP:
        return "top"
    for part in ("scenarios", "outputs", "agents"):
        if module.startswith(f"gridcosim.{part}"):
            return part
    return "engine" if module.startswith("gridcosim.simulator") else "root"


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


def violations(graph: Graph) -> list[str]:
    """Every broken boundary rule of an import graph."""
    out = []
    for module, imports in graph.items():
        here = layer(module)
        for imported in imports:
            out += _rule_problems(module, here, imported)
    return out + [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]


def _rule_problems(module: str, here: str, imported: str) -> list[str]:
    there = layer(imported) if imported.startswith("gridcosim") else "external"
    bad = []
    if here in ("scenarios", "outputs") and there in ("engine", "top", "agents"):
        bad.append(f"{module} ({here}) imports {imported} ({there})")
    if here == "outputs" and _under(imported, SOLVERS + NETWORK_ENGINES):
        bad.append(f"{module} (outputs) imports the solver or network engine {imported}")
    if here == "engine" and there in ("agents", "top"):
        bad.append(f"{module} (engine) imports {imported} ({there})")
    if here == "agents" and there == "top":
        bad.append(f"{module} (agents) imports {imported} (top)")
    if _under(imported, NETWORK_ENGINES) and not _under(module, NETWORK_LAYER):
        bad.append(f"{module} imports {imported} outside the network layer")
    if module == "gridcosim.agents.dso" and _under(imported, DSO_MUST_NOT):
        bad.append(f"the DSO agent imports {imported}")
    if module in MARKET_OPERATOR and _under(imported, TOPOLOGY + NETWORK_ENGINES):
        bad.append(f"the market operator's {module} imports network code {imported}")
    return bad


def cycles(graph: Graph) -> list[list[str]]:
    """Import cycles among package modules (module-level imports only)."""
    edges = {m: [i for i, lvl in imps.items() if lvl and i in graph and i != m]
             for m, imps in graph.items()}
    found, state = [], {}
    for start in sorted(edges):
        found += _cycles_from(start, edges, state, [])
    return found


def _cycles_from(node: str, edges: dict[str, list[str]], state: dict[str, int],
                 path: list[str]) -> list[list[str]]:
    if state.get(node) == 2:
        return []
    if state.get(node) == 1:
        return [[*path[path.index(node):], node]]
    state[node] = 1
    out = []
    for nxt in edges.get(node, ()):
        out += _cycles_from(nxt, edges, state, [*path, node])
    state[node] = 2
    return out


# ------------------------------------------------------------------------------ the tree
def test_the_package_keeps_its_boundaries() -> None:
    assert violations(import_graph()) == []


def test_the_graph_sees_every_module_and_its_imports() -> None:
    graph = import_graph()
    assert "gridcosim.simulator.decomposition.loop" in graph
    assert "gridcosim.simulator.models.lindistflow_model" in graph[
        "gridcosim.simulator.decomposition.network_models"]
    assert any(_under(i, ("pandapower",)) for i in graph["gridcosim.scenarios.pandapower_net"])


@pytest.mark.parametrize(("graph", "expected"), [
    ({"gridcosim.scenarios.loader": {"gridcosim.simulator.errors": True}},
     "gridcosim.scenarios.loader (scenarios) imports gridcosim.simulator.errors (engine)"),
    ({"gridcosim.outputs.tables": {"gridcosim.simulator.schedule": True}},
     "gridcosim.outputs.tables (outputs) imports gridcosim.simulator.schedule (engine)"),
    ({"gridcosim.outputs.hdf5": {"pyomo.environ": True}}, "solver or network engine"),
    ({"gridcosim.simulator.decomposition.loop": {"gridcosim.agents.dso": False}},
     "(engine) imports gridcosim.agents.dso (agents)"),
    ({"gridcosim.simulator.models.master_model": {"pandapower": True}},
     "outside the network layer"),
    ({"gridcosim.agents.dso": {"gridcosim.agents.microgrid_controller": True}},
     "the DSO agent imports"),
    ({"gridcosim.agents.customer": {"gridcosim.simulator.cosim": True}}, "(agents) imports"),
    ({"gridcosim.agents.market_operator": {"gridcosim.scenarios.phase_network": True}},
     "the market operator's"),
    ({"gridcosim.simulator.market.clearing": {"gridcosim.simulator.market.network_check":
                                              True}}, "the market operator's"),
    ({"gridcosim.simulator.a": {"gridcosim.simulator.b": True},
      "gridcosim.simulator.b": {"gridcosim.simulator.a": True}}, "import cycle"),
])
def test_the_checker_catches_each_violation(graph: Graph, expected: str) -> None:
    assert any(expected in v for v in violations(graph)), violations(graph)


# ------------------------------------------------------------------------------ sizes
def functions(path: Path) -> Iterator[tuple[str, int]]:
    """Every function of a file and its length in lines (docstring included)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, node.end_lineno - node.lineno + 1


def test_modules_stay_small() -> None:
    long = {str(p.relative_to(ROOT)): n for name, p in module_files()
            if not _under(name, TOOLS)
            and (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}


def test_functions_stay_short() -> None:
    lengths, long = [], []
    for name, path in module_files():
        if _under(name, TOOLS):
            continue
        for func, n in functions(path):
            lengths.append(n)
            if n > 50:
                long.append(f"{path.relative_to(ROOT)}:{func} ({n} lines)")
    assert long == []
    assert statistics.median(lengths) <= 12, statistics.median(lengths)
