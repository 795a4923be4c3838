"""Performance benchmarks of azure-jit-operator against the real control plane (etcd +
kube-apiserver) and the Azure ARM emulator. Not part of ``make test``; ``make bench`` runs
``python -m benchmarks`` (see ``benchmarks/__main__.py`` for the flags and RESULTS.md for the
last numbers)."""
