"""Fence info strings: the language, and the annotation that turns a block into a step.

    ```bash {id: restore, needs: [stop-api], timeout: 30m, confirm: danger}

The annotation is a YAML flow mapping; JSON works too, and so do Runme's attributes
(`{"name": "x"}` or `{ name=x excludeFromRunAll=true }`).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from engine.diagnostics import DiagnosticSink, did_you_mean
from engine.duration import format_duration, parse_duration
from engine.model import Confirm, Expect
from engine.yamlsafe import YamlDocument, load_yaml

SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "zsh"})
KNOWN_INTERPRETERS = {
    "python": "python3",
    "python3": "python3",
    "py": "python3",
    "node": "node",
    "javascript": "node",
    "js": "node",
    "ruby": "ruby",
    "perl": "perl",
}
ANNOTATION_KEYS = (
    "id",
    "run",
    "needs",
    "when",
    "confirm",
    "timeout",
    "retries",
    "retry_delay",
    "on_failure",
    "expect",
    "interactive",
    "follow",
    "cwd",
    "env",
    "capture",
    "interpreter",
    "target",
    "forks",
    "serial",
)
# Runme cell attributes: `name`, `excludeFromRunAll`, `background` (a process left running: a
# follow step) and `promptEnv` are translated, the rest are Runme's own.
RUNME_KEYS = frozenset(
    {
        "name",
        "excludeFromRunAll",
        "background",
        "closeTerminalOnSuccess",
        "mimeType",
        "promptEnv",
        "category",
        "terminalRows",
        "skipPrompts",
    }
)
ID_PATTERN = re.compile(r"^\w[\w.-]*$")
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ATTRIBUTE_LIST = re.compile(r"\{\s*(?:\.?[A-Za-z][\w+-]*\s*)?(?:\.[A-Za-z][\w-]*\s*)*\}")
# Beyond these a step would wait or repeat for longer than any run: surely a typing mistake.
MAX_TIMEOUT = 7 * 86400.0
MAX_RETRIES = 100
MAX_RETRY_DELAY = 86400.0
MAX_FORKS = 500
_RUNME_PAIR = re.compile(r"^([A-Za-z_][\w-]*)=(.*)$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True, slots=True)
class FenceInfo:
    """A fence's info string split into language, annotation text and anything else."""

    language: str
    annotation: str | None
    annotation_column: int
    extra: str
    classes: tuple[str, ...] = ()


def split_info(info: str) -> FenceInfo:
    """Split `bash {id: x} title="y"` into its language, `{...}` annotation and the rest."""
    info = info.strip()
    match = re.match(r"[^\s{]*", info)
    language = match.group(0) if match else ""
    rest_start = len(language)
    brace = info.find("{", rest_start)
    if brace < 0:
        return FenceInfo(language.lower(), None, 0, info[rest_start:].strip())
    end = _matching_brace(info, brace)
    annotation = info[brace:] if end < 0 else info[brace : end + 1]
    extra = (info[rest_start:brace] + ("" if end < 0 else info[end + 1 :])).strip()
    classes = _ATTRIBUTE_LIST.fullmatch(annotation)
    if classes:
        # Pandoc and kramdown attributes: ```bash {.line-numbers}```, ```{bash}```, ```{.bash}```
        words = annotation[1:-1].split()
        if not language:
            language = words.pop(0).lstrip(".")
        if all(w.startswith(".") for w in words):
            return FenceInfo(language.lower(), None, 0, extra, tuple(w[1:] for w in words))
    return FenceInfo(language.lower(), annotation, brace, extra)


SECTION_KEYS = ("target",)
_MAPPING_START = re.compile(r"\{\s*[\"']?([A-Za-z_][\w-]*)[\"']?\s*:")


