"""Front matter: the YAML block at the top of a runbook (or Hugo's TOML one, between `+++`
lines), validated into metadata and parameters."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.annotation import MAX_TIMEOUT, NAME_PATTERN
from engine.diagnostics import DiagnosticSink, did_you_mean
from engine.duration import format_duration, parse_duration
from engine.model import Param, Target
from engine.param_types import PARAM_TYPES, TYPE_NAMES, typed_value
from engine.regexes import PatternError, compile_pattern, matches
from engine.targets import read_targets
from engine.yamlsafe import YamlDocument, YamlError, load_yaml

RUNBOOK_KEYS = (
    "title",
    "description",
    "owner",
    "tags",
    "params",
    "env",
    "shell",
    "timeout",
    "cwd",
    "targets",
    "ssh_config",
)
# Keys that mkdocs, mkdocs-material and Runme read from the same page; accepted as they are.
PAGE_KEYS = (
    "hide",
    "icon",
    "status",
    "subtitle",
    "search",
    "template",
    "comments",
    "runme",
    "skipPrompts",
)
# Keys other site generators read from the same page (Hugo and its themes, Jekyll and
# just-the-docs, Docusaurus, mkdocs-material's blog and meta plugins, Backstage TechDocs):
# kept for the site, never an error.
FOREIGN_KEYS = frozenset(
    """
    weight aliases menu menus draft date lastmod publishDate expiryDate slug url type layout
    linkTitle summary keywords categories category series images image audio videos resources
    cascade outputs markup headless isCJKLanguage sitemap build translationKey toc author
    authors bookCollapseSection bookHidden bookFlatSection bookToc bookComments
    bookSearchExclude geekdocHidden geekdocCollapseSection geekdocFlatSection geekdocToc
    permalink published excerpt excerpt_separator redirect_from redirect_to nav_order parent
    grand_parent has_children nav_exclude last_modified_date lang language
    id sidebar_position sidebar_label sidebar_class_name sidebar_custom_props displayed_sidebar
    hide_title hide_table_of_contents pagination_label pagination_next pagination_prev
    custom_edit_url parse_number_prefixes last_update toc_min_heading_level
    toc_max_heading_level unlisted
    pin links readtime updated robots social render_macros nav_title
    version license cover thumbnail
    """.split()  # noqa: SIM905 (a word list reads better as words)
)
PARAM_KEYS = ("description", "default", "choices", "pattern", "secret", "required", "type")
SHELLS = ("bash", "sh")  # sh: bash in POSIX mode; steps run in a bash session


@dataclass(slots=True)
class FrontMatter:
    """Validated front matter values; absent keys keep their defaults."""

    title: str = ""
    description: str = ""
    owner: str = ""
    tags: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    shell: str = "bash"
    cwd: str | None = None
    timeout: float | None = None
    targets: tuple[Target, ...] = ()
    ssh_config: str | None = None
    key_lines: dict[str, int] = field(default_factory=dict)


_TOML_FENCE = re.compile(r"\+{3}\s*")
_TOML_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_TOML_KEY = re.compile(
    r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)
_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)")


def toml_front_matter_end(lines: list[str]) -> int | None:
    """The 0-based line closing a TOML front matter block that opens the file (Hugo's `+++`)."""
    if not lines or not _TOML_FENCE.fullmatch(lines[0]):
        return None
    return next((n for n in range(1, len(lines)) if _TOML_FENCE.fullmatch(lines[n])), None)


def load_toml(text: str) -> YamlDocument | YamlError:
    """TOML front matter as the YAML reader gives it: the value, and each key's line."""
    import tomllib  # only Hugo pages written in TOML need it

    try:
        value = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = _TOML_AT.search(str(exc))
        message = _TOML_AT.sub("", str(exc)).strip()
        return YamlError(
            message, int(at.group(1)) - 1 if at else 0, int(at.group(2)) - 1 if at else 0
        )
    return YamlDocument(value, _toml_key_lines(text))


def _toml_key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The 0-based line of each key by its path (tables and dotted keys), first one wins."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()

    def path(dotted: str) -> tuple[str, ...]:
        return tuple(part.strip().strip("\"'") for part in dotted.split("."))

    for number, line in enumerate(text.splitlines()):
        header = _TOML_TABLE.match(line)
        key = _TOML_KEY.match(line)
        if header and not key:
            table = path(header.group(1))
            for depth in range(1, len(table) + 1):
                found.setdefault(table[:depth], number)
        elif key:
            full = table + path(key.group(1))
            for depth in range(len(table) + 1, len(full) + 1):
                found.setdefault(full[:depth], number)
    return found


def read_front_matter(
    text: str, first_line: int, sink: DiagnosticSink, toml: bool = False
) -> FrontMatter:
    """Validate the front matter text whose first line is `first_line` (1-based) of the file:
    YAML, or TOML when `toml` (the same keys either way)."""
    result = FrontMatter()
    loaded = load_toml(text) if toml else load_yaml(text)
    if isinstance(loaded, YamlError):
        sink.error(
            first_line + loaded.line,
            "front-matter-toml" if toml else "front-matter-yaml",
            f"front matter is not valid {'TOML' if toml else 'YAML'}: {loaded.message}",
            "check the quoting of values"
            if toml
            else "only plain YAML is read: no tags such as !!python/object",
            column=loaded.column + 1,
        )
        return result
    if loaded.value is None:
        return result
    if not isinstance(loaded.value, dict):
        sink.error(
            first_line, "front-matter-type", "front matter must be a mapping of keys to values"
        )
        return result

    def line(*path: str) -> int:
        found = loaded.line_of(*path)
        return first_line + (found if found is not None else 0)

    result.key_lines = {str(k): line(str(k)) for k in loaded.value}
    for key, value in loaded.value.items():
        key = str(key)
        if key in PAGE_KEYS or key in FOREIGN_KEYS:
            continue
        if key not in RUNBOOK_KEYS:
            near = [k for k in RUNBOOK_KEYS + PAGE_KEYS if _one_edit(key, k)]
            if near:
                sink.error(
                    line(key),
                    "unknown-key",
                    f"unknown front matter key '{key}'",
                    f"did you mean '{near[0]}'?",
                )
            else:
                sink.info(
                    line(key),
                    "foreign-key",
                    f"front matter key '{key}' is not read by the engine; it is kept for the site",
                )
        elif key in ("title", "description", "owner"):
            if not isinstance(value, str | int | float):
                sink.error(line(key), "front-matter-value", f"'{key}' must be text")
            else:
                setattr(result, key, str(value))
        elif key == "tags":
            tags = [value] if isinstance(value, str) else value
            if isinstance(tags, list):  # Docusaurus: a tag may be {label: ..., permalink: ...}
                tags = [t.get("label", t) if isinstance(t, dict) else t for t in tags]
            if not isinstance(tags, list) or not all(isinstance(t, str | int) for t in tags):
                sink.error(line(key), "front-matter-value", "'tags' must be a list of words")
            else:
                result.tags = tuple(str(t) for t in tags)
        elif key == "env":
            result.env = _read_env(value, line(key), sink, loaded)
        elif key == "shell":
            if value not in SHELLS:
                sink.error(
                    line(key),
                    "front-matter-value",
                    f"'shell' must be one of {', '.join(SHELLS)}, got {value!r}: steps run in"
                    " a bash session (`sh` is bash in POSIX mode)",
                    did_you_mean(str(value), SHELLS),
                )
            else:
                result.shell = str(value)
        elif key == "cwd":
            if not isinstance(value, str) or not value:
                sink.error(line(key), "front-matter-value", "'cwd' must be a directory path")
            else:
                result.cwd = value
        elif key == "timeout":
            seconds = parse_duration(value)
            if seconds is None:
                sink.error(
                    line(key),
                    "front-matter-value",
                    f"'timeout': {value!r} is not a duration",
                    "write a duration such as 30s, 10m or 1h",
                )
            elif seconds != seconds or seconds > MAX_TIMEOUT:
                sink.error(
                    line(key),
                    "front-matter-value",
                    f"'timeout': {value!r} is longer than the"
                    f" {format_duration(MAX_TIMEOUT)} a step may wait",
                )
                seconds = None
            result.timeout = seconds
        elif key == "params":
            result.params = _read_params(value, loaded, first_line, sink)
        elif key == "targets":
            result.targets = read_targets(value, lambda *p: line("targets", *p), sink)
        elif key == "ssh_config":
            if not isinstance(value, str) or not value.strip():
                sink.error(line(key), "front-matter-value", "'ssh_config' must be a file path")
            else:
                result.ssh_config = value.strip()
    return result


def _read_env(
    value: object, line: int, sink: DiagnosticSink, loaded: YamlDocument
) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        sink.error(line, "front-matter-value", "'env' must map variable names to values")
        return ()
    pairs = []
    for name, item in value.items():
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            sink.error(line, "front-matter-value", f"'env': {name!r} is not a variable name")
        elif isinstance(item, dict | list):
            sink.error(line, "front-matter-value", f"'env': {name} must be a plain value")
        else:
            written = loaded.text_of("env", name)
            pairs.append((name, "" if item is None else written or _text(item)))
    return tuple(pairs)


def _read_params(
    value: object, loaded: YamlDocument, first_line: int, sink: DiagnosticSink
) -> tuple[Param, ...]:
    def line(*path: str) -> int:
        found = loaded.line_of(*path)
        return first_line + (found if found is not None else 0)

    if not isinstance(value, dict):
        sink.error(
            line("params"), "front-matter-value", "'params' must map names to their settings"
        )
        return ()
    params = []
    for name, spec in value.items():
        name = str(name)
        at = line("params", name)
        if not NAME_PATTERN.match(name):
            sink.error(
                at,
                "param-name",
                f"parameter name '{name}' is not usable in templates",
                "use letters, digits and '_', not starting with a digit",
            )
            continue
        if isinstance(spec, list):
            sink.error(at, "param-value", f"'{name}' must be a mapping of settings or a value")
            continue
        if isinstance(spec, dict):
            written = {
                str(k): loaded.text_of("params", name, str(k)) for k in ("default", "choices")
            }
            written.update(
                {
                    f"choices.{i}": loaded.text_of("params", name, "choices", str(i))
                    for i in range(len(spec.get("choices") or []))
                    if isinstance(spec.get("choices"), list)
                }
            )
        else:
            # `name: value` is shorthand for a default value.
            written = {"default": loaded.text_of("params", name)}
            spec = {} if spec is None else {"default": spec}
        params.append(
            _read_param(name, spec, written, at, functools.partial(line, "params", name), sink)
        )
    return tuple(params)


def _read_param(
    name: str,
    spec: dict[str, object],
    written: dict[str, str | None],
    at: int,
    key_line: Callable[[str], int],
    sink: DiagnosticSink,
) -> Param:
    """One parameter's settings; values are read as the author wrote them, typed by `type`."""
    kind = spec.get("type", "str")
    if kind not in PARAM_TYPES:
        sink.error(
            key_line("type"),
            "param-value",
            f"'{name}': 'type' must be one of {', '.join(PARAM_TYPES)}, got {kind!r}",
            did_you_mean(str(kind), PARAM_TYPES),
        )
        kind = "str"
    for key in spec:
        if key not in PARAM_KEYS:
            sink.error(
                key_line(str(key)),
                "unknown-key",
                f"unknown key '{key}' in parameter '{name}'",
                did_you_mean(str(key), PARAM_KEYS),
            )
    default = spec.get("default")
    if isinstance(default, dict | list):
        sink.error(key_line("default"), "param-value", f"'{name}': 'default' must be a plain value")
        default = None
    default_text = None
    if default is not None:
        default_text = typed_value(written.get("default") or _text(default), kind)
        if default_text is None:
            sink.error(
                key_line("default"),
                "param-default",
                f"default {written.get('default') or _text(default)!r} of '{name}'"
                f" is not a {TYPE_NAMES[kind]}",
            )
    choices_value = spec.get("choices", [])
    if not isinstance(choices_value, list) or any(
        isinstance(c, dict | list) for c in choices_value
    ):
        sink.error(
            key_line("choices"), "param-value", f"'{name}': 'choices' must be a list of values"
        )
        choices_value = []
    choices = tuple(
        typed_value(written.get(f"choices.{i}") or _text(c), kind) or _text(c)
        for i, c in enumerate(choices_value)
    )
    pattern = spec.get("pattern")
    if pattern is not None:
        pattern = str(pattern)
        try:
            compile_pattern(pattern)
        except PatternError as exc:
            sink.error(key_line("pattern"), "param-value", f"'{name}': pattern {exc}")
            pattern = None
    secret, required = spec.get("secret", False), spec.get("required", default is None)
    for key, flag in (("secret", secret), ("required", required)):
        if not isinstance(flag, bool):
            sink.error(key_line(key), "param-value", f"'{name}': '{key}' must be true or false")
    if default_text is not None:
        if choices and default_text not in choices:
            sink.error(
                key_line("default"),
                "param-default",
                f"default {default_text!r} of '{name}' is not one of its choices",
                f"choose one of: {', '.join(choices)}",
            )
        if pattern and not matches(pattern, default_text):
            sink.error(
                key_line("default"),
                "param-default",
                f"default {default_text!r} of '{name}' does not match its pattern {pattern!r}",
            )
    description = spec.get("description", "")
    return Param(
        name=name,
        line=at,
        description=str(description) if description is not None else "",
        default=default_text,
        choices=choices,
        pattern=pattern,
        secret=secret is True,
        required=required is True,
        type=kind,
    )


def _one_edit(word: str, key: str) -> bool:
    """Whether `word` is one insertion, deletion, substitution or swap away from `key`."""
    if word == key or abs(len(word) - len(key)) > 1:
        return False
    if len(word) == len(key):
        diff = [i for i, (a, b) in enumerate(zip(word, key, strict=True)) if a != b]
        return len(diff) == 1 or (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and word[diff[0]] == key[diff[1]]
            and word[diff[1]] == key[diff[0]]
        )
    short, long = sorted((word, key), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
