"""``python -m wsframe``: the same as the ``wsframe`` command."""
from wsframe.tools.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
