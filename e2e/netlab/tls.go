package netlab

import (
	"context"
	"fmt"
	"net"
	"strconv"
)

// ServeOVSDBSSL restarts ovsdb-server so that, besides its unix socket, it
// listens for TLS on 127.0.0.1:port inside the node (--remote=pssl:PORT:
// 127.0.0.1), presenting the certificate cert with its private key key and
// accepting only clients whose certificate the CA certificate(s) in ca
// signed. ovsdb-server reads the keys only from its command line (or from
// database columns named there), so this is a restart; vswitchd and other
// clients reconnect on their own. The options stay for later restarts. It
// returns the active endpoint, "ssl:127.0.0.1:PORT", once it accepts TCP
// connections.
func (o *OVS) ServeOVSDBSSL(ctx context.Context, port int, key, cert, ca string) (string, error) {
	if port <= 0 || port > 65535 {
		return "", fmt.Errorf("netlab: %s: ovsdb-server pssl port %d out of range", o.node.name, port)
	}
	o.mu.Lock()
	o.ovsdbExtra = []string{
		fmt.Sprintf("--remote=pssl:%d:127.0.0.1", port),
		"--private-key=" + key,
		"--certificate=" + cert,
		"--ca-cert=" + ca,
	}
	o.mu.Unlock()
	if err := o.RestartOVSDB(ctx); err != nil {
		return "", err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	err := poll(ctx, ovsReadyTimeout, func() (bool, error) {
		c, err := o.node.Dial(ctx, "tcp", addr)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
	if err != nil {
		return "", fmt.Errorf("netlab: %s: ovsdb-server not listening on pssl:%d (see %s): %w", o.node.name, port, o.OVSDBLog(), err)
	}
	return "ssl:" + addr, nil
}
