package topology

// CountByKind is the number of objects of every kind, by kind name
// (KindNames), for metrics.
func (st *State) CountByKind() map[string]int {
	out := make(map[string]int, len(kinds()))
	for _, k := range kinds() {
		out[k.name()] = st.count(k)
	}
	return out
}
