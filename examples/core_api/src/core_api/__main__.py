import sys

from core_api.app import main

sys.exit(main())
