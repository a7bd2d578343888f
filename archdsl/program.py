"""Loading a spec: files and imports, definitions in scope, choosing and elaborating targets."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from archdsl import syntax as ast
from archdsl.diagnostics import Diagnostic, Loc, Note, Problem, Reporter, SourceMap, SpecError
from archdsl.elaborate import (
    Elaborator,
    FileScope,
    Frame,
    GraphBuilder,
    check_gan_pairing,
)
from archdsl.elaborate.training import train_section
from archdsl.graph import GAN_LOSSES, GanGraph, Graph
from archdsl.limits import Limits, raise_hint
from archdsl.lint import lint
from archdsl.names import check_class_name
from archdsl.ops import REGISTRY
from archdsl.outputs import PathRefused, open_regular
from archdsl.parser import decode, normalize_newlines, parse, prescan
from archdsl.records import Record
from archdsl.values import LayerClass, LayerValue, Skip, a_kind, with_article

Source = str | bytes | os.PathLike


GAN_SETTINGS = ("generator", "discriminator", "loss", "latent")

# Loading errors after which elaboration would report consequences, not causes.
FATAL_LOAD_CODES = frozenset({"E0001", "E0002", "E0003", "E0004", "E0101", "E0102", "E0103",
                              "E0501", "E0502", "E0503", "E0504", "E0801"})


class ParamInfo(Record):
    name: str
    type: str
    has_default: bool


class DefinitionInfo(Record):
    name: str
    kind: str
    file: str
    params: list[ParamInfo]
    loc: Loc


class Program:
    """A loaded, checked spec. `graph()` elaborates one target with chosen parameters."""

    def __init__(self, entry: str, scopes: dict[str, FileScope], sources: SourceMap,
                 limits: Limits, cache: ParseCache | None = None):
        self.entry = entry
        self.cache = cache  # remembers checks of the same definitions
        self.calls: dict[tuple, Any] | None = None  # block calls to stamp out, from the cache
        self.scopes = scopes
        self.sources = sources
        self.limits = limits
        self.warnings: list[Diagnostic] = []
        self.load_errors: list[Diagnostic] = []  # from loading; `check` reports them too
        self.load_warnings: list[Diagnostic] = []  # about the text itself (archdsl.lint)
        self.checked: dict[str, Graph | GanGraph] = {}  # what `check` elaborated, by name
        # a check that passed, remembered: the names and the warnings it left
        self._passed: tuple[list[str], list[Diagnostic]] | None = None

    def _repr_markdown_(self) -> str:
        from archdsl.notebook import program
        return program(self, "markdown")

    def _repr_html_(self) -> str:
        from archdsl.notebook import program
        return program(self, "html")

    @property
    def scope(self) -> FileScope:
        return self.scopes[self.entry]

    @property
    def definitions(self) -> list[DefinitionInfo]:
        out = []
        for name in self.scope.own:
            d = self.scope.definitions.get(name)
            if d is None:
                continue
            out.append(DefinitionInfo(
                name=d.name, kind=d.kind, file=d.file, loc=d.name_loc,
                params=[ParamInfo(name=p.name, type=p.type, has_default=p.default is not None)
                        for p in d.params]))
        return out

    @property
    def targets(self) -> list[str]:
        """Models and gans of the entry file that no other definition of the file uses."""
        own = [self.scope.definitions[n] for n in self.scope.own if n in self.scope.definitions]
        used: set[str] = set()
        for d in own:
            used |= _referenced_names(d) - {d.name}
        return [d.name for d in own if d.kind in ("model", "gan") and d.name not in used]

    def select(self, name: str | None) -> ast.Definition:
        if name is not None:
            d = self.scope.definitions.get(name)
            if d is None or d.kind not in ("model", "gan"):
                models = [n for n, x in self.scope.definitions.items()
                          if x.kind in ("model", "gan")]
                from archdsl.diagnostics import suggest
                near = suggest(name, models)
                raise SpecError([Diagnostic(
                    code="E0602", message=f"no model or gan named `{name}` in {self.entry}",
                    label=f"available: {', '.join(models) or 'none'}",
                    hint=f"did you mean `{near}`?" if near else None)], self.sources)
            return d
        targets = self.targets
        if len(targets) != 1:
            own = [n for n in self.scope.own
                   if self.scope.definitions.get(n, None) is not None
                   and self.scope.definitions[n].kind in ("model", "gan")]
            msg = (f"{self.entry} defines no model or gan" if not own else
                   f"{self.entry} defines several models: choose one with --model" if targets
                   else f"every model of {self.entry} is used by another: choose one with "
                        "--model")
            raise SpecError([Diagnostic(
                code="E0601", message=msg,
                label=f"candidates: {', '.join(targets or own)}" if own else "",
                hint="add `model Name(...) { ... }`" if not own else
                f"e.g. --model {(targets or own)[0]}")], self.sources)
        return self.scope.definitions[targets[0]]

    def graph(self, name: str | None = None, params: dict[str, Any] | None = None,
              trace: bool = False) -> Graph | GanGraph:
        """Elaborate a target (the only one, or `name`) with parameter overrides. `trace`
        also records what code generators need (`Graph.staging`)."""
        if self.load_errors:
            raise SpecError(self.load_errors, self.sources)
        defn = self.select(name)
        reporter = Reporter(self.sources)
        elab = Elaborator(reporter, self.limits, self.scopes, trace=trace, calls=self.calls)
        result: Graph | GanGraph | None = None
        try:
            values = _coerce_params(defn, params or {})
            given = elab.complete_params(defn, values, None, defn.name_loc)
            if defn.kind == "gan":
                result = self._gan(defn, given, elab, reporter)
            else:
                result = elab.model(defn, self.scopes[defn.file], given)
        except Problem as p:
            reporter.add(p.at(defn.name_loc))
        except Skip:
            pass
        except RecursionError:
            reporter.error("E0801", "the spec nests too deeply to elaborate", defn.name_loc)
        self.warnings = self.load_warnings + reporter.warnings
        reporter.raise_if_errors()
        assert result is not None
        result._origin = (self, name, params, None)
        if isinstance(result, GanGraph):
            result.generator._origin = (self, name, params, "generator")
            result.discriminator._origin = (self, name, params, "discriminator")
        for g in (result.generator, result.discriminator) if isinstance(result, GanGraph) \
                else (result,):
            g._staging = elab.staging
        return result

    def _gan(self, defn: ast.Definition, params: dict[str, Any], elab: Elaborator,
             reporter: Reporter) -> GanGraph | None:
        scope = self.scopes[defn.file]
        frame = Frame(scope, defn, GraphBuilder(defn.name, defn.file, self.limits, elab.steps), "")
        frame.env.update(params)
        parts: dict[str, tuple[Any, Loc]] = {}
        for stmt in defn.body:
            try:
                if isinstance(stmt, ast.Train):
                    frame.train = train_section(stmt, "gan", lambda e: elab.ev(e, frame),
                                                reporter)
                elif isinstance(stmt, ast.Assign) and stmt.type is None:
                    if stmt.name not in GAN_SETTINGS:
                        raise Problem("E0605", f"`{stmt.name}` is not a gan setting",
                                      loc=stmt.name_loc,
                                      label="a gan sets generator, discriminator, loss and "
                                            "latent")
                    if stmt.name in parts:
                        raise Problem("E0202", f"`{stmt.name}` set twice", loc=stmt.name_loc,
                                      notes=[Note(message="first set here",
                                                  loc=parts[stmt.name][1])])
                    parts[stmt.name] = (elab.ev(stmt.value, frame), stmt.value.loc)
                else:
                    raise Problem("E0605", "a gan holds only generator, discriminator, loss, "
                                  "latent and train", loc=stmt.loc)
            except Problem as p:
                reporter.add(p.at(stmt.loc))
            except Skip:
                pass
        graphs: dict[str, Graph] = {}
        for side in ("generator", "discriminator"):
            if side not in parts:
                reporter.error("E0603", f"the gan `{defn.name}` has no {side}", defn.name_loc,
                               hint=f"add `{side} = ModelName(...)`")
                continue
            value, loc = parts[side]
            if isinstance(value, LayerClass):
                value = elab.configure(value, (), (), ast.Name(loc, value.name), frame)
            if not isinstance(value, LayerValue) or value.cls.definition is None or \
                    value.cls.definition.kind != "model":
                reporter.error("E0603", f"the {side} must be a model", loc,
                               label="e.g. `Generator(nz=nz)`")
                continue
            sub = value.cls.definition
            before = len(reporter.errors)
            try:
                graphs[side] = elab.model(sub, self.scopes[sub.file], value.args)
            except Skip:
                pass
            if len(reporter.errors) > before:
                graphs.pop(side, None)
        loss = "nonsaturating"
        if "loss" in parts:
            loss, loc = parts["loss"]
            if loss not in GAN_LOSSES:
                reporter.error("E0701", "unknown gan loss", loc,
                               label=f"one of {', '.join(GAN_LOSSES)}")
        latent = True
        if "latent" in parts:
            latent, loc = parts["latent"]
            if not isinstance(latent, bool):
                reporter.error("E0402", "`latent` of a gan is `true` or `false`", loc,
                               label=f"this is {a_kind(latent)}",
                               hint="`latent = false`: every generator input is a condition")
        if len(graphs) == 2 and not reporter.errors:
            conditions = check_gan_pairing(graphs["generator"], graphs["discriminator"],
                                           parts["generator"][1], parts["discriminator"][1],
                                           latent)
            return GanGraph(name=defn.name, file=defn.file, params=params,
                            generator=graphs["generator"], discriminator=graphs["discriminator"],
                            loss=loss, latent=latent, conditions=conditions, train=frame.train,
                            loc=defn.name_loc)
        return None

    def check(self) -> list[str]:
        """Elaborate every model and gan of the entry file whose parameters all have
        defaults; raise one SpecError with every error found. Returns the names checked.
        A program is immutable: once a check passed, checking again answers from memory."""
        if self._passed is not None:
            names, self.warnings = self._passed
            return list(names)
        diags: list[Diagnostic] = list(self.load_errors)
        if any(d.code in FATAL_LOAD_CODES for d in diags):
            raise SpecError(diags, self.sources)  # checking now would only cascade
        load_errors, self.load_errors = self.load_errors, []
        seen = {x.key() for x in diags}
        if self.cache is not None and not diags:
            graphs, errors, warnings = self.cache.checked(self, lambda: self._elaborate(seen))
            for g in graphs.values():  # from an earlier program with the same definitions
                g._origin = (self, g.name, None, None)
                if isinstance(g, GanGraph):
                    g.generator._origin = (self, g.name, None, "generator")
                    g.discriminator._origin = (self, g.name, None, "discriminator")
        else:
            graphs, errors, warnings = self._elaborate(seen)
        self.checked.update(graphs)
        if warnings is not None:
            self.warnings = self.load_warnings + warnings
        diags += errors
        self.load_errors = load_errors
        if diags:
            raise SpecError(diags, self.sources)
        self._passed = (list(graphs), self.warnings)
        return list(graphs)

    def _elaborate(self, seen: set[tuple]) -> _Checked:
        """Elaborate every target whose parameters all have defaults: the graphs, the errors
        not `seen` before, and the warnings of the last elaboration (None without one)."""
        graphs: dict[str, Graph | GanGraph] = {}
        errors: list[Diagnostic] = []
        elaborated = False
        for d in self.definitions:
            if d.kind not in ("model", "gan") or not all(p.has_default for p in d.params):
                continue
            elaborated = True
            try:
                graphs[d.name] = self.graph(d.name)
            except SpecError as err:
                for x in err.diagnostics:
                    if x.key() not in seen:
                        seen.add(x.key())
                        errors.append(x)
        return graphs, errors, self.warnings[len(self.load_warnings):] if elaborated else None


def _coerce_params(defn: ast.Definition, params: dict[str, Any]) -> dict[str, Any]:
    names = {p.name: p for p in defn.params}
    out = {}
    for k, v in params.items():
        p = names.get(k)
        if p is None:
            from archdsl.diagnostics import suggest
            near = suggest(k, names)
            raise Problem("E0401", f"`{defn.name}` has no parameter `{k}`", loc=defn.name_loc,
                          label=f"parameters: {', '.join(names) or 'none'}",
                          hint=f"did you mean `{near}`?" if near else None)
        out[k] = _coerce(p, v)
    return out


def _coerce(p: ast.Param, v: Any) -> Any:
    if not isinstance(v, str) or p.type == "str":
        return v
    try:
        if p.type == "int":
            return int(v.replace("_", ""))
        if p.type == "float":
            return float(v)
        if p.type == "bool" and v.lower() in ("true", "false"):
            return v.lower() == "true"
    except ValueError:
        pass
    raise Problem("E0402", f"parameter `{p.name}` is {with_article(p.type)}", loc=p.loc,
                  label=f"cannot read {v!r} as {p.type}")


def _referenced_names(d: ast.Definition) -> set[str]:
    """Names `d` reads from the file's scope: not its parameters or the names it binds."""
    names: set[str] = set()
    local = {p.name for p in d.params}
    stack: list[Any] = list(d.body) + [p.default for p in d.params if p.default is not None]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Name):
            names.add(n.id)
        elif isinstance(n, (ast.Assign, ast.Input, ast.Output)):
            local.add(n.name)
        elif isinstance(n, ast.For):
            local.add(n.var)
        stack.extend(ast.children(n))
    return names - local


