"""``python -m azure_jit_operator.kubectl_jit``: the same as the ``kubectl-jit`` script."""

from __future__ import annotations

import sys

from azure_jit_operator.kubectl_jit.main import main

if __name__ == "__main__":
    sys.exit(main())