def split_heading(text: str) -> tuple[str, str | None]:
    """A heading's text and its annotation: a flow mapping ending the heading whose first
    key is a section's key or close to one (`Restart the web tier {target: web}`, and
    `{targte: web}` to be told about). Attribute lists (`{#id}`, `{: .class}`), braces
    inside the title and a title ending in an example (`Payload {"id": 1}`) are left alone."""
    stripped = text.rstrip()
    for found in _MAPPING_START.finditer(stripped):
        if _matching_brace(stripped, found.start()) != len(stripped) - 1:
            continue
        key = found.group(1)
        if key in SECTION_KEYS or did_you_mean(key, SECTION_KEYS):
            return stripped[: found.start()].rstrip(), stripped[found.start() :]
    return text, None


def annotate_section(annotation: str, line: int, column: int, sink: DiagnosticSink) -> str | None:
    """A heading's annotation checked: the target its section's steps run on."""
    read = read_annotation(annotation)
    if isinstance(read, str):
        sink.error(
            line,
            "annotation-syntax",
            read,
            "write a YAML flow mapping such as {target: web}",
            column=column,
        )
        return None
    target = None
    for key, value in read.items():
        at = column + _key_offset(annotation, key)
        if key not in SECTION_KEYS:
            sink.error(
                line,
                "unknown-key",
                f"unknown key '{key}' in a section's annotation",
                did_you_mean(key, SECTION_KEYS) or "a section's annotation takes: target",
                column=at,
            )
        elif not isinstance(value, str) or not value.strip():
            sink.error(
                line,
                "annotation-value",
                f"'target': expected a non-empty string, got {value!r}",
                column=at,
            )
        else:
            target = value.strip()
    return target


def _matching_brace(text: str, start: int) -> int:
    depth, quote = 0, ""
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index
    return -1


def read_annotation(text: str) -> dict[str, object] | str:
    """The annotation as a mapping, or a message saying why it is not one."""
    loaded = load_yaml(text)
    if isinstance(loaded, YamlDocument) and isinstance(loaded.value, dict):
        mapping = {str(k): v for k, v in loaded.value.items()}
        if isinstance(mapping.get("env"), dict):  # values as written: 0644 stays 0644
            mapping["env"] = {
                k: _written(loaded, v, "env", str(k)) for k, v in mapping["env"].items()
            }
        # Runme's `{ name=x interactive=false }` reads as YAML keys without values.
        if not any("=" in k and v is None for k, v in mapping.items()):
            return mapping
    runme = _read_runme_pairs(text)
    if runme is not None:
        return runme
    if isinstance(loaded, YamlDocument):
        return "the annotation is not a mapping"
    return f"the annotation is not a YAML flow mapping: {loaded.message}"


def _written(loaded: YamlDocument, value: object, *path: str) -> object:
    """A plain scalar's text as written, for values YAML 1.1 would change (1.10, 0644, NO)."""
    if isinstance(value, dict | list) or value is None:
        return value
    text = loaded.text_of(*path)
    return value if text is None else text


def _read_runme_pairs(text: str) -> dict[str, object] | None:
    inner = text.strip()
    if not (inner.startswith("{") and inner.endswith("}")):
        return None
    try:
        words = shlex.split(inner[1:-1])
    except ValueError:
        return None
    pairs = [_RUNME_PAIR.match(word) for word in words]
    if not words or not all(pairs):
        return None
    return {m.group(1): m.group(2) for m in pairs if m}


@dataclass(slots=True)
class StepAttributes:
    """Validated annotation values, ready to become a Step's fields."""

    is_step: bool = False
    id: str | None = None
    run: bool = True
    needs: tuple[str, ...] = ()
    when: str | None = None
    confirm: Confirm = Confirm.ASK
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 0.0
    on_failure: str = "abort"
    expect: tuple[Expect, ...] = ()
    interactive: bool = False
    follow: bool = False
    prompt_env: bool | None = None  # Runme's promptEnv: exported values asked (True) or never
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    capture: str | None = None
    interpreter: str | None = None
    target: str | None = None
    forks: int | None = None
    serial: int | None = None
    key_columns: dict[str, int] = field(default_factory=dict)


