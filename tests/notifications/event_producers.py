"""Which event types Confirma's code can publish, read from the source.

Every call of `event_publish` names its type either as a string or through the parameters
of the functions that lead to it (`_publish(session, "payment.confirmed")`,
`_step(ticket_id, …, "ticket.called")`). This follows those parameters back to the strings
the callers pass, across modules, so a new event type is found wherever it is written.
"""

import ast
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("config", "notifications", "payments", "subscriptions", "tickets", "orders")
SKIPPED_PARTS = ("migrations",)
# Functions that pass on a type chosen at run time by staff (announcements), not by code.
PASS_THROUGH = {
    ("notifications/management/commands/notify.py", "handle"),
    ("notifications/tasks.py", "event_publish_task"),
}


@dataclass
class Found:
    types: dict[str, set[str]] = field(default_factory=dict)  # type -> where
    unresolved: list[str] = field(default_factory=list)


@dataclass
class _Function:
    path: str
    node: ast.FunctionDef
    parents: dict

    @property
    def params(self) -> list[str]:
        args = self.node.args
        return [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]

    @property
    def positional(self) -> list[str]:
        return [a.arg for a in (*self.node.args.posonlyargs, *self.node.args.args)]


def _modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if not any(part in SKIPPED_PARTS for part in path.parts):
                yield str(path.relative_to(ROOT)), ast.parse(path.read_text(), str(path))


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def _argument(call: ast.Call, function: _Function, name: str):
    """The expression `call` passes for parameter `name` of `function`, or None."""
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    positional = function.positional
    if name in positional and positional.index(name) < len(call.args):
        argument = call.args[positional.index(name)]
        return None if isinstance(argument, ast.Starred) else argument
    return None


class _Index:
    def __init__(self):
        self.functions: dict[str, list[_Function]] = {}
        self.calls: list[tuple[str, ast.Call, _Function | None]] = []
        for path, tree in _modules():
            parents = {
                child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)
            }
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.functions.setdefault(node.name, []).append(_Function(path, node, parents))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    self.calls.append((path, node, self._enclosing(node, path, parents)))

    def _enclosing(self, node, path, parents) -> "_Function | None":
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return next(f for f in self.functions[node.name] if f.node is node)
        return None

    def resolve(self, expr, where: str, function: "_Function | None", found: Found, depth=0):
        if depth > 8:
            found.unresolved.append(f"{where}: too many hops")
        elif isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            found.types.setdefault(expr.value, set()).add(where)
        elif isinstance(expr, ast.IfExp):
            self.resolve(expr.body, where, function, found, depth)
            self.resolve(expr.orelse, where, function, found, depth)
        elif isinstance(expr, ast.Name) and function and expr.id in function.params:
            if (function.path, function.node.name) in PASS_THROUGH:
                return
            callers = [
                (path, call, caller)
                for path, call, caller in self.calls
                if _callee(call) == function.node.name
            ]
            if not callers:
                found.unresolved.append(f"{where}: {function.node.name}() has no callers")
            for path, call, caller in callers:
                argument = _argument(call, function, expr.id)
                here = f"{path}:{call.lineno}"
                if argument is None:
                    found.unresolved.append(f"{here}: no {expr.id} argument")
                else:
                    self.resolve(argument, here, caller, found, depth + 1)
        else:
            found.unresolved.append(f"{where}: {ast.unparse(expr)}")


def published_event_types() -> Found:
    """Every event type the code can publish, with where it is written; and the places
    whose type could not be followed back to a string."""
    index, found = _Index(), Found()
    [publish] = index.functions["event_publish"]
    for path, call, caller in index.calls:
        if _callee(call) != "event_publish":
            continue
        expr = _argument(call, publish, "type")
        where = f"{path}:{call.lineno}"
        if expr is None:
            found.unresolved.append(f"{where}: no type argument")
        else:
            index.resolve(expr, where, caller, found)
    return found