# ---- loading files ------------------------------------------------------------------------
_RESERVED = set(REGISTRY) | {"min", "max", "SGD", "Adam", "AdamW"}


class ParseCache:
    """What a caller that loads the same files again and again keeps between loads (a language
    server re-checking as its user types).

    Parsed files by name and text: an unchanged file is not parsed again, and in a changed one
    the items on lines the edit did not touch are kept, the very same objects, so only the
    lines between them are parsed (`_reparse`). And the outcome of the last check of each entry
    file: while every definition and constant loaded is the same object, the same limits and
    ops, `Program.check` answers from it instead of elaborating again (the same graph objects
    in `Program.checked`); while only models nothing uses changed, the check stamps out the
    block calls the last one recorded (`_block_calls`). Only files the last load read are
    kept."""

    def __init__(self) -> None:
        self._modules: dict[tuple[str, str], ast.Module] = {}
        self._used: set[tuple[str, str]] = set()
        self._latest: dict[str, tuple[str, Limits, ast.Module]] = {}  # file -> last parse
        self._checks: dict[str, tuple[tuple, list[Any], _Checked]] = {}  # entry -> last check
        # entry -> what its last check's block calls depended on, and those calls recorded
        self._calls: dict[str, tuple[tuple, dict[str, dict[str, Any]], dict]] = {}

    def parse(self, text: str, file: str, limits: Limits) -> ast.Module:
        key = (file, text)
        self._used.add(key)
        module = self._modules.get(key)
        if module is None:
            module = self._modules[key] = self._reparse(text, file, limits)
            self._latest[file] = (text, limits, module)
        return module

    def _reparse(self, text: str, file: str, limits: Limits) -> ast.Module:
        """`parse(text, file, limits)`, reusing the items of the file's last parse that lie on
        lines the edit left as they were (after the edit, only when it added or removed no
        line, as their locations would move).

        Items follow each other with nothing but space and comments between them, no token
        spans lines, and no item keyword continues an expression: so where an item's line
        holds nothing before it but its keyword (`_alone`), the text splits into what comes
        before that line and what comes after, and the lines between kept items parse on
        their own to the items a parse of the whole text finds there. Any problem there
        parses the whole text again, so errors are always the whole parse's."""
        last = self._latest.get(file)
        if last is None or last[1] != limits:
            return parse(text, file, limits)
        old, new = last[0].split("\n"), text.split("\n")
        top = 0  # lines [0, top) are the same
        while top < min(len(old), len(new)) and old[top] == new[top]:
            top += 1
        tail = 0  # so are the last `tail` lines
        while tail < min(len(old), len(new)) - top and old[-1 - tail] == new[-1 - tail]:
            tail += 1
        items = last[2].items
        # k: the text splits before items[k] (the end, for k = len(items)) at this line
        splits = {k: it.loc.line for k, it in enumerate(items) if _alone(old, it)}
        splits[len(items)] = len(old) + 1
        head, start = 0, 0  # items[:head] are kept; new lines [start, stop) are parsed
        for k in sorted(splits, reverse=True):
            code = splits[k] - 1  # the last line of code before the split: kept items end there
            while code > 0 and _comment(old[code - 1]):
                code -= 1
            if code <= top:
                head, start = k, code
                break
        rest, stop = len(items), len(new)
        if len(old) == len(new):
            for k in sorted(splits):
                if head <= k < len(items) and splits[k] - 1 >= max(start, len(old) - tail):
                    rest, stop = k, splits[k] - 1
                    break
        prescan(text, file, limits)  # the limits and characters of the whole text, first
        try:
            middle = parse("\n" * start + "\n".join(new[start:stop]), file, limits)
        except (Problem, RecursionError):
            return parse(text, file, limits)
        if middle.items and not _alone(new, middle.items[0]):
            return parse(text, file, limits)  # its first word lexed alone, not after an item
        return ast.Module(file=file, items=[*items[:head], *middle.items, *items[rest:]])

    def _block_calls(self, program: Program) -> dict:
        """The block calls the last check of this entry recorded (archdsl/elaborate/calls.py),
        while they hold: every name in every file stands for the same definition or constant,
        but for models and gans nothing uses (an edited model), which no block call reaches;
        and the same limits and ops. Otherwise a fresh record."""
        names = {file: {**scope.definitions, **scope.consts}
                 for file, scope in program.scopes.items()}
        context = (tuple(program.limits.__dict__.items()), len(REGISTRY),
                   tuple((f, tuple(n)) for f, n in names.items()))
        last = self._calls.get(program.entry)
        calls: dict = {}
        if last is not None and last[0] == context:
            changed = {name for f, n in names.items() for name, v in n.items()
                       if last[1][f][name] is not v}
            if not changed - set(program.targets):
                calls = last[2]
        self._calls[program.entry] = (context, names, calls)  # `names` keeps the keys' objects
        return calls

    def forget_unused(self) -> None:
        self._modules = {k: m for k, m in self._modules.items() if k in self._used}
        files = {file for file, _ in self._used}
        self._latest = {f: v for f, v in self._latest.items() if f in files}
        self._used = set()

    def checked(self, program: Program, check: Callable[[], _Checked]) -> _Checked:
        """`check()` of `program`, or its outcome for the same definitions, remembered."""
        key, alive = _check_key(program)
        last = self._checks.get(program.entry)
        if last is not None and last[0] == key:
            return last[2]
        program.calls = self._block_calls(program)
        outcome = check()
        self._checks[program.entry] = (key, alive, outcome)
        return outcome


