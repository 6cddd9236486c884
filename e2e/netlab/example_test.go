package netlab_test

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/vpcflow/vpcflow/e2e/netlab"
)

// The seed scenario's physical host with a controller: vswitchd runs in the
// "phys" namespace, so the controller's listener is opened there and the
// bridge dials 127.0.0.1 of that namespace. OVSDB is a unix socket, which
// the test process reaches directly.
//
// (Examples cannot take a *testing.T: this one shows a test's body.)
func Example() {
	seedHost := func(t *testing.T) {
		ctx := context.Background()
		lab := netlab.New(t)
		phys, _ := lab.AddNode("phys")
		vm1, _ := lab.AddNode("test1")
		ovs, _ := phys.StartOVS(ctx)
		_ = ovs.AddBridge(ctx, "br-test")
		port, _ := lab.LinkToOVS(ctx, vm1, "ens8", "52:58:00:98:c0:81", phys, ovs, "br-test", "vnet1", true)
		_ = vm1.AddAddr(ctx, "ens8", "10.10.10.11/24")

		ln, _ := phys.Listen("tcp", "127.0.0.1:0") // hand ln to the OpenFlow server
		_ = ovs.SetController(ctx, "br-test", "tcp:"+ln.Addr().String())
		fmt.Println(ovs.DBEndpoint(), port, ln.Addr().(*net.TCPAddr).Port > 0)

		out := vm1.MustCmd(t, "ping", "-c", "1", "10.10.10.1")
		fmt.Println(out)
	}
	_ = seedHost
}
