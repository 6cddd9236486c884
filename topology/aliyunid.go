package topology

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Alibaba Cloud IDs. Every VPC, vSwitch, host and subnet has one, derived
// from its kind and its store ID: "vpc-vf00000000000000007" is the VPC
// with ID 7. Store IDs are handed out once per kind and never reused, so
// an object keeps its Aliyun ID for life and a deleted object's ID never
// comes back, as on Aliyun; nothing extra is stored (the IDs of stores
// from before this existed are there already), and the mapping back is
// one lookup in the store's ID index. A VPC also names its vRouter and its
// one route table by its ID, and a vSwitch the system route entry of its
// CIDR.
//
// The IDs are written into the JSON of the objects (REST responses and
// the stored records) as aliyun_id and friends; they are never read back.
// The objects have MarshalJSON methods for that: a struct that embeds one
// must marshal itself, or the promoted method writes the object alone.

// Aliyun ID prefixes.
const (
	AliyunVPCPrefix        = "vpc"
	AliyunVSwitchPrefix    = "vsw"
	AliyunVRouterPrefix    = "vrt"
	AliyunRouteTablePrefix = "vtb"
	AliyunRouteEntryPrefix = "rte"
	AliyunInstancePrefix   = "i"
)

// aliyunIDDigits is how many decimal digits follow the tag.
const aliyunIDDigits = 17

// Tags after the prefix: "vf" for objects, "vs" for the system route
// entries of vSwitch CIDRs (which live among the route entries).
const (
	aliyunTag       = "vf"
	aliyunSystemTag = "vs"
)

// AliyunID is the Aliyun ID with prefix ("vpc", "vsw", …) of the object
// with store ID id.
func AliyunID(prefix string, id uint32) string {
	return fmt.Sprintf("%s-%s%0*d", prefix, aliyunTag, aliyunIDDigits, id)
}

// AliyunSystemRouteEntryID is the ID of the system route entry of the
// vSwitch with store ID id.
func AliyunSystemRouteEntryID(vswitchID uint32) string {
	return fmt.Sprintf("%s-%s%0*d", AliyunRouteEntryPrefix, aliyunSystemTag, aliyunIDDigits, vswitchID)
}

// ParseAliyunID returns the store ID an Aliyun ID with prefix names; false
// if s is not such an ID.
func ParseAliyunID(prefix, s string) (uint32, bool) {
	return parseAliyunID(prefix, aliyunTag, s)
}

// ParseAliyunSystemRouteEntryID returns the store ID of the vSwitch whose
// system route entry s names.
func ParseAliyunSystemRouteEntryID(s string) (uint32, bool) {
	return parseAliyunID(AliyunRouteEntryPrefix, aliyunSystemTag, s)
}

func parseAliyunID(prefix, tag, s string) (uint32, bool) {
	rest, ok := strings.CutPrefix(s, prefix+"-"+tag)
	if !ok || len(rest) != aliyunIDDigits {
		return 0, false
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] < '0' || rest[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	if err != nil || n == 0 || n > math.MaxUint32 {
		return 0, false
	}
	return uint32(n), true
}

// AliyunID is the VPC's Aliyun ID ("vpc-…").
func (v VPC) AliyunID() string { return AliyunID(AliyunVPCPrefix, v.ID) }

// AliyunVRouterID is the ID of the VPC's vRouter ("vrt-…").
func (v VPC) AliyunVRouterID() string { return AliyunID(AliyunVRouterPrefix, v.ID) }

// AliyunRouteTableID is the ID of the VPC's route table ("vtb-…").
func (v VPC) AliyunRouteTableID() string { return AliyunID(AliyunRouteTablePrefix, v.ID) }

// AliyunID is the vSwitch's Aliyun ID ("vsw-…").
func (w VSwitch) AliyunID() string { return AliyunID(AliyunVSwitchPrefix, w.ID) }

// AliyunID is the host's Aliyun instance ID ("i-…").
func (h Host) AliyunID() string { return AliyunID(AliyunInstancePrefix, h.ID) }

// AliyunID is the subnet's Aliyun route entry ID ("rte-…").
func (s Subnet) AliyunID() string { return AliyunID(AliyunRouteEntryPrefix, s.ID) }

// The JSON forms carry the Aliyun IDs (only once the object has an ID).
// The alias types have the fields and none of the methods.

type (
	vpcJSON     VPC
	vswitchJSON VSwitch
	hostJSON    Host
	subnetJSON  Subnet
)

// MarshalJSON writes the VPC with aliyun_id, aliyun_vrouter_id and
// aliyun_route_table_id.
func (v VPC) MarshalJSON() ([]byte, error) {
	out := struct {
		vpcJSON
		AliyunID           string `json:"aliyun_id,omitempty"`
		AliyunVRouterID    string `json:"aliyun_vrouter_id,omitempty"`
		AliyunRouteTableID string `json:"aliyun_route_table_id,omitempty"`
	}{vpcJSON: vpcJSON(v)}
	if v.ID != 0 {
		out.AliyunID, out.AliyunVRouterID, out.AliyunRouteTableID = v.AliyunID(), v.AliyunVRouterID(), v.AliyunRouteTableID()
	}
	return json.Marshal(out)
}

// MarshalJSON writes the vSwitch with aliyun_id.
func (w VSwitch) MarshalJSON() ([]byte, error) {
	out := struct {
		vswitchJSON
		AliyunID string `json:"aliyun_id,omitempty"`
	}{vswitchJSON: vswitchJSON(w)}
	if w.ID != 0 {
		out.AliyunID = w.AliyunID()
	}
	return json.Marshal(out)
}

// MarshalJSON writes the host with aliyun_id (its instance ID): the bytes
// json.Marshal writes for the struct with its tags and the aliyun_id
// field (TestHostJSONIsMarshal), written by hand (jsonwrite.go) because
// every host is marshaled on every store commit and in every listing.
func (h Host) MarshalJSON() ([]byte, error) {
	return h.AppendJSON(make([]byte, 0, 256)), nil
}

// MarshalJSON writes the subnet with aliyun_id (its route entry ID), as
// Host's (TestSubnetJSONIsMarshal).
func (s Subnet) MarshalJSON() ([]byte, error) {
	return s.AppendJSON(make([]byte, 0, 160)), nil
}
