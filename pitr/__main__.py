import sys

from pitr.cli import main

sys.exit(main())
