"""What users type, as the tree a settings schema validates: YAML files, ``--set KEY=VALUE``
strings, their merge, and a pydantic error as one line.

:mod:`beadseg.core.config` holds the schemas and :func:`~beadseg.core.config.load_config`; this
module turns text into nested dicts and refuses, with a :class:`ConfigError` naming the file or
the ``--set`` and the fix, what would otherwise be dropped or misread silently:

- a file that is not UTF-8 (UTF-16 and UTF-32 with a byte-order mark are read);
- a key given twice in one mapping (PyYAML keeps the last one);
- a value where a section is expected (``model: unet``), and a ``--set`` that makes one key both
  a value and a section (``--set model=unet --set model.depth=4``);
- keys with an empty part (``--set .lr=1``), and YAML nested too deeply to parse.
"""

from __future__ import annotations

import difflib
import reprlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError
from .files import read_text_file


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}  # key -> the line it is first given on
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` may be overridden on purpose
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        problem=f"the key {_short(key)} is given twice (lines {seen[key]} and {line}; "
                        "YAML would silently use the last); keep one"
                    )
                seen[key] = line
            except TypeError:
                continue  # an unhashable key: the base class reports it
        return super().construct_mapping(node, deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error as one clause: what and where (line, column)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())


def parse_yaml(text: str, where: str) -> Any:
    """``text`` parsed as YAML (safe types only; duplicate keys refused).

    Raises
    ------
    ConfigError
        Not valid YAML, or nested too deeply; the message starts with ``where``.
    """
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {_yaml_problem(exc)}") from None
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        # PyYAML's constructors raise these for well-formed but impossible values: a date
        # 2024-13-45, an int of 5000 digits, `!!float abc`, `!!timestamp x`
        problem = " ".join(str(exc).split())[:120]
        raise ConfigError(
            f"{where} is not valid YAML: a value it cannot read ({problem}); quote it"
        ) from None
    except RecursionError:
        raise ConfigError(
            f"{where} is nested too deeply to be settings; write sections of key: value lines"
        ) from None


def read_yaml(path: str | Path, what: str = "config", top_keys: str = "data:, model:, ...") -> dict:
    """The mapping a YAML file holds: ``{}`` for an empty file.

    Parameters
    ----------
    path : path
        The file: UTF-8, or UTF-16/UTF-32 with a byte-order mark.
    what : str
        What it is, for messages ("config", "search space").
    top_keys : str
        The keys it should hold, for the message when it holds no mapping.

    Raises
    ------
    ConfigError
        Missing, unreadable, not text, not valid YAML, or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        state = "is not a file" if path.exists() else "does not exist"
        raise ConfigError(f"{what} file {path} {state}; give the path of a YAML file")
    raw = parse_yaml(read_text_file(path, what, ConfigError), str(path))
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path} holds the value {_short(raw)}, not a mapping; write the {what} as {top_keys} "
            "each with its key: value lines indented under it"
        )
    return raw


def _short(value: Any, limit: int = 80) -> str:
    """``repr`` of a value users gave, cut to ``limit`` characters (a YAML alias bomb expands to
    a billion items: it must not be printed)."""
    r = reprlib.Repr()
    r.maxstring, r.maxother, r.maxlevel, r.maxdict, r.maxlist = limit, limit, 2, 4, 4
    text = r.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _set_item(tree: dict, parts: list[str], value: Any, given: str) -> None:
    """``tree[p0][p1]...[pn] = value``; a dict value is merged into a dict already there.

    Raises
    ------
    ConfigError
        An earlier item made a key on the way a value, or made the last key a section; the
        message names ``given`` (``--set 'KEY=VALUE'``, or the option).
    """

    def conflict(n: int) -> ConfigError:
        prefix = ".".join(parts[:n])
        return ConfigError(
            f"{given} conflicts with another --set of {prefix!r}: it cannot be both a value and a "
            f"section; set only the keys under it (e.g. --set {prefix}.KEY=VALUE)"
        )

    node = tree
    for i, part in enumerate(parts[:-1]):
        if node.get(part) is None:
            node[part] = {}
        elif not isinstance(node[part], dict):
            raise conflict(i + 1)
        node = node[part]
    here = node.get(parts[-1])
    if isinstance(here, dict) and not isinstance(value, dict):
        raise conflict(len(parts))
    node[parts[-1]] = merge_trees(here, value) if isinstance(here, dict) else value


def parse_overrides(items: list[str] | str | None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Turn ``["model.name=unet", "optim.lr=1e-3"]`` into a nested dict (values parsed as YAML).

    A later item wins over an earlier one for the same key.

    Parameters
    ----------
    items : list of "KEY=VALUE"
        The ``--set`` items, in order.
    options : dict, optional
        A command's own options by dotted key (``{"data.path": "DATA"}``), as values (not YAML);
        they win over the items; None values (options not given) are left out.

    Raises
    ------
    ConfigError
        An item that is not ``KEY=VALUE``, a key with an empty part, a value that is not YAML,
        or a key that two items (or an item and an option) make both a value and a section.
    """
    out: dict[str, Any] = {}
    for item in [items] if isinstance(items, str) else items or []:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"--set {_short(item)} is not KEY=VALUE (e.g. --set model.name=unet)")
        key, value = item.split("=", 1)
        parts = [p.strip() for p in key.split(".")]
        if not all(parts):
            raise ConfigError(
                f"--set {_short(item)}: the key {_short(key.strip())} is empty or has an empty part; write "
                "KEY=VALUE with a dotted key (e.g. --set optim.lr=1e-3)"
            )
        _set_item(out, parts, parse_yaml(value, f"--set {_short(item)}: the value"), f"--set {_short(item)}")
    for key, value in (options or {}).items():
        if value is not None:
            _set_item(out, key.split("."), value, f"the option for {key}")
    return out


def merge_trees(base: dict, extra: dict) -> dict:
    """``extra`` over ``base``, section by section (both already checked by :func:`check_sections`)."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge_trees(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _section(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def check_sections(tree: dict, model: type[BaseModel], source: str, prefix: str = "") -> dict:
    """``tree`` with each section of ``model`` a mapping: an empty one (``model:``) becomes ``{}``.

    Raises
    ------
    ConfigError
        A value where a section is expected (``model: unet``): naming the key and the fix
        (``model: {name: unet}``, or ``--set model.name=unet`` when ``source`` is not a file).
    """
    out = dict(tree)
    for name, field in model.model_fields.items():
        sub = _section(field.annotation)
        if sub is None or name not in out:
            continue
        key, value = prefix + name, out[name]
        if value is None:
            out[name] = {}
        elif isinstance(value, dict):
            out[name] = check_sections(value, sub, source, key + ".")
        else:
            leaf = "name" if "name" in sub.model_fields else next(iter(sub.model_fields))
            example = (value if isinstance(value, str) else _short(value)) if leaf == "name" else "..."
            fix = (
                f"write `{key}: {{{leaf}: {example}}}`"
                if source not in ("--set", "command line")
                else f"set its keys, e.g. --set {key}.{leaf}={example}"
            )
            raise ConfigError(
                f"{source}: {key} is a section (keys {', '.join(list(sub.model_fields)[:4])}, ...), "
                f"not the value {_short(value)}; {fix}"
            )
    return out


def config_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key of a settings schema (``optim.lr``, ...)."""
    out = []
    for name, f in model.model_fields.items():
        sub = _section(f.annotation)
        out += config_keys(sub, f"{prefix}{name}.") if sub is not None else [prefix + name]
    return out


#: names users bring from other tools, and the key beadseg calls them
_ALIASES = {
    "learning_rate": "lr",
    "lr_max": "lr",
    "num_epochs": "epochs",
    "n_epochs": "epochs",
    "max_epochs": "epochs",
    "batch": "batch_size",
    "arch": "name",
    "architecture": "name",
    "patience": "early_stop_patience",
    "crop": "crop_size",
    "patch_size": "crop_size",
}


def _closest(word: str, options, cutoff: float) -> str | None:
    found = difflib.get_close_matches(word, list(options), n=1, cutoff=cutoff)
    return found[0] if found else None


def _key_hint(key: str, model: type[BaseModel]) -> str:
    """``; did you mean 'x'?`` for an unknown key, else the valid keys of its section.

    The last part of the key is looked up as it is, as a name from another tool
    (``learning_rate``: ``optim.lr``, near misses too), then as a near miss of a key of its
    own section, then of any section (``predict.treshold``: ``train.threshold``); a key
    without a section may be a misspelt section (``trian``: ``train``).
    """
    keys = config_keys(model)
    section, _, leaf = key.rpartition(".")
    by_leaf: dict[str, list[str]] = {}
    for k in keys:
        by_leaf.setdefault(k.rpartition(".")[2], []).append(k)
    siblings = [k for k in keys if k.rpartition(".")[0] == section]
    word = leaf if leaf in by_leaf else None
    if word is None:
        alias = _ALIASES.get(leaf) or _ALIASES.get(_closest(leaf, _ALIASES, 0.85) or "")
        word = alias if alias in by_leaf else None
    if word is None:
        word = _closest(leaf, [k.rpartition(".")[2] for k in siblings], 0.7) or _closest(leaf, by_leaf, 0.75)
    if word is not None:
        hits = [k for k in by_leaf[word] if k.rpartition(".")[0] == section] or by_leaf[word]
        return f"; did you mean {' or '.join(map(repr, hits[:3]))}?"
    sections = sorted({k.split(".")[0] for k in keys if "." in k})
    near_section = None if section else _closest(leaf, sections, 0.6)
    if near_section is not None:
        return f"; did you mean the section {near_section!r}?"
    if siblings and section:
        return f" ({section} keys: {', '.join(k.rpartition('.')[2] for k in siblings)})"
    return " (`--print-config` lists the keys)"


def _field_at(model: type[BaseModel], loc: tuple) -> tuple[list[str], str | None]:
    """The key parts of a pydantic error location (union branches such as ``str`` left out,
    list indices kept) and the schema's description of that field."""
    parts, field = [], None
    for part in loc:
        if model is not None and isinstance(part, str) and part in model.model_fields:
            field = model.model_fields[part]
            model = _section(field.annotation)
            parts.append(part)
        elif model is None and isinstance(part, int):
            parts.append(str(part))  # an item of a list
        elif model is not None:
            parts.append(str(part))  # not in the schema (an unknown key)
    return parts, field.description if field is not None and model is None else None


def in_tree(tree: Any, loc: tuple) -> bool:
    """Whether ``tree`` holds the key path ``loc``."""
    for part in loc:
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def explain(err: ValidationError, model: type[BaseModel], source: str) -> ConfigError:
    """The first error of a pydantic validation as one line: source, key, value, what is
    expected (and what the key is, from the schema)."""
    e = err.errors()[0]
    parts, about = _field_at(model, tuple(e["loc"]))
    key = ".".join(parts)
    if e["type"] == "extra_forbidden":
        return ConfigError(f"{source}: unknown key {key!r}{_key_hint(key, model)}")
    msg = e["msg"].removeprefix("Value error, ")
    # pydantic's own messages say only what is expected: add what the key is
    about = f" ({key}: {about})" if about and e["type"] != "value_error" else ""
    return ConfigError(f"{source}: {key} = {_short(e.get('input'))} is not valid: {msg}{about}")


def validate(model: type[BaseModel], raw: dict, extra: dict, source: str, extra_source: str):
    """``model`` validated from ``extra`` merged over ``raw``; an error blames ``extra_source``
    when the offending key came from ``extra``, else ``source``."""
    raw = check_sections(raw, model, source)
    extra = check_sections(extra, model, extra_source)
    try:
        return model.model_validate(merge_trees(raw, extra))
    except ValidationError as err:
        parts, _ = _field_at(model, tuple(err.errors()[0]["loc"]))
        keys = tuple(p for p in parts if not p.isdigit())  # a list is given whole, in one place
        raise explain(err, model, extra_source if in_tree(extra, keys) else source) from None
