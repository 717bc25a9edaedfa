import sys

from ai_service.app import main

sys.exit(main())