def _alone(lines: list[str], item: ast.Node) -> bool:
    """Whether the item's line holds nothing before it but its keyword, followed by space.
    Lark's lexer reads the first word of a file with only the item keywords in mind, so
    `modelZ` reads as `model Z` there and as a name after an item: a split before a keyword
    that a name could continue would not parse as the whole text does."""
    keyword = item.kind if isinstance(item, ast.Definition) else \
        "import" if isinstance(item, ast.Import) else "const"
    before = lines[item.loc.line - 1][:item.loc.col - 1]  # the item's location: its name's
    return before.strip() == keyword and before[-1:].isspace()


def _comment(line: str) -> bool:
    """A line holding only space or a comment (a string never spans lines)."""
    return not line.strip() or line.lstrip().startswith("#")


# what a check found: the graphs checked, the errors, the warnings of the last elaboration
_Checked = tuple[dict[str, Graph | GanGraph], list[Diagnostic], list[Diagnostic] | None]


def _check_key(program: Program) -> tuple[tuple, list[Any]]:
    """What checking `program` depends on: every file's definitions and constants, by
    identity (each kept alive by the list returned beside the key), their names, the entry,
    the limits and the ops registered."""
    alive: list[Any] = []
    files = []
    for file, scope in program.scopes.items():
        alive += scope.definitions.values()
        alive += scope.consts.values()
        files.append((file, tuple(scope.own), tuple(scope.definitions),
                      tuple(map(id, scope.definitions.values())), tuple(scope.consts),
                      tuple(map(id, scope.consts.values())),
                      tuple(s.file for s in scope.const_scopes.values())))
    limits = tuple(program.limits.__dict__.items())
    return (program.entry, limits, len(REGISTRY), tuple(files)), alive


