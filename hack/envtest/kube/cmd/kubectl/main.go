// Command kubectl is the upstream Kubernetes CLI, built from the pinned k8s.io/kubectl
// module so that tests use a client of exactly the control plane's version.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"

	// Client auth plugins are deliberately not imported: tests use certificates and tokens.
	_ "k8s.io/component-base/logs/json/register"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
