"""Jinja's sandbox, bounded: templates cannot reach Python internals, nor run away.

Jinja's `SandboxedEnvironment` stops unsafe attribute access and calls; this one also reports
everything that costs time or memory to the render budget (`campaigner.messages.budget`):

- every loop iteration (the compiled `for` walks a counting iterator), call, filter,
  attribute lookup, operator and output checks the deadline;
- operators that multiply (`'a' * n`, `n ** m`, `'%09999d' % x`) and the string methods and
  filters that pad, repeat or join (`center`, `ljust`, `zfill`, `replace`, `join`,
  `format`, ...) are refused *before* they build something over the size limit: a single
  `'a' * 10**10` is one C call that no deadline can interrupt;
- whatever they build, joined text (`~`, captured blocks, the message itself) included, is
  measured and counted against the render's total, and nothing works on a value over the
  size limit (a list literal may hold many references to one long text).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from functools import wraps
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment, SandboxedFormatter

from campaigner.messages.budget import (
    MAX_INT_BITS,
    RenderBudget,
    RenderLimits,
    TemplateLimit,
    current,
    size_of,
)

_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_DIGITS = re.compile(r"\d+")
_PADDING = frozenset({"center", "ljust", "rjust", "zfill"})
_GROWING = frozenset({"append", "extend", "insert", "update", "setdefault", "add"})


class BoundedCodeGenerator(CodeGenerator):
    """Compiles loops over a counting iterator and `~` through a measured join."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        counted = nodes.Call(
            nodes.EnvironmentAttribute("bounded_iter"), [node.iter], [], None, None
        )
        counted.set_lineno(node.lineno)
        bounded = nodes.For(node.target, counted, node.body, node.else_, node.test, node.recursive)
        bounded.set_lineno(node.lineno)
        super().visit_For(bounded, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat_values((")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")


class BoundedEnvironment(SandboxedEnvironment):
    """A sandbox whose templates fail with `TemplateLimit` instead of running away."""

    code_generator_class = BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(
        self,
        *,
        limits: RenderLimits,
        filters: Mapping[str, Callable[..., Any]],
        plain_data: Iterable[type] = (),
        **options: Any,
    ) -> None:
        """`plain_data`: frozen dataclasses of plain values (the context's views), whose
        fields templates read without the sandbox's checks, which pass them anyway."""
        super().__init__(finalize=self._output, **options)
        self.limits = limits
        self.plain_fields = {kind: _public_fields(kind) for kind in plain_data}
        self.globals.pop("lipsum", None)  # builds text in a Python loop no deadline can stop
        self.filters.update(filters)
        self.filters = {name: self._bounded_filter(name, f) for name, f in self.filters.items()}

    def budget(self) -> RenderBudget:
        return current(self.limits)

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A template's globals as one plain dict (the environment's, then its own), where
        Jinja chains the two maps: every render copies them into its context, and reading
        through the chain cost a third of making that context. The environment's globals
        are set once, in `__init__`, before any template is loaded."""
        return {**self.globals, **(d or {})}

    # -- what compiled templates call ------------------------------------------------------

    def bounded_iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        budget = self.budget()
        for item in iterable:
            budget.iteration()
            yield item

    def concat_values(self, values: Iterable[Any]) -> str:
        budget = self.budget()
        return self.concat(str(_small(budget, value)) for value in values)

    def concat(self, pieces: Iterable[Any]) -> str:
        """Joins output (the message, captured blocks): stops as soon as it is too long."""
        budget = self.budget()
        parts: list[str] = []
        length = 0
        for piece in pieces:
            length += len(piece)
            budget.allow(length, "a text")
            parts.append(piece)
        return str(budget.built_value("".join(parts), "a text"))

    def _output(self, value: Any) -> Any:
        return self.budget().built_value(value, "an output")

    # -- the sandbox's hooks ---------------------------------------------------------------

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.budget().tick()
        if attribute in self.plain_fields.get(type(obj), ()):
            # A field of a view: data, never a method or anything internal. The sandbox's
            # checks cost about 1 us of the 2.2 an attribute read took.
            return getattr(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self.budget().tick()
        return super().getitem(obj, argument)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = self.budget()
        budget.tick()
        _small(budget, left, right)
        if operator == "*":
            _check_repeat(budget, left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_printf(budget, left, right)
        return budget.built_value(super().call_binop(context, operator, left, right))

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget = self.budget()
        budget.tick()
        _small(budget, *args, *kwargs.values())
        owner = getattr(obj, "__self__", None)
        name = getattr(obj, "__name__", "")
        if isinstance(owner, str | bytes):
            args = _check_text_method(budget, owner, name, args)
        elif isinstance(owner, list) and name == "extend" and args:
            extra = _read(budget, args[0])
            budget.allow(size_of(owner) + size_of(extra), "a list")
            args = (extra,)
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(owner, list | dict | set) and name in _GROWING:
            budget.built_value(owner, "a collection")
        return budget.built_value(result)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        text, is_map = value.__self__, value.__name__ == "format_map"
        formatter = _BoundedFormatter(self)

        def bounded(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                return self._format(formatter, text, (), args[0])
            return self._format(formatter, text, args, kwargs)

        return bounded

    def _format(self, formatter: _BoundedFormatter, text: str, args: Any, kwargs: Any) -> str:
        return str(self.budget().built_value(formatter.vformat(text, args, kwargs)))

    def _bounded_filter(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(function)  # keeps jinja's pass_context / pass_environment marks
        def bounded(*args: Any, **kwargs: Any) -> Any:
            budget = self.budget()
            budget.tick()
            _small(budget, *args, *kwargs.values())
            args = _check_filter(budget, name, function, args, kwargs)
            return budget.built_value(function(*args, **kwargs), f"the {name} filter")

        return bounded


def _public_fields(kind: type) -> frozenset[str]:
    """The fields of a frozen dataclass, none of them private."""
    if not dataclasses.is_dataclass(kind) or not kind.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"{kind.__name__}: plain data must be a frozen dataclass")
    names = frozenset(field.name for field in dataclasses.fields(kind))
    if any(name.startswith("_") for name in names):
        raise TypeError(f"{kind.__name__}: plain data with a private field")
    return names


class _BoundedFormatter(SandboxedFormatter):
    """`'{:>99999}'.format(x)`: every field's width is checked before it is padded."""

    def __init__(self, env: BoundedEnvironment) -> None:
        super().__init__(env)
        self._bounded = env

    def format_field(self, value: Any, format_spec: str) -> Any:
        budget = self._bounded.budget()
        for width in _DIGITS.findall(format_spec):
            budget.allow(int(width), "a format width")
        return budget.built_value(super().format_field(value, format_spec))


def _small(budget: RenderBudget, *values: Any) -> Any:
    """Refuses to work on a value over the size limit: a list literal can hold many references
    to one long text, and turning it into text (`~`, a filter, output) would build it all."""
    for value in values:
        budget.allow(size_of(value), "a value")
    return values[0] if len(values) == 1 else None


def _check_repeat(budget: RenderBudget, left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateLimit(f"a product of more than {MAX_INT_BITS} bits")
        return
    times, sequence = (left, right) if isinstance(left, int) else (right, left)
    if isinstance(times, int):
        budget.allow(size_of(sequence) * max(times, 0), "a repetition")


def _check_power(base: Any, exponent: Any) -> None:
    if not (isinstance(base, int) and isinstance(exponent, int) and exponent > 0):
        return
    if abs(base) > 1 and exponent * base.bit_length() > MAX_INT_BITS:
        raise TemplateLimit(f"a power of more than {MAX_INT_BITS} bits")


def _check_printf(budget: RenderBudget, text: str, arguments: Any) -> None:
    for match in _PRINTF.finditer(text):
        for number in match.groups():
            if number == "*":
                budget.allow(budget.limits.max_chars + 1, "a '*' width in % formatting")
            elif number:
                budget.allow(int(number), "a % format width")


def _check_text_method(
    budget: RenderBudget, text: str | bytes, name: str, args: tuple[Any, ...]
) -> tuple[Any, ...]:
    """Refuses a str (or bytes) method call that would build too much; returns the
    arguments to call it with (an iterator given to `join` is read once, here)."""
    if name in _PADDING and args and isinstance(args[0], int):
        budget.allow(args[0], f"{name}() width")
    elif name == "expandtabs":
        tab = args[0] if args and isinstance(args[0], int) else 8
        tabs = text.count("\t") if isinstance(text, str) else text.count(b"\t")
        budget.allow(len(text) + tabs * tab, "expandtabs()")
    elif name == "replace" and len(args) >= 2:
        budget.allow(_replaced_size(text, args[0], args[1]), "replace()")
    elif name == "join" and args:
        items = _read(budget, args[0])
        budget.allow(sum(size_of(item) for item in items) + len(text) * len(items), "join()")
        args = (items, *args[1:])
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((size_of(v) for v in args[0].values()), default=1)
        budget.allow(len(text) * max(longest, 1), "translate()")
    return args


def _check_filter(
    budget: RenderBudget,
    name: str,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[Any, ...]:
    """Refuses a built-in filter call that would build too much before it runs."""
    skip = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0
    value, options = (args[skip], args[skip + 1 :]) if len(args) > skip else (None, ())

    def option(position: int, keyword: str, default: Any) -> Any:
        return options[position] if len(options) > position else kwargs.get(keyword, default)

    if name == "center":
        budget.allow(_int(option(0, "width", 80)), "center width")
    elif name == "indent":
        width = option(0, "width", 4)
        pad = len(width) if isinstance(width, str) else _int(width)
        lines = str(value).count("\n") + 1
        budget.allow(len(str(value)) + pad * lines, "indent")
    elif name in ("slice", "batch"):
        budget.allow(_int(option(0, "slices" if name == "slice" else "linecount", 1)), name)
    elif name == "format" and isinstance(value, str):
        _check_printf(budget, value, options)
    elif name == "wordwrap":
        width, wrap = max(_int(option(0, "width", 79)), 1), option(3, "wrapstring", None)
        lines = len(str(value)) // width + str(value).count("\n") + 1
        budget.allow(len(str(value)) + lines * len(str(wrap or "\n")), "wordwrap")
    elif name == "urlize":
        extra = sum(len(str(kwargs.get(key) or "")) for key in ("target", "rel"))
        budget.allow(len(str(value)) * (1 + extra), "urlize")
    elif name == "replace" and len(options) >= 2:
        budget.allow(_replaced_size(str(value), str(options[0]), str(options[1])), "replace")
    elif name in ("join", "sum", "list") and value is not None:
        items = _read(budget, value)
        budget.allow(sum(size_of(item) for item in items) + len(items), name)
        args = (*args[:skip], items, *options)
    return args


def _read(budget: RenderBudget, iterable: Any) -> list[Any]:
    """An iterable as a list, refusing one longer than the limit while reading it."""
    if isinstance(iterable, str | bytes):
        return list(iterable)
    items = []
    for item in iterable:
        items.append(item)
        budget.allow(len(items), "a sequence")
    return items


def _replaced_size(text: Any, old: Any, new: Any) -> int:
    if not isinstance(old, type(text)) or not isinstance(new, type(text)):
        return len(text)
    count = text.count(old) if old else len(text) + 1
    return len(text) + count * max(len(new) - len(old), 0)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
