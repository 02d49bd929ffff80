"""`segment-bridge`: the operator's command line (click).

Each command group lives in its own module and is registered here.
"""

from __future__ import annotations

import click

from .cli_conformance import catalog_command, lint_command
from .cli_dlq import dlq
from .cli_normalize import normalize_command
from .cli_tenants import tenants


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="segment-bridge")
def main() -> None:
    """Operate segment-bridge: tenants, dry runs, linting and the dead-letter queue."""


main.add_command(tenants)
main.add_command(normalize_command)
main.add_command(lint_command)
main.add_command(catalog_command)
main.add_command(dlq)


if __name__ == "__main__":  # pragma: no cover
    main()
