package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

// dumpOnly is a Backend whose one switch has n flows, made one at a time
// as a switch's dump hands them over. held is the live heap when the last
// flow was handed over (after a collection): what the listing holds.
type dumpOnly struct {
	Backend
	n    int
	base uint64
	held *uint64
}

func (d dumpOnly) Flows(ctx context.Context, dpid topology.DPID, fn func(e *controller.FlowEntry) error) error {
	for i := range d.n {
		e := controller.FlowEntry{Table: uint8(i % 8 * 10), Priority: uint16(100 + i%33), Cookie: fmt.Sprintf("0x76700200%08x", i),
			Match:   fmt.Sprintf("ip,in_port=%d,dl_src=02:00:00:%02x:%02x:%02x,nw_src=10.%d.%d.%d", i%60000, byte(i>>16), byte(i>>8), byte(i), byte(i>>16), byte(i>>8), byte(i)),
			Actions: fmt.Sprintf("set_field:ee:ff:ff:ff:ff:ff->eth_src,set_field:02:00:00:%02x:%02x:%02x->eth_dst,load:0x%x->NXM_NX_REG2[],goto_table:70", byte(i>>16), byte(i>>8), byte(i), i%60000),
			Packets: uint64(i), Bytes: uint64(i) * 98}
		if err := fn(&e); err != nil {
			return err
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	*d.held = ms.HeapAlloc - d.base
	return nil
}

// BenchmarkListFlows (issue 17): GET /v1/switches/{dpid}/flows of a
// switch with 200,000 flows (a 100,000-host bridge has 550,000), a page of
// 100 and every flow: held-MB is what the listing holds when the dump
// ends. Every flow must be held to sort them all; a page holds the page.
func BenchmarkListFlows(b *testing.B) {
	const n = 200000
	for _, q := range []string{"?limit=100", "?limit=100&page_token=" + encodePageToken("040/"), ""} {
		b.Run("query="+q, func(b *testing.B) {
			var held uint64
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			h := NewServer(zap.NewNop(), dumpOnly{n: n, base: ms.HeapAlloc, held: &held}, Options{})
			for b.Loop() {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodGet, "/v1/switches/1/flows"+q, nil)
				req.Host = "127.0.0.1"
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
				_, _ = io.Copy(io.Discard, rec.Body)
			}
			b.ReportMetric(float64(held)/(1<<20), "held-MB")
		})
	}
}
