package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

// ptrMarshaled encodes itself only through its pointer, as a slice
// element does when json.Marshal encodes the slice.
type ptrMarshaled struct{ N int }

func (p *ptrMarshaled) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprintf(`"n%d"`, p.N)), nil }

// TestLongListsStreamAsMarshal: a list long enough to be written element
// by element is byte for byte what json.Marshal writes, for hosts (with
// MACs, addresses and omitted fields), for elements that encode
// themselves through a pointer, and a byte slice stays base64.
func TestLongListsStreamAsMarshal(t *testing.T) {
	hosts := make([]topology.Host, streamMin+5)
	for i := range hosts {
		hosts[i] = topology.Host{ID: uint32(i + 1), VPC: "v", Name: fmt.Sprintf("h<%d>&", i), VSwitch: "w",
			IP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), MAC: topology.MAC{2, 0, 0, 0, byte(i >> 8), byte(i)},
			DPID: 1, OFPort: uint32(i + 1)}
	}
	// As GET …/hosts lists them: the host and where it is attached. It
	// embeds topology.Host: the list must not write the host alone.
	infos := make([]HostInfo, len(hosts))
	for i := range infos {
		infos[i] = HostInfo{Host: hosts[i], Attachment: controller.HostAttachment{State: "attached", DPID: 1, OFPort: uint32(i + 1)}}
	}
	subnets := make([]topology.Subnet, streamMin)
	for i := range subnets {
		subnets[i] = topology.Subnet{ID: uint32(i + 1), VPC: "v", Name: fmt.Sprintf("s%d", i),
			CIDR: netip.PrefixFrom(netip.AddrFrom4([4]byte{11, 0, byte(i >> 8), byte(i)}), 32), Host: "h&"}
	}
	marshaled := make([]ptrMarshaled, streamMin)
	for i := range marshaled {
		marshaled[i].N = i
	}
	bytes := make([]byte, streamMin*2)
	for _, tc := range []struct {
		name   string
		v      any
		stream bool
	}{
		{"hosts", hosts, true},
		{"hosts with their attachment", infos, true},
		{"route entries", subnets, true},
		{"pointer marshalers", marshaled, true},
		{"bytes", bytes, false},
		{"short", hosts[:streamMin-1], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			writeJSON(rec, http.StatusOK, tc.v)
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			if got := rec.Body.String(); got != string(want)+"\n" {
				t.Fatalf("body differs from json.Marshal:\n got %.200s…\nwant %.200s…", got, want)
			}
			if _, ok := tc.v.([]HostInfo); ok && strings.Count(rec.Body.String(), `"attachment":{"state":"attached"`) != len(infos) {
				t.Fatalf("hosts listed without their attachment: %.300s…", rec.Body.String())
			}
			if got := streamable(reflect.ValueOf(tc.v)); got != tc.stream {
				t.Fatalf("streamed: %v, want %v", got, tc.stream)
			}
		})
	}
}
