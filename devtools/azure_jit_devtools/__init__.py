"""Developer tooling for azure-jit-operator, never installed into the operator's image:

- :mod:`.localcluster` a local Kubernetes control plane (etcd + kube-apiserver) for the demo,
  the tests and the benchmarks;
- :mod:`.demo` the ``make demo`` scenario (``azure-jit-dev demo``);
- :mod:`.cli` the ``azure-jit-dev`` command.

Importing this package starts nothing.
"""
