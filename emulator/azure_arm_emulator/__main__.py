"""``python -m azure_arm_emulator``: the same as the ``azure-arm-emulator`` console script."""

import sys

from azure_arm_emulator.command import main

sys.exit(main())
