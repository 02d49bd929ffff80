"""`segment-bridge`: the operator's command line (click).

Each command group lives in its own module and is registered here.
"""

from __future__ import annotations

import click

from .cli_conformance import catalog_command, lint_command
from .cli_dlq import dlq
from .cli_normalize import normalize_command
from .cli_status import status_command
from .cli_tenants import tenants


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="segment-bridge")
def main() -> None:
    """Operate segment-bridge: tenants, dry runs, linting, the dead-letter queue and its status."""


main.add_command(tenants)
main.add_command(normalize_command)
main.add_command(lint_command)
main.add_command(catalog_command)
main.add_command(dlq)
main.add_command(status_command)


if __name__ == "__main__":  # pragma: no cover
    main()
