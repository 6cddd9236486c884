package openflow

import (
	"context"
	"fmt"
)

// Requests a periodic drift check needs: the number of flows in every
// table (one small OFPMP_TABLE reply), the flows of one table, and an echo
// that proves the peer is alive.

const multipartTable = 3 // OFPMP_TABLE

// tableStatsLen is the size of one ofp_table_stats.
const tableStatsLen = 24

// TableStats is one table's entry of an OFPMP_TABLE reply.
type TableStats struct {
	Table   uint8
	Active  uint32 // flows in the table
	Lookups uint64
	Matched uint64
}

// appendTableStatsRequest appends an OFPMP_TABLE request (no body).
func appendTableStatsRequest(b []byte, xid uint32) []byte {
	start := len(b)
	b = appendHeader(b, typeMultipartReq, xid)
	b = appendU16(b, multipartTable)
	b = appendU16(b, 0) // flags
	b = appendU32(b, 0) // pad
	setLength(b, start)
	return b
}

// DecodeTableStats parses the body of an OFPMP_TABLE reply (the bytes
// after the multipart header; several parts may be concatenated).
func DecodeTableStats(body []byte) ([]TableStats, error) {
	if len(body)%tableStatsLen != 0 {
		return nil, fmt.Errorf("table stats: %d bytes is not a whole number of %d-byte entries", len(body), tableStatsLen)
	}
	out := make([]TableStats, 0, len(body)/tableStatsLen)
	for off := 0; off < len(body); off += tableStatsLen {
		e := body[off:]
		out = append(out, TableStats{Table: e[0], Active: be.Uint32(e[4:]), Lookups: be.Uint64(e[8:]), Matched: be.Uint64(e[16:])})
	}
	return out, nil
}

// TableStats returns the switch's per-table statistics; Active is the
// number of flows in each table. OVS answers for every table (255), in
// one reply of ~6 KB: cheap enough to ask often.
func (s *Switch) TableStats(ctx context.Context) ([]TableStats, error) {
	parts, err := s.multipart(ctx, "table stats", appendTableStatsRequest)
	if err != nil {
		return nil, err
	}
	var out []TableStats
	for i, p := range parts {
		ts, err := DecodeTableStats(p)
		if err != nil {
			return nil, fmt.Errorf("%s: table stats: reply part %d: %w", s, i, err)
		}
		out = append(out, ts...)
	}
	return out, nil
}

// appendTableFlowStatsRequest appends an OFPMP_FLOW request for every flow
// of one table.
func appendTableFlowStatsRequest(table uint8) func(b []byte, xid uint32) []byte {
	return appendFilteredFlowStatsRequest(table, 0, 0)
}

// appendFilteredFlowStatsRequest appends an OFPMP_FLOW request for the
// flows of table (TableAll: every table) whose cookie equals cookie under
// mask (mask 0: any cookie).
func appendFilteredFlowStatsRequest(table uint8, cookie, mask uint64) func(b []byte, xid uint32) []byte {
	return func(b []byte, xid uint32) []byte {
		start := len(b)
		b = appendHeader(b, typeMultipartReq, xid)
		b = appendU16(b, multipartFlow)
		b = appendU16(b, 0) // flags
		b = appendU32(b, 0) // pad
		b = append(b, table, 0, 0, 0)
		b = appendU32(b, PortAny)
		b = appendU32(b, groupAny)
		b = appendU32(b, 0) // pad
		b = appendU64(b, cookie)
		b = appendU64(b, mask)
		b = appendMatch(b, nil)
		setLength(b, start)
		return b
	}
}

// DumpCookie returns the flows of table (TableAll: every table) whose
// cookie equals cookie under mask: the switch filters, so a few flows of
// a million-flow table cost a few flows' answer.
func (s *Switch) DumpCookie(ctx context.Context, table uint8, cookie, mask uint64) ([]FlowStats, error) {
	what := fmt.Sprintf("dump cookie 0x%x/0x%x", cookie, mask)
	return s.dumpFiltered(ctx, what, appendFilteredFlowStatsRequest(table, cookie, mask))
}

// dumpFiltered sends a flow-stats request and decodes every reply part.
func (s *Switch) dumpFiltered(ctx context.Context, what string, enc func(b []byte, xid uint32) []byte) ([]FlowStats, error) {
	parts, err := s.multipart(ctx, what, enc)
	if err != nil {
		return nil, err
	}
	var out []FlowStats
	for i, part := range parts {
		fs, err := DecodeFlowStats(part)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: reply part %d: %w", s, what, i, err)
		}
		out = append(out, fs...)
	}
	return out, nil
}

// DumpTable returns the flows of one table.
func (s *Switch) DumpTable(ctx context.Context, table uint8) ([]FlowStats, error) {
	if table == TableAll {
		return s.DumpFlows(ctx)
	}
	return s.dumpFiltered(ctx, fmt.Sprintf("dump table %d", table), appendTableFlowStatsRequest(table))
}

// Echo sends an echo request and waits for its reply: the peer is alive
// and reading.
func (s *Switch) Echo(ctx context.Context) error {
	return s.c.sendEcho(ctx)
}

// sendEcho sends an echo request and waits for the reply with its xid.
func (c *conn) sendEcho(ctx context.Context) error {
	r, err := c.request(ctx, false, func(b []byte, xid uint32) []byte {
		b = appendHeader(b, typeEchoRequest, xid)
		setLength(b, 0)
		return b
	})
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	if r.err != nil {
		return fmt.Errorf("echo: %w", r.err)
	}
	return nil
}
