package aliyunapi

import (
	"net/http"
	"net/netip"

	"github.com/vpcflow/vpcflow/topology"
)

// DefaultVPCCIDR is the CIDR of a VPC created without one, as on Aliyun.
const DefaultVPCCIDR = "172.16.0.0/12"

// ---- CreateVpc ----

type createVpcResponse struct {
	RequestId       string
	VpcId           string
	VRouterId       string
	RouteTableId    string
	ResourceGroupId string
}

func (c *call) createVpc() (any, *Error) {
	return c.idempotent(func() (any, *Error) {
		cidrText := cmpOr(c.p.str("CidrBlock"), DefaultVPCCIDR)
		cidr, aerr := parseCIDR("InvalidCidrBlock.Malformed", "CidrBlock", cidrText, false)
		if aerr != nil {
			return nil, aerr
		}
		name := c.p.str("VpcName")
		if name != "" {
			if aerr := checkName("InvalidVpcName.Malformed", "VpcName", name); aerr != nil {
				return nil, aerr
			}
		} else {
			name = randomName("vpc")
		}
		out, aerr := c.apply([]topology.Op{topology.Create(&topology.VPC{Name: name, CIDR: cidr})}, func(te *topology.Error) *Error {
			switch te.Field {
			case "cidr":
				return newError(http.StatusBadRequest, "InvalidCidrBlock.Malformed", "Specified CIDR block is not valid: %s", te.Msg)
			case "name":
				if te.Kind == topology.ErrConflict {
					return newError(http.StatusBadRequest, "InvalidVpcName.Duplicate", "A VPC named %q exists already: vpcflow names are unique (Aliyun's are labels); choose another VpcName.", name)
				}
			}
			return nil
		})
		if aerr != nil {
			return nil, aerr
		}
		v := out[0].VPC()
		return createVpcResponse{RequestId: c.requestID, VpcId: v.AliyunID(), VRouterId: v.AliyunVRouterID(), RouteTableId: v.AliyunRouteTableID()}, nil
	})
}

// ---- DescribeVpcs ----

type stringList struct {
	VSwitchId []string `json:"VSwitchId"`
}

type routerTableIDs struct {
	RouterTableIds []string `json:"RouterTableIds"`
}

type userCidrs struct {
	UserCidr []string `json:"UserCidr"`
}

type vpcItem struct {
	VpcId           string
	RegionId        string
	Status          string
	VpcName         string
	VSwitchIds      stringList
	CidrBlock       string
	VRouterId       string
	RouterTableIds  routerTableIDs
	Description     string
	IsDefault       bool
	CreationTime    string
	OwnerId         int64
	ResourceGroupId string
	UserCidrs       userCidrs
	EnabledIpv6     bool
}

type vpcList struct {
	Vpc []vpcItem `json:"Vpc"`
}

type describeVpcsResponse struct {
	RequestId  string
	TotalCount int32
	PageNumber int32
	PageSize   int32
	Vpcs       vpcList
}

func (c *call) describeVpcs() (any, *Error) {
	pg, aerr := c.p.pageParams(50)
	if aerr != nil {
		return nil, aerr
	}
	ids, aerr := c.p.list("VpcId", 20)
	if aerr != nil {
		return nil, aerr
	}
	want := setOf(ids)
	name := c.p.str("VpcName")
	isDefault, _, aerr := c.p.boolParam("IsDefault")
	if aerr != nil {
		return nil, aerr
	}
	var items []vpcItem
	c.read(func(st *topology.State) {
		if isDefault {
			return // vpcflow has no default VPC
		}
		for _, v := range allVPCs(st) {
			if (want != nil && !want[v.AliyunID()]) || (name != "" && v.Name != name) {
				continue
			}
			items = append(items, c.vpcItem(st, v))
		}
	})
	return describeVpcsResponse{RequestId: c.requestID, TotalCount: int32(len(items)), PageNumber: pg.number, PageSize: pg.size,
		Vpcs: vpcList{Vpc: page(items, pg)}}, nil
}

func (c *call) vpcItem(st *topology.State, v topology.VPC) vpcItem {
	cidr := ""
	if v.CIDR.IsValid() {
		cidr = v.CIDR.String()
	}
	return vpcItem{
		VpcId: v.AliyunID(), RegionId: c.region, Status: "Available", VpcName: v.Name,
		VSwitchIds: stringList{VSwitchId: vswitchIDs(vswitchesOf(st, v.Name))},
		CidrBlock:  cidr, VRouterId: v.AliyunVRouterID(),
		RouterTableIds: routerTableIDs{RouterTableIds: []string{v.AliyunRouteTableID()}},
		CreationTime:   c.creationTime(v.AliyunID()), OwnerId: OwnerID, UserCidrs: userCidrs{UserCidr: []string{}},
	}
}

func setOf(ids []string) map[string]bool {
	if ids == nil {
		return nil
	}
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// ---- DeleteVpc ----

type requestOnly struct {
	RequestId string
}

func (c *call) deleteVpc() (any, *Error) {
	id, aerr := c.p.required("VpcId")
	if aerr != nil {
		return nil, aerr
	}
	var v topology.VPC
	var found bool
	var nsw, nhost, nsub int
	c.read(func(st *topology.State) {
		if v, found = vpcByAliyunID(st, id); found {
			nsw, nhost, nsub = len(st.VSwitches(v.Name)), len(st.Hosts(v.Name)), len(st.Subnets(v.Name))
		}
	})
	switch {
	case !found:
		return nil, errVpcNotFound(id)
	case c.s.routes.busy(v.Name):
		return nil, errRouteEntryStatus()
	case nsub > 0:
		return nil, newError(http.StatusBadRequest, "DependencyViolation.RouteEntry", "Specified VPC %s has %d custom route entries; delete them first.", id, nsub)
	case nhost > 0:
		return nil, newError(http.StatusBadRequest, "DependencyViolation.Instance", "Specified VPC %s has %d instances; delete them first.", id, nhost)
	case nsw > 0:
		return nil, newError(http.StatusBadRequest, "DependencyViolation.VSwitch", "Specified VPC %s has %d vSwitches; delete them first.", id, nsw)
	}
	if _, aerr := c.apply([]topology.Op{topology.Delete(&topology.VPC{Name: v.Name}, false)}, func(te *topology.Error) *Error {
		if te.Kind == topology.ErrConflict {
			return newError(http.StatusBadRequest, "DependencyViolation", "Specified VPC %s has dependent resources: %s", id, te.Msg)
		}
		if te.Kind == topology.ErrNotFound {
			return errVpcNotFound(id)
		}
		return nil
	}); aerr != nil {
		return nil, aerr
	}
	return requestOnly{RequestId: c.requestID}, nil
}

func errVpcNotFound(id string) *Error {
	return newError(http.StatusNotFound, "InvalidVpcId.NotFound", "Specified value of VpcId %q is not found in our record.", id)
}

// hostBits is the number of addresses of a prefix.
func addresses(p netip.Prefix) int64 { return int64(1) << (32 - p.Bits()) }
