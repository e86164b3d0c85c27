"""Safe YAML loading with line numbers: the only place the parser touches PyYAML.

Uses libyaml's safe loader when present. Tags such as `!!python/object` are refused by the
safe constructor, so nothing in a runbook is ever executed while it is read.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import yaml


@dataclass(frozen=True, slots=True)
class YamlError:
    """Why a YAML text could not be loaded; line and column are 0-based within that text."""

    message: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A loaded YAML value and the 0-based line of every mapping key, by its path of keys.

    `scalars` keeps each plain scalar's text as written, by the same paths, so a value YAML 1.1
    would change (`1.10` → 1.1, `0644` → 420, `NO` → false, `12:30` → 750) can be read as text.
    """

    value: object
    key_lines: dict[tuple[str, ...], int]
    scalars: dict[tuple[str, ...], str] = field(default_factory=dict)

    def line_of(self, *path: str) -> int | None:
        return self.key_lines.get(path)

    def text_of(self, *path: str) -> str | None:
        """The scalar at `path` as the author wrote it (None when it is not a plain scalar)."""
        return self.scalars.get(path)


def load_yaml(text: str) -> YamlDocument | YamlError:
    """Load one YAML document safely; an error says where, never raises."""
    import yaml  # on first use: a runbook without front matter never needs it (~9 ms)

    loader = _safe_loader()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(None, {})
        value = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        return YamlError(problem, mark.line if mark else 0, mark.column if mark else 0)
    except yaml.YAMLError as exc:
        return YamlError(str(exc).splitlines()[0], 0, 0)
    except (ValueError, TypeError, RecursionError) as exc:
        return YamlError(str(exc) or type(exc).__name__, 0, 0)
    finally:
        loader.dispose()
    key_lines: dict[tuple[str, ...], int] = {}
    scalars: dict[tuple[str, ...], str] = {}
    _collect_key_lines(node, (), key_lines, scalars)
    return YamlDocument(value, key_lines, scalars)


@functools.cache
def _safe_loader() -> type:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's when PyYAML has it


def _collect_key_lines(
    node: yaml.Node,
    path: tuple[str, ...],
    out: dict[tuple[str, ...], int],
    scalars: dict[tuple[str, ...], str],
) -> None:
    import yaml

    if len(path) > 4:
        return
    if isinstance(node, yaml.ScalarNode):
        if node.tag != "tag:yaml.org,2002:null" or node.value not in (
            "",
            "~",
            "null",
            "Null",
            "NULL",
        ):
            scalars.setdefault(path, node.value)
    elif isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key_path = (*path, str(key_node.value))
                out.setdefault(key_path, key_node.start_mark.line)
                _collect_key_lines(value_node, key_path, out, scalars)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            key_path = (*path, str(index))
            out.setdefault(key_path, item.start_mark.line)
            _collect_key_lines(item, key_path, out, scalars)
