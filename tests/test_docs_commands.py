"""The command lines in README.md, docs/*.md and docs/training/*.md name what exists: every option of an `infogan`
subcommand is one of that subcommand's parser, every option of a `scripts/*.py` or `benchmarks/*.py` invocation is
one of that script's `add_argument`s, every `make` target is in the Makefile, every `section.key` is a config setting
(or an old name the config still reads), every `--set` of a new run on a named config loads, and every variable of
docs/service.md's settings table is a service setting with the stated plain-number default.

Only code is read (fenced blocks, indented code lines and inline `code` spans), never prose, so a sentence cannot
fail it. Offline, no subprocess, about a second once torch is imported."""

from __future__ import annotations

import argparse
import ast
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs" / "training").glob("*.md"))]
SUBCOMMANDS = ("train", "evaluate", "export", "data", "serve", "site")
# `infogan train`, `python -m training train`, `torchrun ... -m training train`: the subcommand and what follows it
INFOGAN = re.compile(rf"(?:\binfogan|-m training) ({'|'.join(SUBCOMMANDS)})\b(.*)")
SCRIPT = re.compile(r"(?<![\w/])((?:scripts|benchmarks)/\w+\.py)\b(.*)")
# where a shell command ends: a comment, another command joined to it
END = re.compile(r"\s#|\s(?:&&|\|\||\||;)\s")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
SECTIONS = ("data", "model", "loss", "optim", "train")
# `train.restarts`, `loss.invariance.contrast`; not a path's tail or a file (`training/data.py`, `train.txt`)
KEY = re.compile(rf"(?<![\w./-])({'|'.join(SECTIONS)})\.([a-z_]\w*)((?:\.[a-z_]\w*)?)(?![\w/])")
FILE_SUFFIXES = {"py", "txt", "toml", "json", "jsonl", "md", "sh", "yml", "yaml", "png", "npz", "pt", "onnx"}


def code_snippets(path: Path) -> list[tuple[int, str]]:
    """(line, text) of each fenced block line and indented code line (backslash continuations joined) and of each
    inline code span (its whitespace, line breaks too, as single spaces)."""
    lines = path.read_text().splitlines()
    found: list[tuple[int, str]] = []
    prose: list[str] = []
    fenced, previous_blank, i = False, True, 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fenced = not fenced
            prose.append("")
            i += 1
            continue
        indented = line.startswith("    ") and not line.lstrip().startswith(("-", "|", "*"))
        if fenced or (indented and (previous_blank or (found and found[-1][0] == i))):
            start, text = i + 1, line.strip()
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                prose.append("")
                text = text[:-1] + " " + lines[i].strip()
            found.append((start, text))
            prose.append("")
        else:
            prose.append(line)
        previous_blank = not line.strip()
        i += 1
    text = "\n".join(prose)
    for m in re.finditer(r"`([^`\n]+(?:\n[^`\n]+)*)`", text):
        found.append((text.count("\n", 0, m.start()) + 1, " ".join(m.group(1).split())))
    return sorted(found)


def all_snippets() -> list[tuple[str, str]]:
    return [(f"{p.relative_to(ROOT)}:{n}", s) for p in DOCS for n, s in code_snippets(p)]


def command_tail(rest: str) -> str:
    """What follows a command name up to the end of that command (a comment, `&&`, a pipe, the next `infogan`)."""
    rest = END.split(rest)[0]
    return re.split(rf"\binfogan (?:{'|'.join(SUBCOMMANDS)})\b", rest)[0]


def infogan_commands() -> list[tuple[str, str, str]]:
    """(where, subcommand, its arguments as written) of every `infogan <subcommand>` in a code snippet."""
    return [
        (where, m.group(1), command_tail(m.group(2))) for where, text in all_snippets() for m in INFOGAN.finditer(text)
    ]


def subcommand_options() -> dict[str, set[str]]:
    from training.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    return {name: {o for a in sub._actions for o in a.option_strings} for name, sub in subs.items()}


def script_options(path: Path) -> set[str]:
    """Every option string given to an add_argument call in the script's source (read, not run)."""
    options = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            options |= {a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("--")}
    return options


def test_the_docs_have_commands_to_check():
    """The reader finds the commands (a broken reader would pass every other test here with nothing checked)."""
    commands = infogan_commands()
    assert len(commands) > 100 and {sub for _, sub, _ in commands} == set(SUBCOMMANDS)
    assert any("--max-steps 200" in args for _, sub, args in commands if sub == "train")


def test_every_infogan_option_in_the_docs_is_an_option_of_its_subcommand():
    options = subcommand_options()
    bad = [
        f"{where}: infogan {sub} {option}"
        for where, sub, args in infogan_commands()
        for option in OPTION.findall(args)
        if option not in options[sub]
    ]
    assert not bad, "options the docs give that the CLI does not have:\n" + "\n".join(bad)


