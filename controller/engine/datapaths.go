package engine

// Datapaths lists the datapaths the engine wants flows on (besides the
// pipeline's defaults, which every connected switch gets).
func (e *Engine) Datapaths() []uint64 {
	out := make([]uint64, 0, len(e.counts))
	for dpid := range e.counts {
		out = append(out, dpid)
	}
	return out
}
