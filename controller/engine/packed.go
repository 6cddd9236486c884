package engine

import (
	"errors"

	"github.com/vpcflow/vpcflow/openflow"
)

// ModOf is the flow-mod that makes change ch: an install is an ADD (which
// replaces an entry with the same table, priority and match), a delete a
// strict delete of exactly that entry.
func ModOf(ch *FlowChange) openflow.FlowMod {
	return openflow.FlowMod{Command: commandOf(ch.Delete), Flow: ch.Flow}
}

// commandOf is the flow-mod command of an install or a delete.
func commandOf(del bool) openflow.FlowModCommand {
	if del {
		return openflow.FlowDeleteStrict
	}
	return openflow.FlowAdd
}

// ChangeMods are changes read as their flow-mods (openflow.FlowMods),
// without a copy of each.
type ChangeMods []FlowChange

// Len is the number of changes.
func (c ChangeMods) Len() int { return len(c) }

// At reads the i-th change's flow-mod.
func (c ChangeMods) At(i int, m *openflow.FlowMod) error { *m = ModOf(&c[i]); return nil }

// PackedChanges are one datapath's flow changes (UpdatePacked) as their
// flow-mods, packed with the engine's packer as they are computed: about
// 6 bytes a change where the changes themselves, with their matches and
// actions, are ~300. A batch waits in a switch's queue in this form and is
// read back one flow-mod at a time while it is sent (openflow.FlowMods): a
// bulk load of 5,000 hosts, 65,000 changes, no longer holds ~20 MB of Go
// values per request in flight (issue 17). It reads with a frozen packer,
// so it can be read while the engine goes on; At has one reader at a
// time (Changes reads on its own).
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

// The first byte of a packed change.
const (
	packedInstall byte = 0
	packedDelete  byte = 1
)

// errPackedChange is a packed change that does not read back (a bug).
var errPackedChange = errors.New("engine: packed flow change does not read back")

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
		del := p.rest[0] == packedDelete
		p.st.Reset()
		rest, err := p.pk.ReadFlow(p.rest[1:], &p.st, &m.Flow)
		if err != nil {
			p.rest = nil
			return errors.Join(errPackedChange, err)
		}
		p.rest = rest
		m.Command, m.CookieMask = commandOf(del), 0
	}
	return nil
}

// Changes reads every change back as a value (its own copy: p's read
// cursor is not used, so another reader may go on with p).
func (p *PackedChanges) Changes() []FlowChange {
	r := PackedChanges{pk: p.pk, buf: p.buf, n: p.n}
	out := make([]FlowChange, 0, p.n)
	for i := range p.n {
		var m openflow.FlowMod
		if r.At(i, &m) != nil {
			break // cannot happen: packed by the engine
		}
		out = append(out, FlowChange{Delete: m.Command == openflow.FlowDeleteStrict, Flow: m.Flow})
	}
	return out
}
