"""The `concord` command line, assembled from each domain's `commands` module."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from concord.console import err
from concord.domains import domain_modules
from concord.errors import ConcordError


class ConcordGroup(TyperGroup):
    """Turns a coded error anywhere below into one line on stderr and its exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ConcordError as exc:
            line = escape(f"[{exc.code}] {exc.render()}")
            err.print(f"[bold red]error[/] {line}", highlight=False)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=ConcordGroup,
    help="Concord: multilateral AI cooperation — consensus, federation, commons, capacity.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from concord import shell_commands

    shell_commands.register(app)
    for module in domain_modules("commands"):
        module.register(app)


_register()


def main() -> None:
    app()
