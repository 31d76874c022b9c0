"""The `v3` command: a thin click layer over the library API.

Each command lives in its own module in this package and calls one library function. The shared
`App` object owns the consoles and turns a `V3Error` into one red line and a non-zero exit status.
"""
import importlib
import sys

import click
from rich.console import Console
from rich.markup import escape

from v3tools import __version__
from v3tools.errors import V3Error

# command name -> module in this package that defines `command`
COMMANDS = {
    "build-vm": "build_vm",
    "inspect": "inspect",
    "isoimage": "isoimage",
    "mkguest": "mkguest",
    "init": "init",
    "run": "run",
    "img": "img",
}


class App:
    """What every command shares: an stdout console, an stderr console, and abort()."""

    def __init__(self):
        self.out = Console(highlight=False, emoji=False)
        self.err = Console(stderr=True, highlight=False, emoji=False)

    def info(self, text):
        self.err.print(text)

    def abort(self, text, code=1):
        self.err.print(f"[bold red]v3: error:[/] {escape(str(text))}", soft_wrap=True)
        sys.exit(code)


def _print_version(ctx, _param, value):
    if not value or ctx.resilient_parsing:
        return
    from vmm import engine
    try:
        running = engine.check().describe()
    except V3Error as exc:
        running = f"unusable: {exc}"
    click.echo(f"v3 {__version__}\nengine: {running}")
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and the CPU engine, then exit.")
@click.pass_context
def cli(ctx):
    """v3: build, package and boot Palacios guests (build-vm, isoimage, run, ...)."""
    ctx.obj = App()


for _name, _module in COMMANDS.items():
    try:
        _mod = importlib.import_module(f"v3tools.cli.{_module}")
    except ModuleNotFoundError as exc:  # a command not written yet
        if exc.name != f"v3tools.cli.{_module}":
            raise
        continue
    cli.add_command(_mod.command, _name)


def _usage_line(exc):
    """One line for a click usage error: our option types' messages as they are; click's own
    (unknown option, bad choice, missing argument) with the command's --help to look at."""
    from v3tools.cli.options import OptionValueError
    text = " ".join(exc.format_message().split()).rstrip(".")
    if isinstance(exc, OptionValueError) or exc.ctx is None:
        return text
    return f"{text} (see `{exc.ctx.command_path} --help`)"


def main(argv=None):
    app_err = Console(stderr=True, highlight=False, emoji=False)
    try:
        cli.main(args=argv, prog_name="v3", standalone_mode=False)
    except V3Error as exc:
        app_err.print(f"[bold red]v3: error:[/] {escape(str(exc))}", soft_wrap=True)
        if getattr(exc, "diagnostic", None):
            app_err.print(exc.diagnostic, markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_status)
    except click.exceptions.Abort:
        app_err.print("v3: aborted")
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help())          # `v3` alone: the list of commands
        sys.exit(0)
    except click.UsageError as exc:
        # a bad option or value is bad input like any other: one line, status 1
        app_err.print(f"[bold red]v3: error:[/] {escape(_usage_line(exc))}", soft_wrap=True)
        sys.exit(V3Error.exit_status)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(0)
