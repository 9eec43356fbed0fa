"""``python -m tests.openai_server``: run the server in the foreground (see ``cli.main``)."""

import sys

from .cli import main

sys.exit(main())
