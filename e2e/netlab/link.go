package netlab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// validIfName enforces Linux's interface name rules (IFNAMSIZ-1 = 15).
func validIfName(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." ||
		strings.ContainsAny(name, "/: \t\n") {
		return fmt.Errorf("invalid interface name %q (1-15 chars, no '/', ':' or spaces)", name)
	}
	return nil
}

// createVeth makes a veth pair with one end in each node, both created
// directly in their namespaces (never in the root namespace, where names
// could collide with another lab), brought up and with tx checksum offload
// off. aMAC ("" for a random one) is set on aIf at creation, before it is up.
func (l *Lab) createVeth(ctx context.Context, a *Node, aIf, aMAC string, b *Node, bIf string) error {
	for _, name := range []string{aIf, bIf} {
		if err := validIfName(name); err != nil {
			return err
		}
	}
	args := []string{"ip", "-n", a.ns, "link", "add", aIf}
	if aMAC != "" {
		args = append(args, "address", aMAC)
	}
	args = append(args, "type", "veth", "peer", "name", bIf)
	if b != a {
		args = append(args, "netns", b.ns)
	}
	if _, err := l.run(ctx, nil, args...); err != nil {
		return err
	}
	for _, end := range []struct {
		n   *Node
		ifn string
	}{{a, aIf}, {b, bIf}} {
		if _, err := l.run(ctx, nil, "ip", "-n", end.n.ns, "link", "set", end.ifn, "up"); err != nil {
			return err
		}
		// TCP over the netdev datapath needs real checksums on the wire.
		if _, err := end.n.Cmd(ctx, "ethtool", "-K", end.ifn, "tx", "off"); err != nil {
			return err
		}
	}
	return nil
}

// LinkToOVS connects a VM to an OVS bridge, the way libvirt plugs a VM's NIC
// into a host bridge: a veth with vmIf inside vm (MAC set, up) and portName
// inside ovsNode (up before add-port), tx checksum offload off on both, and
// portName added to bridge. If attachedMAC is set the Interface row gets
// external_ids:attached-mac=mac (libvirt's convention). It waits for
// vswitchd to assign the ofport and returns it.
func (l *Lab) LinkToOVS(ctx context.Context, vm *Node, vmIf string, mac string, ovsNode *Node, o *OVS, bridge, portName string, attachedMAC bool) (int, error) {
	wrap := func(err error) (int, error) {
		return 0, fmt.Errorf("netlab: link %s:%s to %s/%s:%s: %w", vm.name, vmIf, ovsNode.name, bridge, portName, nest(err))
	}
	if o == nil || o.node != ovsNode {
		return wrap(fmt.Errorf("the OVS given does not run in node %s", ovsNode.name))
	}
	if vm == ovsNode {
		return wrap(fmt.Errorf("vm and OVS node are the same node"))
	}
	if mac != "" {
		hw, err := net.ParseMAC(mac)
		if err != nil {
			return wrap(err)
		}
		mac = hw.String()
	} else if attachedMAC {
		return wrap(fmt.Errorf("attachedMAC needs a MAC"))
	}
	if err := l.createVeth(ctx, vm, vmIf, mac, ovsNode, portName); err != nil {
		return wrap(err)
	}
	args := []string{"add-port", bridge, portName}
	if attachedMAC {
		args = append(args, "--", "set", "Interface", portName, "external_ids:attached-mac="+strconv.Quote(mac))
	}
	if _, err := o.Vsctl(ctx, args...); err != nil {
		return wrap(err)
	}
	port, err := o.Ofport(ctx, portName)
	if err != nil {
		return wrap(err)
	}
	return port, nil
}

// LinkNodes connects two nodes with a plain veth (both ends up, tx off).
func (l *Lab) LinkNodes(ctx context.Context, a *Node, aIf string, b *Node, bIf string) error {
	if err := l.createVeth(ctx, a, aIf, "", b, bIf); err != nil {
		return fmt.Errorf("netlab: link %s:%s to %s:%s: %w", a.name, aIf, b.name, bIf, nest(err))
	}
	return nil
}

// AddAddr assigns cidr (e.g. "10.10.10.11/24") to ifname in the node.
func (n *Node) AddAddr(ctx context.Context, ifname, cidr string) error {
	if _, err := n.lab.run(ctx, nil, "ip", "-n", n.ns, "addr", "add", cidr, "dev", ifname); err != nil {
		return fmt.Errorf("netlab: %s: %w", n.name, err)
	}
	return nil
}

// AddRoute adds a route in the node: dst is a prefix or "default"; via is
// the gateway; dev ("" for none) the output interface.
func (n *Node) AddRoute(ctx context.Context, dst, via, dev string) error {
	args := []string{"ip", "-n", n.ns, "route", "add", dst}
	if via != "" {
		args = append(args, "via", via)
	}
	if dev != "" {
		args = append(args, "dev", dev)
	}
	if _, err := n.lab.run(ctx, nil, args...); err != nil {
		return fmt.Errorf("netlab: %s: %w", n.name, err)
	}
	return nil
}

// AddLinuxBridge creates a Linux bridge in the node (forward delay 0), gives
// it cidr (unless empty) and brings it up.
func (n *Node) AddLinuxBridge(ctx context.Context, name, cidr string) error {
	if err := validIfName(name); err != nil {
		return fmt.Errorf("netlab: %s: %w", n.name, err)
	}
	if _, err := n.lab.run(ctx, nil, "ip", "-n", n.ns, "link", "add", name, "type", "bridge", "forward_delay", "0"); err != nil {
		return fmt.Errorf("netlab: %s: add bridge: %w", n.name, err)
	}
	if cidr != "" {
		if err := n.AddAddr(ctx, name, cidr); err != nil {
			return err
		}
	}
	if _, err := n.lab.run(ctx, nil, "ip", "-n", n.ns, "link", "set", name, "up"); err != nil {
		return fmt.Errorf("netlab: %s: add bridge: %w", n.name, err)
	}
	return nil
}

// ContainerHostIf is the name of the vm-side veth AddContainer creates for
// a container: "vh-<name>", or "vh-<hash>" if that would be too long.
func ContainerHostIf(container string) string {
	if name := "vh-" + container; len(name) <= 15 {
		return name
	}
	sum := sha256.Sum256([]byte(container))
	return "vh-" + hex.EncodeToString(sum[:])[:12]
}

// AddContainer creates a node "<labid>-<name>" (a container's netns inside a
// VM), connects it with a veth to the Linux bridge in vm (vm side
// ContainerHostIf(name), enslaved and up), gives ifname the address cidr
// and a default route via gw (unless empty), tx off on both ends.
func (l *Lab) AddContainer(ctx context.Context, vm *Node, bridge, name, ifname, cidr, gw string) (*Node, error) {
	wrap := func(err error) (*Node, error) {
		return nil, fmt.Errorf("netlab: container %s in %s: %w", name, vm.name, nest(err))
	}
	c, err := l.addNode(ctx, name)
	if err != nil {
		return wrap(err)
	}
	hostIf := ContainerHostIf(name)
	if err := l.createVeth(ctx, c, ifname, "", vm, hostIf); err != nil {
		return wrap(err)
	}
	if _, err := l.run(ctx, nil, "ip", "-n", vm.ns, "link", "set", hostIf, "master", bridge); err != nil {
		return wrap(err)
	}
	if cidr != "" {
		if err := c.AddAddr(ctx, ifname, cidr); err != nil {
			return wrap(err)
		}
	}
	if gw != "" {
		if err := c.AddRoute(ctx, "default", gw, ""); err != nil {
			return wrap(err)
		}
	}
	return c, nil
}
