"""The tutorials' one helper: run a ``panfw`` command line in this process, as typed in a shell."""

from __future__ import annotations

from panfw.cli import build_cli


def panfw_cmd(*args: str) -> None:
    """Run one ``panfw`` command line (as typed in a shell) in this process."""
    print("$ panfw " + " ".join(args), flush=True)
    try:
        build_cli().main(list(args), prog_name="panfw", standalone_mode=False)
    except SystemExit as exc:  # a user error exits 2 with its message already printed; export: 1 = no parity
        if exc.code:
            raise