def annotate(info: FenceInfo, line: int, info_column: int, sink: DiagnosticSink) -> StepAttributes:
    """Validate a fence's annotation and decide whether the block is a step.

    `info_column` is the 1-based column where the info string starts on the fence line.
    """
    attrs = StepAttributes()
    raw: dict[str, object] = {}
    if info.annotation is not None:
        column = info_column + info.annotation_column
        if not info.annotation.rstrip().endswith("}"):
            sink.error(
                line, "annotation-syntax", "the annotation's '{' is never closed", column=column
            )
        else:
            read = read_annotation(info.annotation)
            if isinstance(read, str):
                sink.error(
                    line,
                    "annotation-syntax",
                    read,
                    "write a YAML flow mapping such as {id: deploy, timeout: 5m}",
                    column=column,
                )
            else:
                raw = read
                attrs.key_columns = {key: column + _key_offset(info.annotation, key) for key in raw}
    _apply(attrs, raw, info, line, sink)
    return attrs


def _key_offset(annotation: str, key: str) -> int:
    match = re.search(r"(?<![\w-])[\"']?" + re.escape(key) + r"[\"']?\s*[:=]", annotation)
    return match.start() if match else 0


def _apply(
    attrs: StepAttributes,
    raw: dict[str, object],
    info: FenceInfo,
    line: int,
    sink: DiagnosticSink,
) -> None:
    def col(key: str) -> int:
        return attrs.key_columns.get(key, 1)

    def bad(key: str, message: str, hint: str | None = None) -> None:
        sink.error(line, "annotation-value", f"'{key}': {message}", hint, column=col(key))

    run_given: bool | None = None
    for key, value in raw.items():
        if key in ("id", "name"):
            if not isinstance(value, str | int) or not ID_PATTERN.match(str(value)):
                bad(key, f"{value!r} is not a valid step id", "use letters, digits, '-', '_', '.'")
            else:
                attrs.id = str(value)
        elif key in ("run", "excludeFromRunAll"):
            flag = _as_bool(value)
            if flag is None:
                bad(key, f"expected true or false, got {value!r}")
            else:
                run_given = (not flag) if key == "excludeFromRunAll" else flag
                attrs.key_columns.setdefault("run", col(key))
        elif key == "needs":
            needs = [value] if isinstance(value, str) else value
            if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
                bad(key, "expected a step id or a list of step ids")
            else:
                attrs.needs = tuple(needs)
        elif key in ("forks", "serial"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                bad(key, f"expected a whole number of hosts (1 or more), got {value!r}")
            elif value > MAX_FORKS:
                bad(key, f"{value} is more than the {MAX_FORKS} hosts a step may run on at once")
            else:
                setattr(attrs, key, value)
        elif key in ("when", "cwd", "interpreter", "target"):
            if not isinstance(value, str) or not value.strip():
                bad(key, f"expected a non-empty string, got {value!r}")
            else:
                setattr(attrs, key, value.strip())
        elif key == "confirm":
            confirm = _as_confirm(value)
            if confirm is None:
                bad(key, f"expected true, false or danger, got {value!r}")
            else:
                attrs.confirm = confirm
        elif key in ("timeout", "retry_delay"):
            seconds = parse_duration(value)
            limit = MAX_TIMEOUT if key == "timeout" else MAX_RETRY_DELAY
            if seconds is None or seconds != seconds:  # NaN from `.nan`
                bad(key, f"{value!r} is not a duration", "write a duration such as 30s, 10m or 1h")
            elif seconds > limit:
                bad(
                    key,
                    f"{value!r} is longer than the {format_duration(limit)} a step may wait",
                    "write a duration such as 30s, 10m or 1h",
                )
            else:
                setattr(attrs, key, seconds)
        elif key == "retries":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                bad(key, f"expected a whole number of retries, got {value!r}")
            elif value > MAX_RETRIES:
                bad(key, f"{value} retries is more than the {MAX_RETRIES} a step may have")
            else:
                attrs.retries = value
        elif key == "on_failure":
            if not isinstance(value, str) or not value.strip():
                bad(key, "expected abort, stop, continue, ask, or a step or section id")
            else:
                attrs.on_failure = value.strip()
        elif key == "expect":
            attrs.expect = _read_expect(value, line, bad)
        elif key == "promptEnv" and str(value).strip().lower() == "auto":
            continue  # Runme's default: the engine's own way (placeholders and unset $VARS)
        elif key in ("interactive", "follow", "background", "promptEnv"):
            flag = _as_bool(value)
            if flag is None:
                bad(key, f"expected true or false, got {value!r}")
            elif key == "promptEnv":
                attrs.prompt_env = flag
            elif key == "interactive":
                attrs.interactive = flag
            else:
                attrs.follow = flag
                attrs.key_columns.setdefault("follow", col(key))  # an inference keeps off
        elif key == "env":
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and NAME_PATTERN.match(k) for k in value
            ):
                bad(key, "expected a mapping of variable names to values")
            else:
                attrs.env = tuple((k, _scalar_text(v)) for k, v in value.items())
        elif key == "capture":
            if not isinstance(value, str) or not NAME_PATTERN.match(value):
                bad(key, f"{value!r} is not a valid variable name", "use letters, digits and '_'")
            else:
                attrs.capture = value
        elif key in RUNME_KEYS:
            continue
        else:
            hint = did_you_mean(key, ANNOTATION_KEYS)
            if ":" in key and raw[key] is None:
                hint = "put a space after the colon: " + key.replace(":", ": ", 1)
            sink.error(
                line, "unknown-key", f"unknown annotation key '{key}'", hint, column=col(key)
            )
    _decide_step(attrs, info, run_given, line, sink)


