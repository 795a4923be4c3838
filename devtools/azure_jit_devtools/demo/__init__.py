"""``azure-jit-dev demo`` (``make demo``): the whole product on one machine, narrated.

A local control plane (etcd + kube-apiserver), the Azure emulator and the operator run as
separate processes, the operator authenticating the way it does on AKS (Workload Identity:
a ServiceAccount token exchanged at the emulator's Entra endpoint). Then the examples are
applied and the demo tells what happens in Kubernetes and on the VM's network security group.
"""
