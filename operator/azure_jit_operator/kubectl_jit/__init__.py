"""``kubectl jit``: the command line for people who ask for, approve and revoke Just-in-Time
VM access (a kubectl plugin; installed as the ``kubectl-jit`` console script).

It talks to the Kubernetes API only, with the official client and the caller's kubeconfig,
and never to Azure: the operator does that. Modules: :mod:`.arguments` (parsing),
:mod:`.client` (the API calls), :mod:`.commands` and :mod:`.decisions` (what each command
does), :mod:`.output` (tables and descriptions), :mod:`.myip` (the caller's public address).
"""

from __future__ import annotations

from azure_jit_operator.kubectl_jit.main import main

__all__ = ["main"]
