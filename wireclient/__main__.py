"""``python -m wireclient``: the command-line tool (see ``wireclient.toolkit.cli``)."""

from wireclient.toolkit.cli import main

raise SystemExit(main())
