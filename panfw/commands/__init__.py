"""Click commands kept out of ``panfw/cli.py``: each module is a thin layer over a library function."""

from panfw.commands.deploy import export_cmd, fuse_cmd  # noqa: F401
