"""`python -m judgerl ...` is `judgerl ...`."""

import sys

from judgerl.cli import main

if __name__ == "__main__":
    sys.exit(main())
