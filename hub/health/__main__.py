import sys

from hub.health.probe import main

sys.exit(main())
