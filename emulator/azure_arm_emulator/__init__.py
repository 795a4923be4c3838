"""Local Azure Resource Manager emulator for JIT policies, NSGs and VMs.

A server that speaks HTTPS and ARM's JSON, independent of the operator's layers (it imports
neither the Azure SDK nor kopf): real ``azure-mgmt-*`` clients talk to it as to Azure.
Modules, one concern each:

- :mod:`.core` wires everything; :mod:`.server` serves it; :mod:`.command` is the CLI;
- :mod:`.arm` routing, api-versions, auth, paging; :mod:`.errors` ARM error bodies;
- :mod:`.jit`, :mod:`.jit_validation`, :mod:`.jit_effects` Microsoft.Security JIT;
- :mod:`.network`, :mod:`.nsg_rules`, :mod:`.lro` Microsoft.Network; :mod:`.compute` VMs;
- :mod:`.world` world files, :mod:`.store` / :mod:`.model` state, :mod:`.clock`,
  :mod:`.settings`, :mod:`.faults`, :mod:`.certs`;
- :mod:`.entra` the Entra ID token endpoint and discovery documents, :mod:`.identities`
  who may get tokens and where they reach, :mod:`.access_tokens` the tokens themselves;
- :mod:`.admin` the ``/_emulator`` test controls, :mod:`.admin_client` their clients and
  :mod:`.admin_calls` the requests behind them.

Importing this package starts nothing.
"""