def test_every_script_and_benchmark_option_in_the_docs_exists():
    bad, seen = [], {}
    for where, text in all_snippets():
        for m in SCRIPT.finditer(text):
            path = ROOT / m.group(1)
            if not path.is_file():
                bad.append(f"{where}: {m.group(1)} does not exist")
                continue
            known = seen.setdefault(path, script_options(path))
            bad += [f"{where}: {m.group(1)} {o}" for o in OPTION.findall(command_tail(m.group(2))) if o not in known]
    assert not bad, "script options the docs give that the scripts do not have:\n" + "\n".join(bad)


def test_every_make_target_in_the_docs_exists():
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
    bad = [f"{where}: make {t}" for where, text in all_snippets() for t in re.findall(r"\bmake ([a-z][\w-]*)", text)]
    bad = [b for b in bad if b.rsplit(" ", 1)[1] not in targets]
    assert not bad, "make targets the Makefile does not have:\n" + "\n".join(bad)


def test_every_config_key_in_the_docs_is_a_setting():
    import dataclasses
    import inspect

    from training.augment import PARAMS
    from training.config import REMOVED, RENAMED, Config
    from training.disentanglement import sample_sizes
    from training.networks import ARCHITECTURES

    cfg = Config()
    widths = {p for f in ARCHITECTURES.values() for p in list(inspect.signature(f).parameters)[3:]}
    tables = {"model.widths": widths, "loss.invariance": set(PARAMS), "train.metrics_sizes": set(sample_sizes())}
    bad = []
    for where, text in all_snippets():
        for section, key, sub in KEY.findall(text):
            name = f"{section}.{key}"
            if key in FILE_SUFFIXES or name in RENAMED or name in REMOVED:  # a file; an old name the config reads
                continue
            fields = {f.name for f in dataclasses.fields(getattr(cfg, section))}
            if key not in fields:
                bad.append(f"{where}: {name}")
            elif sub and sub[1:] not in tables.get(name, ()):
                bad.append(f"{where}: {name}{sub}")
    assert not bad, "config keys the docs name that training/config.py does not have:\n" + "\n".join(bad)


def new_runs_with_settings() -> list[tuple[str, str, list[str]]]:
    """(where, config, its --set values) of each `infogan train CONFIG ... --set ...` that names a shipped config."""
    from training.config import CONFIG_DIR

    runs = []
    for where, sub, args in infogan_commands():
        if sub != "train" or "--set" not in args:
            continue
        try:
            words = shlex.split(args.replace("...", ""))
        except ValueError:  # a placeholder with a quote in it: not a command to load
            continue
        if not words or not (CONFIG_DIR / f"{words[0]}.toml").is_file():
            continue  # --resume RUN (the run's own config), or a placeholder such as CONFIG
        runs.append((where, words[0], [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--set"]))
    return runs


def test_every_documented_new_run_with_settings_loads():
    """`--set` values are TOML; a command the docs show for a new run must load with them (types, ranges, the
    architecture's width keywords, the latent spec's code names)."""
    from training.config import load_config

    runs = new_runs_with_settings()
    assert runs, "no `infogan train CONFIG --set ...` found in the docs"
    bad = []
    for where, config, settings in runs:
        try:
            load_config(config, settings)
        except (ValueError, FileNotFoundError) as e:
            bad.append(f"{where}: infogan train {config} {' '.join('--set ' + s for s in settings)}: {e}")
    assert not bad, "documented runs whose settings do not load:\n" + "\n".join(bad)


def service_settings_rows() -> list[tuple[list[str], str]]:
    """(variables, default cell) of each row of docs/service.md's "Settings" table."""
    text = (ROOT / "docs" / "service.md").read_text()
    table = text.split("## Settings", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1:3] for line in table.splitlines()[3:] if line.startswith("|")]
    return [(re.findall(r"`([A-Z][A-Z_]+)`", names), default.strip()) for names, default in rows]


def test_every_service_setting_in_the_docs_is_read_with_that_default():
    from backend.core.config import Settings

    fields = Settings.model_fields
    rows = service_settings_rows()
    assert len(rows) >= 6 and all(names for names, _ in rows)
    bad = []
    for names, default in rows:
        for name in names:
            if name.lower() not in fields:
                bad.append(f"docs/service.md: {name} is not a setting of backend/core/config.py")
            elif re.fullmatch(r"\d+(\.\d+)?", default) and float(default) != float(fields[name.lower()].default):
                bad.append(f"docs/service.md: {name} default {default}, the code's {fields[name.lower()].default}")
    assert not bad, "\n".join(bad)
