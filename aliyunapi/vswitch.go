package aliyunapi

import (
	"net/http"

	"github.com/vpcflow/vpcflow/topology"
)

// ZoneOf is the one zone of a region: vpcflow has no zones, so each
// region has exactly one, "<region>-a" (the metadata service reports it
// as every VM's zone-id).
func ZoneOf(region string) string { return region + "-a" }

// ---- CreateVSwitch ----

type createVSwitchResponse struct {
	RequestId string
	VSwitchId string
}

func (c *call) createVSwitch() (any, *Error) {
	return c.idempotent(func() (any, *Error) {
		vpcID, aerr := c.p.required("VpcId")
		if aerr != nil {
			return nil, aerr
		}
		zone, aerr := c.p.required("ZoneId")
		if aerr != nil {
			return nil, aerr
		}
		if zone != ZoneOf(c.region) {
			return nil, newError(http.StatusBadRequest, "InvalidZoneId.NotFound", "Specified zone %q is not found: vpcflow has one zone per region, %s.", zone, ZoneOf(c.region))
		}
		cidr, aerr := parseCIDR("InvalidCidrBlock.Malformed", "CidrBlock", c.p.str("CidrBlock"), false)
		if aerr != nil {
			return nil, aerr
		}
		name := c.p.str("VSwitchName")
		if name != "" {
			if aerr := checkName("InvalidVSwitchName.Malformed", "VSwitchName", name); aerr != nil {
				return nil, aerr
			}
		} else {
			name = randomName("vsw")
		}
		var v topology.VPC
		var found bool
		c.read(func(st *topology.State) { v, found = vpcByAliyunID(st, vpcID) })
		if !found {
			return nil, errVpcNotFound(vpcID)
		}
		out, aerr := c.apply([]topology.Op{topology.Create(&topology.VSwitch{VPC: v.Name, Name: name, CIDR: cidr})}, func(te *topology.Error) *Error {
			switch {
			case te.Field == "vpc" && te.Kind == topology.ErrNotFound:
				return errVpcNotFound(vpcID)
			case te.Field == "cidr" && te.Kind == topology.ErrConflict:
				return newError(http.StatusBadRequest, "InvalidCidrBlock.Overlapped", "Specified CIDR block overlapped with other vSwitch or route entry: %s", te.Msg)
			case te.Field == "cidr":
				return newError(http.StatusBadRequest, "InvalidCidrBlock.Malformed", "Specified CIDR block is not valid: %s", te.Msg)
			case te.Field == "name" && te.Kind == topology.ErrConflict:
				return newError(http.StatusBadRequest, "InvalidVSwitchName.Duplicate", "A vSwitch named %q exists in this VPC already: vpcflow names are unique per VPC; choose another VSwitchName.", name)
			}
			return nil
		})
		if aerr != nil {
			return nil, aerr
		}
		return createVSwitchResponse{RequestId: c.requestID, VSwitchId: out[0].VSwitch().AliyunID()}, nil
	})
}

// ---- DescribeVSwitches ----

type routeTableRef struct {
	RouteTableId   string
	RouteTableType string
}

type vswitchItem struct {
	VSwitchId               string
	VpcId                   string
	Status                  string
	CidrBlock               string
	ZoneId                  string
	AvailableIpAddressCount int64
	Description             string
	VSwitchName             string
	IsDefault               bool
	CreationTime            string
	OwnerId                 int64
	ResourceGroupId         string
	NetworkAclId            string
	RouteTable              routeTableRef
	ShareType               string
	EnabledIpv6             bool
}

type vswitchList struct {
	VSwitch []vswitchItem `json:"VSwitch"`
}

type describeVSwitchesResponse struct {
	RequestId  string
	TotalCount int32
	PageNumber int32
	PageSize   int32
	VSwitches  vswitchList
}

func (c *call) describeVSwitches() (any, *Error) {
	pg, aerr := c.p.pageParams(50)
	if aerr != nil {
		return nil, aerr
	}
	ids, aerr := c.p.list("VSwitchId", 20)
	if aerr != nil {
		return nil, aerr
	}
	want := setOf(ids)
	vpcID, name, zone, table := c.p.str("VpcId"), c.p.str("VSwitchName"), c.p.str("ZoneId"), c.p.str("RouteTableId")
	isDefault, _, aerr := c.p.boolParam("IsDefault")
	if aerr != nil {
		return nil, aerr
	}
	var items []vswitchItem
	c.read(func(st *topology.State) {
		if isDefault || (zone != "" && zone != ZoneOf(c.region)) {
			return
		}
		for _, v := range allVPCs(st) {
			if (vpcID != "" && v.AliyunID() != vpcID) || (table != "" && v.AliyunRouteTableID() != table) {
				continue
			}
			for _, w := range vswitchesOf(st, v.Name) {
				if (want != nil && !want[w.AliyunID()]) || (name != "" && w.Name != name) {
					continue
				}
				items = append(items, c.vswitchItem(st, v, w))
			}
		}
	})
	return describeVSwitchesResponse{RequestId: c.requestID, TotalCount: int32(len(items)), PageNumber: pg.number, PageSize: pg.size,
		VSwitches: vswitchList{VSwitch: page(items, pg)}}, nil
}

func (c *call) vswitchItem(st *topology.State, v topology.VPC, w topology.VSwitch) vswitchItem {
	// Aliyun keeps 4 addresses of each vSwitch (network, gateway side and
	// the last ones); vpcflow keeps network, broadcast and gateway.
	free := addresses(w.CIDR) - 3 - int64(st.HostCountOfVSwitch(v.Name, w.Name))
	return vswitchItem{
		VSwitchId: w.AliyunID(), VpcId: v.AliyunID(), Status: "Available", CidrBlock: w.CIDR.String(), ZoneId: ZoneOf(c.region),
		AvailableIpAddressCount: max(free, 0), VSwitchName: w.Name, CreationTime: c.creationTime(w.AliyunID()), OwnerId: OwnerID,
		RouteTable: routeTableRef{RouteTableId: v.AliyunRouteTableID(), RouteTableType: "System"}, ShareType: "Sharing",
	}
}

// ---- DeleteVSwitch ----

func (c *call) deleteVSwitch() (any, *Error) {
	id, aerr := c.p.required("VSwitchId")
	if aerr != nil {
		return nil, aerr
	}
	var w topology.VSwitch
	var found bool
	var nhost int
	c.read(func(st *topology.State) {
		if w, found = vswitchByAliyunID(st, id); found {
			nhost = len(st.HostsOfVSwitch(w.VPC, w.Name))
		}
	})
	switch {
	case !found:
		return nil, errVSwitchNotFound(id)
	case nhost > 0:
		return nil, newError(http.StatusBadRequest, "DependencyViolation", "Specified vSwitch %s has %d instances; delete them first.", id, nhost)
	}
	if _, aerr := c.apply([]topology.Op{topology.Delete(&topology.VSwitch{VPC: w.VPC, Name: w.Name}, false)}, func(te *topology.Error) *Error {
		switch te.Kind {
		case topology.ErrConflict:
			return newError(http.StatusBadRequest, "DependencyViolation", "Specified vSwitch %s has dependent resources: %s", id, te.Msg)
		case topology.ErrNotFound:
			return errVSwitchNotFound(id)
		}
		return nil
	}); aerr != nil {
		return nil, aerr
	}
	return requestOnly{RequestId: c.requestID}, nil
}

func errVSwitchNotFound(id string) *Error {
	return newError(http.StatusNotFound, "InvalidVSwitchId.NotFound", "Specified virtual switch %q does not exist.", id)
}
