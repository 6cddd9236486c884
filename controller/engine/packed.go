package engine

import (
	"errors"

	"github.com/vpcflow/vpcflow/openflow"
)

// ModOf is the flow-mod that makes change ch: an install is an ADD (which
// replaces an entry with the same table, priority and match), a delete a
// strict delete of exactly that entry.
func ModOf(ch *FlowChange) openflow.FlowMod {
	cmd := openflow.FlowAdd
	if ch.Delete {
		cmd = openflow.FlowDeleteStrict
	}
	return openflow.FlowMod{Command: cmd, Flow: ch.Flow}
}

// PackedChanges are one datapath's flow changes as their flow-mods, packed
// with the engine's packer: about 15 bytes a change where the changes
// themselves, with their matches and actions, are ~300. A batch waits in
// a switch's queue in this form and is read back one flow-mod at a time
// while it is sent (openflow.FlowMods): a bulk load of 5,000 hosts, 65,000
// changes, no longer holds 20 MB of Go values per request in flight
// (issue 17). It reads with a frozen packer, so it can be read while
// the engine goes on; one reader at a time.
type PackedChanges struct {
	pk         *openflow.Packer
	buf        []byte
	n          int
	adds, dels int

	// the read cursor: the next change and where it starts
	next int
	rest []byte
	st   openflow.PackState
}

// errPackedChange is a packed change that does not read back (a bug).
var errPackedChange = errors.New("engine: packed flow change does not read back")

// Pack packs cs, in order. Caller serializes it with the engine's other
// methods (it may intern flow shapes).
func (e *Engine) Pack(cs []FlowChange) *PackedChanges {
	p := &PackedChanges{n: len(cs)}
	size := 0
	for i := range cs {
		size += 16 + 4*len(cs[i].Flow.Match) + 4*len(cs[i].Flow.Actions)
	}
	b := make([]byte, 0, size)
	var st openflow.PackState
	for i := range cs {
		flag := byte(0)
		if cs[i].Delete {
			flag = 1
			p.dels++
		} else {
			p.adds++
		}
		b = append(b, flag)
		st.Reset()
		b = e.pk.AppendFlow(b, &st, &cs[i].Flow)
	}
	// Give back what the estimate over-reserved, when it is much.
	if cap(b)-len(b) > len(b)/4 {
		b = append([]byte(nil), b...)
	}
	p.buf = b
	p.pk = e.pk.Freeze()
	return p
}

// Len is the number of changes.
func (p *PackedChanges) Len() int { return p.n }

// Counts is how many changes install and how many delete.
func (p *PackedChanges) Counts() (adds, dels int) { return p.adds, p.dels }

// At reads the i-th change's flow-mod into m (reusing m's Match and
// Actions). In order it reads on from the last; otherwise it reads from
// the start.
func (p *PackedChanges) At(i int, m *openflow.FlowMod) error {
	if i < 0 || i >= p.n {
		return errPackedChange
	}
	if i < p.next || p.rest == nil {
		p.next, p.rest = 0, p.buf
	}
	for ; p.next <= i; p.next++ {
		if len(p.rest) == 0 {
			return errPackedChange
		}
		del := p.rest[0] == 1
		p.st.Reset()
		rest, err := p.pk.ReadFlow(p.rest[1:], &p.st, &m.Flow)
		if err != nil {
			p.rest = nil
			return errors.Join(errPackedChange, err)
		}
		p.rest = rest
		m.Command = openflow.FlowAdd
		if del {
			m.Command = openflow.FlowDeleteStrict
		}
		m.CookieMask = 0
	}
	return nil
}
