package openflow

import "testing"

// BenchmarkEncodeFlowMod encodes the ARP responder flow (the largest the
// pipeline makes) into a reused buffer, as Apply does.
func BenchmarkEncodeFlowMod(b *testing.B) {
	m := FlowMod{Command: FlowAdd, Flow: pipelineFlows()[2]}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendFlowMod(buf[:0], 1, &m)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkEncodeBundleAdd is one flow mod wrapped for a bundle.
func BenchmarkEncodeBundleAdd(b *testing.B) {
	m := FlowMod{Command: FlowAdd, Flow: pipelineFlows()[3]}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendBundleAdd(buf[:0], 1, 1, &m)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecodeFlowStats decodes a reply body of 1000 pipeline flows.
func BenchmarkDecodeFlowStats(b *testing.B) {
	flows := pipelineFlows()
	var body []byte
	for i := 0; i < 1000; i++ {
		enc, err := EncodeFlowMod(1, FlowMod{Flow: flows[i%len(flows)]})
		if err != nil {
			b.Fatal(err)
		}
		body = append(body, statsEntry(enc, 1, 2, 3)...)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeFlowStats(body); err != nil {
			b.Fatal(err)
		}
	}
}
