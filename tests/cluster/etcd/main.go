// etcd, the real server at the version the pinned Kubernetes release requires: etcdmain is what the upstream etcd
// binary runs, so every flag is the documented one.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
