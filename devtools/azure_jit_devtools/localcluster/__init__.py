"""A local Kubernetes control plane (etcd + kube-apiserver + kubectl, built from pinned Go
modules by hack/envtest) for the demo and the tests: throwaway PKI, processes on free
loopback ports the way controller-runtime's envtest starts them, CRD installation and
kubeconfigs for the admin and for ServiceAccounts."""
