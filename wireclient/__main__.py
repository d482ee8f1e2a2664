"""``python -m wireclient``: the command-line tool (see ``wireclient.cli``)."""

from wireclient.cli import main

raise SystemExit(main())
