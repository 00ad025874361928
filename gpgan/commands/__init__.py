"""CLI sub-commands; each module has ``register(subparsers)`` (see :mod:`gpgan.cli`)."""
