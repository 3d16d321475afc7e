"""`calculate_output` of a `multi` grader: arithmetic over the sub-graders' names, evaluated
by walking its syntax tree (never eval), so a formula can do nothing but compute."""

from __future__ import annotations

import ast
import math
from typing import Callable

from judgerl.judges.grader_spec import GraderConfigError


_FUNCTIONS: dict[str, Callable[..., float]] = {
    "min": min, "max": max, "abs": abs, "floor": math.floor, "ceil": math.ceil,
    "exp": math.exp, "sqrt": math.sqrt, "log": math.log,
}
_OPERATORS: dict[type, Callable[..., float]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a**b, ast.USub: lambda a: -a, ast.UAdd: lambda a: a,
}


def evaluate_formula(formula: str, values: dict[str, float]) -> float:
    """Arithmetic over grader names: numbers, + - * / **, min max abs floor ceil exp sqrt log."""

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in values:
                raise GraderConfigError(f"calculate_output names {node.id!r}, which is not one of the graders {sorted(values)}")
            return values[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.operand))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords:
            return float(_FUNCTIONS[node.func.id](*(walk(arg) for arg in node.args)))
        raise GraderConfigError(f"calculate_output: {ast.unparse(node)!r} is not allowed in a formula")

    try:
        tree = ast.parse(formula, mode="eval")
    except SyntaxError as exc:
        raise GraderConfigError(f"calculate_output {formula!r} is not a formula: {exc.msg}") from None
    return walk(tree)
