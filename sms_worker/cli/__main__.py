"""``python -m sms_worker.cli``: the same as the ``sms-worker`` command."""

import sys

from sms_worker.cli import main

if __name__ == "__main__":
    sys.exit(main())
