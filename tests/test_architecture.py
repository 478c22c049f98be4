"""The import rules of ARCHITECTURE.md, checked on the source.

The graph is built from the AST of every module under the one import name `amps_sim` (the
folders amps_sim/, simulator/ and contracts/), with every import counted: module level, inside
functions, and under `if TYPE_CHECKING:`; relative imports resolved. Then:

- every import points down the layers below (never up, never sideways between two groups that
  share a layer), the world never imports the harness, and the harness reaches the world only
  through the two crossings named in CROSSINGS;
- there is no cycle between modules, and none between folders;
- nothing anywhere in the repository imports the bare names `simulator` or `contracts`;
- only the HTTP faces (and the harness's client side) import aiohttp, and nothing in the world
  below `web/` reads the host's clock or the global random source, or parses a raw request body.

The layers are written here once. A new module must be placed in them before this test passes,
which is the point: where it sits is a decision, and ARCHITECTURE.md's picture should show it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Where each part of the one import name lives in a checkout (the wheel nests the last two).
SOURCES = {"amps_sim": REPO / "amps_sim", "amps_sim.simulator": REPO / "simulator", "amps_sim.contracts": REPO / "contracts"}
WORLD = "amps_sim.simulator"
HARNESS = "amps_sim.contracts"

# Top to bottom. A module may import its own group and any group of a lower layer. Groups that
# share a layer are independent: neither imports the other. A group names a module or a folder
# (a dotted path under the area; the longest match wins).
WORLD_LAYERS: list[tuple[str, ...]] = [
    ("web.durable",),  # `serve --state-dir`: the command journal around the app, and the restart
    ("web.expiry",),  # sweeps idle tenants
    ("web.app",),  # the app factory and the one error middleware
    ("web.public", "web.control", "web.foxess", "web.webhooks"),  # the HTTP faces
    ("web.delivery",),  # sends webhook attempts and drives clocks around them
    ("web.common", "web.specs"),
    ("world",),  # tenants by key; each world: clock, devices, platform, native cloud
    ("platform", "foxess.adapter"),  # the Amps platform | the platform's FoxESS gateway
    ("conflicts", "foxess.cloud", "foxess.shapes", "foxess.signature", "webhooks"),  # rules (pure) | cloud | webhook hub
    ("timewindow", "foxess.quotas"),
    ("actions", "oem"),  # action records | the OEM boundary: ManagedDevice, OemGateway, DirectGateway, faults
    ("device",),
    ("native_scheduler", "battery"),
    ("profiles", "validation", "errnos", "lifecycle"),  # lifecycle: a sandbox's limits
    ("clock", "errors", "specs", "persistence", "memo"),  # persistence: the journal store and snapshots; memo: bounded memos
]
HARNESS_LAYERS: list[tuple[str, ...]] = [
    ("pytest_plugin",),
    ("runner", "reporting"),  # reporters never see the runner: they read events and results
    ("recorder", "embedded", "webhook_steps"),
    ("events",),
    ("results",),  # plain data
    ("loader", "timeline", "transport", "webhooks"),  # webhooks: the loopback receiver
    ("scenario", "exchange"),
    ("steps",),  # every step kind, declared once
    ("expectations",),
    ("fileformat", "variables", "keywords"),
    ("native", "matching"),
    ("spec",),
    ("pointer",),
]
# The only imports from the harness into the world: the spec files' locator (data), and the
# in-process server the embedded target runs. Otherwise the harness knows the world over HTTP.
CROSSINGS: set[tuple[str, str]] = {
    ("amps_sim.contracts.spec", "amps_sim.simulator.specs"),
    ("amps_sim.contracts.embedded", "amps_sim.simulator.web.app"),
}
# Everything else under amps_sim (the CLI, `amps-sim run`, what partners import) is the
# composition root: it may import anything, and nothing imports it.


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool

    @property
    def folder(self) -> str:
        return self.name if self.is_package else self.name.rpartition(".")[0]


def discover() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for prefix, root in SOURCES.items():
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root).with_suffix("").parts
            if "__pycache__" in relative:
                continue
            is_package = relative[-1] == "__init__"
            parts = relative[:-1] if is_package else relative
            name = ".".join((prefix, *parts))
            modules[name] = Module(name, path, is_package)
    return modules


def imported_names(module: Module) -> list[tuple[str, tuple[str, ...]]]:
    """(module, names) for every import statement in the file, relative ones made absolute."""
    tree = ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))
    found: list[tuple[str, tuple[str, ...]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.name if module.is_package else module.name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            found.append((base, tuple(alias.name for alias in node.names)))
    return found


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Module -> the amps_sim modules it imports. `from pkg import mod` counts as importing
    `pkg.mod` when that is a module, else `pkg`."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, module in modules.items():
        for base, names in imported_names(module):
            targets = {f"{base}.{n}" for n in names if f"{base}.{n}" in modules} or {base}
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _locate(name: str, area: str, layers: list[tuple[str, ...]]) -> tuple[int, str] | None:
    relative = name[len(area) + 1 :]
    best: tuple[int, str] | None = None
    for index, groups in enumerate(layers):
        for group in groups:
            if relative == group or relative.startswith(group + "."):
                if best is None or len(group) > len(best[1]):
                    best = (index, group)
    return best


def area_of(name: str) -> str:
    for area in (WORLD, HARNESS):
        if name == area or name.startswith(area + "."):
            return area
    return "root"


def place(name: str) -> tuple[str, int, str] | None:
    """(area, layer, group) of a module; None for an unplaced one. Root modules are layer -1."""
    area = area_of(name)
    if area == "root":
        return ("root", -1, "root")
    found = _locate(name, area, WORLD_LAYERS if area == WORLD else HARNESS_LAYERS)
    return (area, *found) if found is not None else None


def rule_breaks(graph: dict[str, set[str]], modules: dict[str, Module]) -> list[str]:
    problems: list[str] = []
    for name in sorted(graph):
        # A package's __init__ that imports nothing is only a folder's name: it needs no place.
        if place(name) is None and (graph[name] or not modules[name].is_package):
            problems.append(f"{name} is in no layer: place it in WORLD_LAYERS or HARNESS_LAYERS (and ARCHITECTURE.md)")
    for source in sorted(graph):
        for target in sorted(graph[source]):
            problem = _judge(source, target)
            if problem:
                problems.append(f"{source} -> {target}: {problem}")
    return problems


def _judge(source: str, target: str) -> str | None:
    here, there = place(source), place(target)
    if here is None or there is None:
        return None  # reported as unplaced
    if here[0] == "root":
        return None
    if there[0] == "root":
        return "imports the composition root"
    if here[0] != there[0]:
        if (source, target) in CROSSINGS:
            return None
        return "the world never imports the harness" if here[0] == WORLD else "the harness reaches the world only over HTTP"
    if here[2] == there[2] or there[1] > here[1]:
        return None
    if there[1] == here[1]:
        return f"{here[2]} and {there[2]} share a layer and stay independent"
    return f"upward: {here[2]} sits below {there[2]}"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def folder_graph(graph: dict[str, set[str]], modules: dict[str, Module]) -> dict[str, set[str]]:
    folders: dict[str, set[str]] = {}
    for source, targets in graph.items():
        here = modules[source].folder
        folders.setdefault(here, set())
        folders[here] |= {modules[t].folder for t in targets} - {here}
    return folders


# ---- the tests ---------------------------------------------------------------------------------


def test_every_import_points_down_the_layers() -> None:
    modules = discover()
    assert rule_breaks(import_graph(modules), modules) == []


def test_no_module_imports_itself_back() -> None:
    assert cycles(import_graph(discover())) == []


def test_no_folder_imports_itself_back() -> None:
    modules = discover()
    assert cycles(folder_graph(import_graph(modules), modules)) == []


def test_nothing_imports_the_bare_folder_names() -> None:
    offenders = []
    for path in sorted(REPO.rglob("*.py")):
        parts = path.relative_to(REPO).parts
        # examples/partner is a partner's own project: its `contracts` and `simulator` are its own
        # packages (the situation the single import name exists for), not ours.
        if parts[0] in (".venv", "build", "examples") or any(part.startswith(".") for part in parts):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in ("simulator", "contracts"):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: import {name}")
    assert offenders == []


# Who may speak HTTP: the world's HTTP faces, and the harness's client side.
AIOHTTP_ALLOWED = ("amps_sim.simulator.web", "amps_sim.contracts.transport", "amps_sim.contracts.embedded",
                   "amps_sim.contracts.pytest_plugin", "amps_sim.contracts.webhooks")
# Reading the host's clock or the global random source; the domain takes both as arguments.
_AMBIENT_CALLS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"), ("time", "time"),
                  ("time", "monotonic"), ("time", "perf_counter"), ("time", "time_ns"), ("random", "random"),
                  ("random", "choice"), ("random", "randint"), ("random", "getrandbits"), ("random", "shuffle"),
                  ("random", "uniform"), ("random", "seed")}


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _third_party(module: Module) -> set[str]:
    return {base.split(".")[0] for base, _ in imported_names(module) if not base.startswith("amps_sim")}


def test_only_the_http_faces_import_aiohttp() -> None:
    offenders = [
        name for name, module in discover().items()
        if area_of(name) != "root" and "aiohttp" in _third_party(module)
        and not any(_under(name, allowed) for allowed in AIOHTTP_ALLOWED)
    ]
    assert offenders == []


def test_the_domain_reads_no_wall_time_and_no_global_randomness() -> None:
    """Below web/, time and randomness arrive as arguments (each World's Clock and Random)."""
    offenders = []
    for name, module in discover().items():
        if area_of(name) != WORLD or _under(name, f"{WORLD}.web"):
            continue
        tree = ast.parse(module.path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
                if (node.func.value.id, node.func.attr) in _AMBIENT_CALLS:
                    offenders.append(f"{name}:{node.lineno}: {node.func.value.id}.{node.func.attr}()")
    assert offenders == []


def test_requests_are_parsed_at_the_edge() -> None:
    """Below web/, domain code takes typed models: it never parses a raw body itself."""
    offenders = []
    for name, module in discover().items():
        if area_of(name) != WORLD or _under(name, f"{WORLD}.web") or name == f"{WORLD}.validation":
            continue
        tree = ast.parse(module.path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "parse_model":
                offenders.append(f"{name}:{node.lineno}: parse_model()")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for arg in node.args.args + node.args.kwonlyargs:
                    if isinstance(arg.annotation, ast.Name) and arg.annotation.id == "object" and arg.arg == "body":
                        offenders.append(f"{name}:{node.lineno}: {node.name}(body: object)")
    assert offenders == []


def test_the_graph_sees_type_checking_relative_and_function_imports() -> None:
    graph = import_graph(discover())
    # `from ..oem import ...` in a subfolder, and `from . import control` in web/app.py.
    assert "amps_sim.simulator.oem" in graph["amps_sim.simulator.foxess.adapter"]
    assert "amps_sim.simulator.web.control" in graph["amps_sim.simulator.web.app"]
    # Only under `if TYPE_CHECKING:`.
    assert "amps_sim.contracts.loader" in graph["amps_sim.contracts.events"]
    # Inside a function (the CLI imports the harness lazily).
    assert "amps_sim.suite" in graph["amps_sim.cli"]


def test_the_checks_catch_what_they_are_for() -> None:
    """The rule and the cycle search, on imports that break them."""
    modules = discover()
    graph = {name: set(targets) for name, targets in import_graph(modules).items()}
    graph["amps_sim.simulator.device"].add("amps_sim.simulator.platform")  # upward
    graph["amps_sim.simulator.platform"].add("amps_sim.simulator.foxess.adapter")  # sideways
    graph["amps_sim.simulator.errors"].add("amps_sim.contracts.spec")  # world -> harness
    graph["amps_sim.contracts.runner"].add("amps_sim.simulator.world.tenants")  # harness -> world
    graph["amps_sim.contracts.spec"].add("amps_sim.cli")  # into the root
    breaks = rule_breaks(graph, modules)
    assert any(b.startswith("amps_sim.simulator.device -> amps_sim.simulator.platform: upward") for b in breaks)
    assert any(b.startswith("amps_sim.simulator.platform -> amps_sim.simulator.foxess.adapter: platform and") for b in breaks)
    assert any("amps_sim.simulator.errors -> amps_sim.contracts.spec: the world never" in b for b in breaks)
    assert any("amps_sim.contracts.runner -> amps_sim.simulator.world.tenants: the harness" in b for b in breaks)
    assert any("amps_sim.contracts.spec -> amps_sim.cli: imports the composition root" in b for b in breaks)
    assert len(breaks) == 5
    # platform -> device already holds, so device -> platform closes a loop.
    assert any({"amps_sim.simulator.device", "amps_sim.simulator.platform"} <= set(c) for c in cycles(graph))
    # A module no layer names is reported.
    modules["amps_sim.simulator.newcomer"] = Module("amps_sim.simulator.newcomer", REPO / "x.py", False)
    graph["amps_sim.simulator.newcomer"] = set()
    assert any(b.startswith("amps_sim.simulator.newcomer is in no layer") for b in rule_breaks(graph, modules))
    # A folder loop: the top of the simulator importing a subfolder that imports it.
    folders = folder_graph({"a.b.x": {"a.b.sub.y"}, "a.b.sub.y": {"a.b.z"}, "a.b.z": set()}, {
        "a.b.x": Module("a.b.x", REPO, False), "a.b.sub.y": Module("a.b.sub.y", REPO, False), "a.b.z": Module("a.b.z", REPO, False),
    })
    assert cycles(folders) == [["a.b", "a.b.sub"]]
