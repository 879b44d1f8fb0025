"""``python -m warmline`` runs the command line."""

from warmline.cli import main

raise SystemExit(main())