def _decide_step(
    attrs: StepAttributes, info: FenceInfo, run_given: bool | None, line: int, sink: DiagnosticSink
) -> None:
    if info.language in SHELL_LANGUAGES:
        attrs.is_step = True
        attrs.run = run_given is not False
        return
    if attrs.interpreter is None and run_given is True:
        known = KNOWN_INTERPRETERS.get(info.language)
        if known is None:
            sink.error(
                line,
                "no-interpreter",
                f"no interpreter is known for '{info.language or 'plain'}' blocks",
                "add an interpreter, e.g. {interpreter: 'psql -d app'}",
                column=attrs.key_columns.get("run", 1),
            )
            return
        attrs.interpreter = known
    if attrs.interpreter is not None:
        attrs.is_step = True
        attrs.run = run_given is not False
    elif info.annotation is not None and attrs.key_columns:
        sink.warning(
            line,
            "not-a-step",
            f"this '{info.language or 'plain'}' block is not a step, so its annotation is ignored",
            "add `interpreter: ...` (or `run: true` for python3, node, ruby, perl) to run it",
        )


_EXPECT_KEYS = ("prompt", "send", "secret", "multiline")


def _read_expect(value: object, line: int, bad) -> tuple[Expect, ...]:  # type: ignore[no-untyped-def]
    items = value
    if isinstance(value, dict):
        items = [{"prompt": k, "send": v} for k, v in value.items()]
    if not isinstance(items, list):
        bad("expect", "expected a list of {prompt: regex, send: text}")
        return ()
    result: list[Expect] = []
    for item in items:
        if not isinstance(item, dict) or "prompt" not in item or "send" not in item:
            bad("expect", f"{item!r} needs both 'prompt' and 'send'")
            continue
        unknown = set(item) - set(_EXPECT_KEYS)
        if unknown:
            name = sorted(map(str, unknown))[0]
            bad(
                "expect",
                f"unknown key '{name}' in an expect item",
                did_you_mean(name, _EXPECT_KEYS),
            )
            continue
        prompt = _scalar_text(item["prompt"])
        try:
            re.compile(prompt)
        except re.error as exc:
            bad("expect", f"prompt {prompt!r} is not a valid regular expression: {exc}")
            continue
        result.append(
            Expect(
                prompt,
                _scalar_text(item["send"]),
                line,
                _as_bool(item.get("secret", False)) is True,
                _as_bool(item.get("multiline", False)) is True,
            )
        )
    return tuple(result)


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None


def _as_confirm(value: object) -> Confirm | None:
    if isinstance(value, str) and value.strip().lower() == "danger":
        return Confirm.DANGER
    flag = _as_bool(value)
    if flag is None:
        return None
    return Confirm.ASK if flag else Confirm.NO


def _scalar_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
