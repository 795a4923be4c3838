// Command etcd is the upstream etcd server, built from the pinned go.etcd.io/etcd/server/v3
// module (the version Kubernetes pairs with our kube-apiserver).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
