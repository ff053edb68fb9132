"""``python -m fashion_course …``: see ``python -m fashion_course --help``."""

from .cli import main

raise SystemExit(main())