class Loader:
    def __init__(self, limits: Limits, roots: list[str], reporter: Reporter, sources: SourceMap,
                 overlay: Mapping[str, str] | None = None, cache: ParseCache | None = None):
        self.limits = limits
        self.roots = roots
        self.reporter = reporter
        self.sources = sources
        self.overlay = overlay or {}  # real path -> text that replaces the file's (unsaved)
        self.parse = cache.parse if cache is not None else parse
        self.scopes: dict[str, FileScope] = {}
        self.by_real: dict[str, str] = {}

    def load_text(self, display: str, real: str | None, text: str, stack: tuple[str, ...]
                  ) -> FileScope:
        text = normalize_newlines(text)
        self.sources.add(display, text)
        scope = FileScope(display)
        self.scopes[display] = scope
        if real is not None:
            self.by_real[real] = display
        try:
            module = self.parse(text, display, self.limits)
        except Problem as p:
            self.reporter.add(p.at(None))
            return scope
        except RecursionError:
            self.reporter.error("E0801", "the spec nests too deeply to parse",
                                Loc(file=display, line=1, col=1, end_line=1, end_col=2))
            return scope
        for warning in lint(module, text):
            self.reporter.add(warning)
        if not module.items:
            self.reporter.error("E0601", f"{display} defines nothing",
                                Loc(file=display, line=1, col=1, end_line=1, end_col=1),
                                label="the file is empty or holds only comments",
                                hint="add `model Name(...) { ... }`")
        first: dict[str, Loc] = {}
        for item in module.items:
            if isinstance(item, ast.Import):
                self._import(item, scope, real, stack, first)
        for item in module.items:
            if isinstance(item, ast.Definition):
                self._define(scope, item.name, item.name_loc, first, item)
            elif isinstance(item, ast.Const):
                self._define(scope, item.name, item.name_loc, first, item)
        return scope

    def _define(self, scope: FileScope, name: str, loc: Loc, first: dict[str, Loc],
                item: ast.Node) -> None:
        if name in first:
            self.reporter.error("E0202", f"`{name}` is defined twice", loc,
                                label="second definition",
                                notes=[Note(message="first defined here", loc=first[name])],
                                hint="rename one of them")
            return
        try:
            check_class_name(name, loc, "definition name")
        except Problem as p:
            self.reporter.add(p.at(loc))
            return
        if name in _RESERVED:
            self.reporter.error("E0205", f"`{name}` is a built-in name of the language", loc,
                                label="a definition cannot replace it",
                                hint=f"rename it, e.g. `My{name[:1].upper()}{name[1:]}`")
            return
        first[name] = loc
        scope.own.append(name)
        if isinstance(item, ast.Definition):
            seen: dict[str, Loc] = {}
            for p in item.params:
                try:
                    check_class_name(p.name, p.loc, "parameter name")
                except Problem as problem:
                    self.reporter.add(problem.at(p.loc))
                if p.name in seen:
                    self.reporter.error("E0202", f"parameter `{p.name}` appears twice", p.loc,
                                        notes=[Note(message="first here", loc=seen[p.name])])
                seen[p.name] = p.loc
            scope.definitions[name] = item
        else:
            assert isinstance(item, ast.Const)
            scope.consts[name] = item
            scope.const_scopes[name] = scope

    def _import(self, item: ast.Import, scope: FileScope, parent_real: str | None,
                stack: tuple[str, ...], first: dict[str, Loc]) -> None:
        if len(self.scopes) >= self.limits.max_imports:
            self.reporter.error("E0801", "too many imported files", item.loc,
                                label=f"more than {self.limits.max_imports}",
                                hint=raise_hint("max_imports"))
            return
        problem = file_name_problem(item.path)
        if problem is not None:
            self.reporter.add(problem.at(item.loc))
            return
        base = os.path.dirname(parent_real) if parent_real else self.roots[0]
        written = [os.path.join(base, item.path)]
        written += [os.path.join(r, item.path) for r in self.roots[1:]]
        allowed = [os.path.realpath(w) for w in written
                   if any(_inside(os.path.realpath(w), r) for r in self.roots)]
        if not allowed:  # decided before looking for the file: existence outside stays private
            link = next((w for w in written if os.path.islink(w)), None)
            self.reporter.error("E0503", f"`{item.path}` is outside the allowed folders",
                                item.loc, label="a symlink that leads outside the spec's folder"
                                if link else "imports stay inside the root spec's folder",
                                hint="pass more search paths to allow another folder")
            return
        real = next((c for c in allowed if os.path.exists(c)), None)
        if real is None:
            self.reporter.error("E0501", f"cannot find `{item.path}`", item.loc,
                                label="no such file next to this spec",
                                hint="imports are relative to the importing file")
            return
        if real in stack:
            names = [self.by_real.get(s, s) for s in stack[stack.index(real):]]
            cycle = " -> ".join([*names, self.by_real.get(real, real)])
            self.reporter.error("E0502", "an import cycle", item.loc, label=cycle)
            return
        display = self.by_real.get(real)
        if display is None:
            display = os.path.normpath(os.path.join(os.path.dirname(scope.file), item.path))
            text = self.overlay.get(real)
            if text is None:
                data = _read(real, self.limits, item.loc)
                if isinstance(data, Problem):
                    self.reporter.add(data.at(item.loc))
                    return
                try:
                    text = decode(data, display)
                except Problem as p:
                    self.reporter.add(p.at(item.loc))
                    return
            self.load_text(display, real, text, (*stack, real))
        imported = self.scopes[display]
        for name in imported.own:
            if name in first:
                self.reporter.error("E0202", f"`{name}` is defined twice", item.loc,
                                    label=f"imported from {display}",
                                    notes=[Note(message="first defined here", loc=first[name])])
                continue
            first[name] = item.loc
            if name in imported.definitions:
                scope.definitions[name] = imported.definitions[name]
            else:
                scope.consts[name] = imported.consts[name]
                scope.const_scopes[name] = imported


