"""The terminal: everything the CLI prints or asks goes through this package (rich);
nothing else in the engine prints or prompts."""

from engine.console.run import RunConsole, print_dry_run
from engine.console.terminal import Terminal, step_flags

__all__ = ["RunConsole", "Terminal", "print_dry_run", "step_flags"]
