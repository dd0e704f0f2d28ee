"""The config's fields as command-line flags (rise-train, rise-replay-server, rise-actor, rise-learner).

One flag per config field, named after it, with the field's help line and default; counts accept
K/M/G suffixes and numbers fractions. TensorFlow-free, below every CLI that uses it.
"""
from __future__ import annotations

import argparse
from typing import Dict, Iterable, Optional

from rise_tf.config import (DEFAULT_ALGO, DEFAULT_SCALE, KIND_NAMES, PRESET_DESCRIPTIONS, PRESETS, SCALES, SECTIONS,
                            RunConfig, applies_to, flag_table, make_config)
from rise_runtime.envs import registry
from rise_tf.counts import parse_count, parse_real


def add_field_flag(group, section: str, field, default_note: Optional[str] = None) -> None:
    """--<field-name>, parsed to the field's type; None when not given (the config's value stays).
    default_note: what the help says the default is (default: the field's own default)."""
    text = field.metadata["help"].split(" [default:")[0] if default_note else field.metadata["help"]
    kwargs = dict(default=None, dest=f"{section}.{field.name}",
                  help=text if "[default:" in text else f"{text} [default: {default_note or field.default}]")
    kind = field.metadata.get("parse", type(field.default))
    if kind is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif kind is int:
        kwargs.update(type=parse_count, metavar="N")
    elif kind is float:
        kwargs.update(type=parse_real, metavar="X")
    else:
        kwargs["metavar"] = field.metadata.get("metavar", "NAME")
    group.add_argument(f"--{field.name.replace('_', '-')}", **kwargs)


def add_scale_flag(parser: argparse.ArgumentParser) -> None:
    defaults = ", ".join(f"{scale} for {KIND_NAMES[kind]}" for kind, scale in DEFAULT_SCALE.items())
    parser.add_argument("--scale", default=None, metavar="SCALE",
                        help=f"{' | '.join(SCALES)}: cpu sizes a run for a machine without a GPU (8 lanes, batch 32, "
                             f"50k replay, the Nature CNN, schedules of tens of thousands of agent steps: what the "
                             f"memory tasks are solved with); paper is the preset as published (BTR: 64 lanes, batch "
                             f"256, 1M replay, 200M frames). Both count agent steps, converted to the env's frames "
                             f"[default: {defaults}]")


def add_config_flags(parser: argparse.ArgumentParser, sections: Optional[Iterable[str]] = None,
                     algo: bool = True) -> None:
    """--algo (unless algo=False), --scale and one flag per field of `sections` (default: all), grouped
    by section."""
    sections = [name for name, _ in SECTIONS] if sections is None else list(sections)
    if algo:
        parser.add_argument("--algo", choices=sorted(PRESETS), default=None, metavar="ALGO",
                            help="preset: " + "; ".join(f"{name}: {text}" for name, text in PRESET_DESCRIPTIONS.items())
                                 + f" [default: {DEFAULT_ALGO}]")
    add_scale_flag(parser)
    for section in sections:
        group = parser.add_argument_group(f"{section} settings (defaults shown are the {DEFAULT_ALGO} Atari preset; "
                                          f"--print-config shows a preset's values)")
        for _, flag_section, field in flag_table():
            if flag_section == section:
                add_field_flag(group, section, field)


def add_section_flags(parser: argparse.ArgumentParser, section: str, names: Iterable[str]) -> None:
    """Flags for some fields of one section (rise-actor and rise-learner override the run's config)."""
    wanted = set(names)
    group = parser.add_argument_group(f"{section} settings (override the run's config.json)")
    for _, flag_section, field in flag_table():
        if flag_section == section and field.name in wanted:
            add_field_flag(group, section, field, default_note="the run's")


def given_settings(args) -> Dict[str, Dict[str, object]]:
    """{section: {field: value}} of the config flags given on the command line."""
    updates: Dict[str, Dict[str, object]] = {}
    for key, value in vars(args).items():
        if "." in key and value is not None:
            section, name = key.split(".")
            updates.setdefault(section, {})[name] = value
    return updates


def check_env_kind_settings(env_updates: Dict[str, object]) -> None:
    """A flag the chosen env kind does not read is an error, not silently ignored."""
    kind = registry.kind_of(env_updates.get("game") or "", env_updates.get("env_id"))
    ignored = [name for name in env_updates if not applies_to(kind, name)]
    if ignored:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in ignored)
        readers = " or ".join(sorted({KIND_NAMES[k] for name in ignored for k in registry.ENV_KINDS
                                      if applies_to(k, name)}))
        raise ValueError(f"{flags} applies to {readers}, not to {KIND_NAMES[kind]} "
                         f"({env_updates.get('env_id') or env_updates.get('game')}): drop it")


def config_from_settings(algo: str, scale: Optional[str], updates: Dict[str, Dict[str, object]]) -> RunConfig:
    """make_config from command-line settings ({section: {field: value}}), refusing env flags of
    another env kind."""
    check_env_kind_settings(updates.get("env", {}))
    return make_config(algo, updates.get("env", {}).get("game"), scale=scale, **updates)


def config_from_args(args) -> RunConfig:
    return config_from_settings(args.algo or DEFAULT_ALGO, args.scale, given_settings(args))


def check_given_settings(args) -> None:
    """Validates the sections given on the command line on their own (ValueError naming the setting),
    for commands that learn the rest of the config later (rise-actor, rise-learner: from the server)."""
    from rise_tf.config import SECTIONS

    given = given_settings(args)
    for name, kind in SECTIONS:
        if name in given:
            kind(**given[name]).validate()
