"""Host commands beyond list/single/submit (jobs, results, setup, verify...), each importing its work lazily."""

from __future__ import annotations

import argparse


def add_host_commands(sub: argparse._SubParsersAction) -> None:
    """Register the host's other commands; filled in as the capabilities land."""
    return None