def file_name_problem(path: str) -> Problem | None:
    """Generated modules name their spec's file in docstrings and comments, so a file name
    holds no character that could end them: no quote, backslash or unprintable character."""
    bad = next((ch for ch in path if ch in '"\\' or not ch.isprintable()), None)
    if bad is None:
        return None
    return Problem("E0504", f"the file name {path!r} cannot appear in generated code",
                   label=f"it holds {bad!r}", hint="rename the file")


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:
        return False


def _read(real: str, limits: Limits, loc: Loc | None) -> bytes | Problem:
    try:
        with open_regular(real) as f:  # a FIFO swapped in after a check is refused, not read
            size = os.fstat(f.fileno()).st_size
            if size > limits.max_source_chars * 4:
                return Problem("E0801", f"the file is {size:,} bytes", loc=loc,
                               label=f"the limit is {limits.max_source_chars * 4:,}",
                               hint=raise_hint("max_source_chars"))
            return f.read()
    except PathRefused as exc:
        return Problem("E0501", f"cannot read `{os.path.basename(real)}`", loc=loc,
                       label=str(exc), hint="a spec is a regular file")
    except OSError as exc:
        return Problem("E0501", f"cannot read the file: {exc.strerror}", loc=loc)


def load_program(source: Source, *, search_paths: list[str] | tuple[str, ...] = (),
                 limits: Limits | None = None, name: str | None = None,
                 overlay: Mapping[str, str] | None = None, parse_cache: ParseCache | None = None
                 ) -> Program:
    """Parse a spec (a path, or the text itself) and everything it imports. `overlay` maps
    real paths to texts read instead of those files (an editor's unsaved buffers)."""
    overlay = overlay or {}
    limits = limits or Limits()
    sources = SourceMap()
    reporter = Reporter(sources)
    extra = [os.path.realpath(p) for p in search_paths]
    if isinstance(source, bytes):
        display = name or "<spec>"
        real = None
        roots = [os.path.realpath(os.getcwd()), *extra]
        try:
            text = decode(source, display)
        except Problem as p:
            raise SpecError([p.at(None)], sources) from None
    elif isinstance(source, os.PathLike) or (
        isinstance(source, str) and "\n" not in source and "{" not in source
        and (source.endswith(".arch") or os.path.isfile(source))
    ):
        display = os.fspath(source)
        problem = file_name_problem(os.path.basename(display))  # only the name is quoted
        if problem is not None:
            raise SpecError([problem.at(None)], sources)
        real = os.path.realpath(display)
        roots = [os.path.dirname(real), *extra]
        if real in overlay:
            text = overlay[real]
        elif not os.path.isfile(real):
            raise SpecError([Diagnostic(code="E0501", message=f"cannot find `{display}`",
                                        label="no such file")], sources)
        else:
            data = _read(real, limits, None)
            if isinstance(data, Problem):
                raise SpecError([data.at(None)], sources)
            try:
                text = decode(data, display)
            except Problem as p:
                raise SpecError([p.at(None)], sources) from None
    elif isinstance(source, str):
        display = name or "<spec>"
        real = None
        roots = [os.path.realpath(os.getcwd()), *extra]
        text = source
    else:
        raise TypeError(f"a spec is a path, text or bytes, not {type(source).__name__}")
    loader = Loader(limits, roots, reporter, sources, overlay, parse_cache)
    stack = (real,) if real else ()
    loader.load_text(display, real, text, stack)  # type: ignore[arg-type]
    program = Program(display, loader.scopes, sources, limits, parse_cache)
    program.load_errors = reporter.errors
    program.load_warnings = program.warnings = reporter.warnings
    return program
