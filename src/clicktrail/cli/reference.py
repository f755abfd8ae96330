"""Render the CLI reference (docs/cli.md) from the CLI itself, so the docs cannot drift.

``python -m clicktrail.cli.reference > docs/cli.md`` (or ``make docs``) rewrites it; a test
fails when the file and the CLI disagree.
"""

from __future__ import annotations

from typing import Any

import typer.main

HEADER = """# CLI reference

Generated from the CLI by `make docs` (`python -m clicktrail.cli.reference`); do not edit by
hand. Every command takes `--help`. Commands that act on a workspace take `--workspace/-w`
(or `CLICKTRAIL_WORKSPACE`); it may be left out when only one workspace exists.

Exit codes: 0 success, 1 unexpected error, 2 invalid input (or usage), 3 not found,
4 conflict, 5 unauthorized.
"""


def _walk(cmd: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    out = [(path, cmd)]
    if hasattr(cmd, "commands"):
        for name in sorted(cmd.commands):
            out += _walk(cmd.commands[name], [*path, name])
    return out


def render_reference() -> str:
    """Return the Markdown reference of every `clicktrail` command and option."""
    from clicktrail.cli import app

    root = typer.main.get_command(app)
    parts = [HEADER]
    for path, cmd in _walk(root, ["clicktrail"]):
        if hasattr(cmd, "commands") and len(path) > 1:
            parts.append(f"\n## `{' '.join(path)}`\n\n{(cmd.help or '').strip()}\n")
            continue
        if len(path) == 1:
            continue
        ctx = cmd.context_class(cmd, info_name=" ".join(path))
        usage = " ".join(cmd.collect_usage_pieces(ctx))
        level = "###" if len(path) > 2 else "##"
        help_text = (cmd.help or "").strip()
        parts.append(
            f"\n{level} `{' '.join(path)}`\n\n{help_text}\n\n```\n{' '.join(path)} {usage}\n```\n"
        )
        rows = []
        for p in cmd.params:
            if p.name == "help":
                continue
            if p.param_type_name == "argument":
                rows.append(
                    f"| `{(p.name or '').upper()}` | argument | {getattr(p, 'help', '') or ''} |"
                )
            else:
                names = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
                default = ""
                if p.default not in (None, False) and not p.is_flag:
                    default = f" (default: `{p.default}`)"
                env = f" Env: `{p.envvar}`." if p.envvar else ""
                rows.append(f"| {names} | option | {(p.help or '').strip()}{default}{env} |")
        if rows:
            parts.append("\n| name | kind | meaning |\n|---|---|---|\n" + "\n".join(rows) + "\n")
    return "".join(parts)


if __name__ == "__main__":
    import sys

    sys.stdout.write(render_reference())
