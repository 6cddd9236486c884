package topology

import "net/netip"

// prefixTrie is a binary trie of IPv4 prefixes, each naming an object. It
// answers "is there an entry equal to, containing, or inside prefix p" in at
// most 32 steps, whatever the number of entries, which keeps vSwitch/subnet
// overlap checks independent of the number of subnets.
type prefixTrie struct {
	root trieNode
}

type trieNode struct {
	child [2]*trieNode
	name  string // the entry at exactly this prefix, "" if none
	count int    // entries in this subtree, this node included
}

func prefixBits(p netip.Prefix) uint32 {
	b := p.Addr().As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func bitAt(v uint32, i int) int { return int(v>>(31-i)) & 1 }

// insert adds name at p; p must be a canonical IPv4 prefix not yet present.
func (t *prefixTrie) insert(p netip.Prefix, name string) {
	v := prefixBits(p)
	n := &t.root
	n.count++
	for i := 0; i < p.Bits(); i++ {
		b := bitAt(v, i)
		if n.child[b] == nil {
			n.child[b] = &trieNode{}
		}
		n = n.child[b]
		n.count++
	}
	n.name = name
}

// remove deletes the entry at p, if there is one, and prunes empty nodes.
func (t *prefixTrie) remove(p netip.Prefix) {
	v := prefixBits(p)
	// Check it is present before changing counts.
	n := &t.root
	for i := 0; i < p.Bits() && n != nil; i++ {
		n = n.child[bitAt(v, i)]
	}
	if n == nil || n.name == "" {
		return
	}
	n = &t.root
	n.count--
	for i := 0; i < p.Bits(); i++ {
		b := bitAt(v, i)
		c := n.child[b]
		c.count--
		if c.count == 0 {
			n.child[b] = nil
			return
		}
		n = c
	}
	n.name = ""
}

// containing returns an entry equal to p or containing it (shortest first).
func (t *prefixTrie) containing(p netip.Prefix) (netip.Prefix, string, bool) {
	v := prefixBits(p)
	n := &t.root
	for i := 0; ; i++ {
		if n.name != "" {
			return netip.PrefixFrom(p.Addr(), i).Masked(), n.name, true
		}
		if i == p.Bits() {
			return netip.Prefix{}, "", false
		}
		n = n.child[bitAt(v, i)]
		if n == nil {
			return netip.Prefix{}, "", false
		}
	}
}

// within returns an entry equal to p or inside it.
func (t *prefixTrie) within(p netip.Prefix) (netip.Prefix, string, bool) {
	p = p.Masked()
	v := prefixBits(p)
	n := &t.root
	for i := 0; i < p.Bits(); i++ {
		n = n.child[bitAt(v, i)]
		if n == nil {
			return netip.Prefix{}, "", false
		}
	}
	if n.count == 0 {
		return netip.Prefix{}, "", false
	}
	bits := p.Bits()
	for n.name == "" {
		// count > 0 and no entry here: some child holds one.
		b := 0
		if n.child[0] == nil || n.child[0].count == 0 {
			b = 1
		}
		if b == 1 {
			v |= 1 << (31 - bits)
		}
		n = n.child[b]
		bits++
	}
	a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	return netip.PrefixFrom(a, bits).Masked(), n.name, true
}
