package aliyunapi

import (
	"net/http"
	"net/netip"
	"sort"
	"strings"

	"github.com/vpcflow/vpcflow/topology"
)

// MaxCustomRouteEntries is Aliyun's quota of custom route entries per
// route table.
const MaxCustomRouteEntries = 200

// cloudServices is 100.64.0.0/10, which Aliyun keeps for its services: a
// custom route entry may not equal it or sit inside it.
var cloudServices = netip.MustParsePrefix("100.64.0.0/10")

// entry is one route entry of a VPC's route table, system or custom.
type entry struct {
	id, table, dest, kind, nextHopType, nextHopID, name, status string
}

// routeEntries lists a VPC's route table: a system entry per vSwitch CIDR
// (next hop "local"), then the custom entries (subnets, next hop the
// instance), each in ID order.
func (c *call) routeEntries(st *topology.State, v topology.VPC) []entry {
	var out []entry
	for _, w := range vswitchesOf(st, v.Name) {
		out = append(out, entry{id: topology.AliyunSystemRouteEntryID(w.ID), table: v.AliyunRouteTableID(), dest: w.CIDR.String(),
			kind: "System", nextHopType: "local", status: "Available"})
	}
	subs := st.Subnets(v.Name)
	sort.Slice(subs, func(i, j int) bool { return subs[i].ID < subs[j].ID })
	for _, s := range subs {
		h, _ := st.Host(v.Name, s.Host)
		out = append(out, entry{id: s.AliyunID(), table: v.AliyunRouteTableID(), dest: s.CIDR.String(), kind: "Custom",
			nextHopType: "Instance", nextHopID: h.AliyunID(), name: s.Name, status: c.s.routes.status(v.Name, s.Name)})
	}
	return out
}

// ---- DescribeVRouters ----

type routeTableIDList struct {
	RouteTableId []string `json:"RouteTableId"`
}

type vrouterItem struct {
	VRouterId     string
	RegionId      string
	VpcId         string
	RouteTableIds routeTableIDList
	VRouterName   string
	Description   string
	CreationTime  string
}

type vrouterList struct {
	VRouter []vrouterItem `json:"VRouter"`
}

type describeVRoutersResponse struct {
	RequestId  string
	TotalCount int32
	PageNumber int32
	PageSize   int32
	VRouters   vrouterList
}

func (c *call) describeVRouters() (any, *Error) {
	pg, aerr := c.p.pageParams(50)
	if aerr != nil {
		return nil, aerr
	}
	id := c.p.str("VRouterId")
	var items []vrouterItem
	c.read(func(st *topology.State) {
		for _, v := range allVPCs(st) {
			if id != "" && v.AliyunVRouterID() != id {
				continue
			}
			items = append(items, vrouterItem{VRouterId: v.AliyunVRouterID(), RegionId: c.region, VpcId: v.AliyunID(),
				RouteTableIds: routeTableIDList{RouteTableId: []string{v.AliyunRouteTableID()}}, CreationTime: c.creationTime(v.AliyunID())})
		}
	})
	return describeVRoutersResponse{RequestId: c.requestID, TotalCount: int32(len(items)), PageNumber: pg.number, PageSize: pg.size,
		VRouters: vrouterList{VRouter: page(items, pg)}}, nil
}

// tableMatches applies the route table filters shared by
// DescribeRouteTables and DescribeRouteTableList.
func (c *call) tableMatches(v topology.VPC) bool {
	p := c.p
	switch {
	case p.str("RouteTableId") != "" && p.str("RouteTableId") != v.AliyunRouteTableID():
		return false
	case p.str("VRouterId") != "" && p.str("VRouterId") != v.AliyunVRouterID():
		return false
	case p.str("RouterId") != "" && p.str("RouterId") != v.AliyunVRouterID():
		return false
	case p.str("RouterType") != "" && p.str("RouterType") != "VRouter":
		return false
	case p.str("VpcId") != "" && p.str("VpcId") != v.AliyunID():
		return false
	case p.str("RouteTableType") != "" && p.str("RouteTableType") != "System":
		return false
	case p.str("Type") != "" && p.str("Type") != "System":
		return false
	case p.str("RouteTableName") != "":
		return false // vpcflow's route tables have no name
	}
	return true
}

// ---- DescribeRouteTables ----

type nextHop struct {
	NextHopType        string
	NextHopId          string
	Enabled            int32
	Weight             int32
	NextHopRegionId    string       `json:",omitempty"`
	NextHopRelatedInfo *nextHopInfo `json:",omitempty"`
}

type nextHopInfo struct {
	InstanceId   string
	InstanceType string
	RegionId     string
}

type nextHops struct {
	NextHop []nextHop `json:"NextHop"`
}

type routeEntryItem struct {
	RouteEntryId         string
	RouteEntryName       string
	RouteTableId         string
	DestinationCidrBlock string
	Type                 string
	NextHopType          string
	NextHopId            string
	InstanceId           string
	Status               string
	Description          string
	NextHops             nextHops
}

type routeEntryList struct {
	RouteEntry []routeEntryItem `json:"RouteEntry"`
}

type routeTableItem struct {
	VRouterId       string
	RouteTableId    string
	RouteTableType  string
	CreationTime    string
	Status          string
	ResourceGroupId string
	VSwitchIds      stringList
	RouteEntrys     routeEntryList
}

type routeTableList struct {
	RouteTable []routeTableItem `json:"RouteTable"`
}

type describeRouteTablesResponse struct {
	RequestId   string
	TotalCount  int32
	PageNumber  int32
	PageSize    int32
	RouteTables routeTableList
}

func (c *call) describeRouteTables() (any, *Error) {
	pg, aerr := c.p.pageParams(50)
	if aerr != nil {
		return nil, aerr
	}
	var items []routeTableItem
	c.read(func(st *topology.State) {
		for _, v := range allVPCs(st) {
			if !c.tableMatches(v) {
				continue
			}
			var es []routeEntryItem
			for _, e := range c.routeEntries(st, v) {
				es = append(es, c.routeEntryItem(e))
			}
			items = append(items, routeTableItem{VRouterId: v.AliyunVRouterID(), RouteTableId: v.AliyunRouteTableID(),
				RouteTableType: "System", CreationTime: c.creationTime(v.AliyunID()), Status: "Available",
				VSwitchIds:  stringList{VSwitchId: vswitchIDs(vswitchesOf(st, v.Name))},
				RouteEntrys: routeEntryList{RouteEntry: nonNil(es)}})
		}
	})
	return describeRouteTablesResponse{RequestId: c.requestID, TotalCount: int32(len(items)), PageNumber: pg.number, PageSize: pg.size,
		RouteTables: routeTableList{RouteTable: page(items, pg)}}, nil
}

func (c *call) routeEntryItem(e entry) routeEntryItem {
	it := routeEntryItem{RouteEntryId: e.id, RouteEntryName: e.name, RouteTableId: e.table, DestinationCidrBlock: e.dest, Type: e.kind,
		NextHopType: e.nextHopType, NextHopId: e.nextHopID, Status: e.status}
	hop := nextHop{NextHopType: e.nextHopType, NextHopId: e.nextHopID, Enabled: 1}
	if e.nextHopType == "Instance" {
		it.InstanceId = e.nextHopID
		hop.NextHopRegionId = c.region
		hop.NextHopRelatedInfo = &nextHopInfo{InstanceId: e.nextHopID, InstanceType: "Instance", RegionId: c.region}
	}
	it.NextHops = nextHops{NextHop: []nextHop{hop}}
	return it
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ---- DescribeRouteTableList ----

type routerTableListItem struct {
	VpcId                  string
	RouterType             string
	RouterId               string
	RouteTableId           string
	RouteTableName         string
	RouteTableType         string
	AssociateType          string
	Status                 string
	Description            string
	CreationTime           string
	OwnerId                int64
	ResourceGroupId        string
	RoutePropagationEnable bool
	VSwitchIds             stringList
}

type routerTableList struct {
	RouterTableListType []routerTableListItem `json:"RouterTableListType"`
}

type describeRouteTableListResponse struct {
	RequestId       string
	TotalCount      int32
	PageNumber      int32
	PageSize        int32
	RouterTableList routerTableList
}

func (c *call) describeRouteTableList() (any, *Error) {
	pg, aerr := c.p.pageParams(50)
	if aerr != nil {
		return nil, aerr
	}
	var items []routerTableListItem
	c.read(func(st *topology.State) {
		for _, v := range allVPCs(st) {
			if !c.tableMatches(v) {
				continue
			}
			items = append(items, routerTableListItem{VpcId: v.AliyunID(), RouterType: "VRouter", RouterId: v.AliyunVRouterID(),
				RouteTableId: v.AliyunRouteTableID(), RouteTableType: "System", AssociateType: "VSwitch", Status: "Available",
				CreationTime: c.creationTime(v.AliyunID()), OwnerId: OwnerID, RoutePropagationEnable: true,
				VSwitchIds: stringList{VSwitchId: vswitchIDs(vswitchesOf(st, v.Name))}})
		}
	})
	return describeRouteTableListResponse{RequestId: c.requestID, TotalCount: int32(len(items)), PageNumber: pg.number, PageSize: pg.size,
		RouterTableList: routerTableList{RouterTableListType: page(items, pg)}}, nil
}

// ---- DescribeRouteEntryList ----

type routeEntryListItem struct {
	RouteEntryId         string
	RouteEntryName       string
	RouteTableId         string
	DestinationCidrBlock string
	Type                 string
	Status               string
	Description          string
	IpVersion            string
	Origin               string
	NextHops             nextHops
}

type describeRouteEntryListResponse struct {
	RequestId   string
	NextToken   string
	RouteEntrys struct {
		RouteEntry []routeEntryListItem `json:"RouteEntry"`
	}
}

func (c *call) describeRouteEntryList() (any, *Error) {
	p := c.p
	table, aerr := p.required("RouteTableId")
	if aerr != nil {
		return nil, aerr
	}
	dests, aerr := p.list("DestinationCidrBlock", 1)
	if aerr != nil {
		return nil, aerr
	}
	for k, v := range p {
		if strings.HasPrefix(k, "DestCidrBlockList.") {
			dests = append(dests, v)
		}
	}
	want := setOf(dests)
	var items []routeEntryListItem
	var found bool
	c.read(func(st *topology.State) {
		var v topology.VPC
		if v, found = vpcByPrefixedID(st, topology.AliyunRouteTablePrefix, table); !found {
			return
		}
		if ipv := p.str("IpVersion"); ipv != "" && !strings.EqualFold(ipv, "ipv4") {
			return
		}
		for _, e := range c.routeEntries(st, v) {
			switch {
			case p.str("RouteEntryId") != "" && p.str("RouteEntryId") != e.id,
				p.str("RouteEntryType") != "" && p.str("RouteEntryType") != e.kind,
				want != nil && !want[e.dest],
				p.str("NextHopId") != "" && p.str("NextHopId") != e.nextHopID,
				p.str("NextHopType") != "" && p.str("NextHopType") != e.nextHopType,
				p.str("RouteEntryName") != "" && p.str("RouteEntryName") != e.name:
				continue
			}
			it := c.routeEntryItem(e)
			origin := "CustomRoute"
			if e.kind == "System" {
				origin = "SystemRoute"
			}
			items = append(items, routeEntryListItem{RouteEntryId: it.RouteEntryId, RouteEntryName: it.RouteEntryName, RouteTableId: it.RouteTableId,
				DestinationCidrBlock: it.DestinationCidrBlock, Type: it.Type, Status: it.Status, IpVersion: "ipv4", Origin: origin, NextHops: it.NextHops})
		}
	})
	if !found {
		return nil, errRouteTableNotFound(table)
	}
	pageItems, next, aerr := tokenPage(p, items, "MaxResult", 50, 100)
	if aerr != nil {
		return nil, aerr
	}
	resp := describeRouteEntryListResponse{RequestId: c.requestID, NextToken: next}
	resp.RouteEntrys.RouteEntry = nonNil(pageItems)
	return resp, nil
}

func errRouteTableNotFound(id string) *Error {
	return newError(http.StatusNotFound, "InvalidRouteTableId.NotFound", "Specified route table %q does not exist.", id)
}

// ---- CreateRouteEntry ----

type createRouteEntryResponse struct {
	RequestId    string
	RouteEntryId string
}

func (c *call) createRouteEntry() (any, *Error) {
	return c.idempotent(c.doCreateRouteEntry)
}

func (c *call) doCreateRouteEntry() (any, *Error) {
	p := c.p
	table, aerr := p.required("RouteTableId")
	if aerr != nil {
		return nil, aerr
	}
	dest, aerr := parseCIDR("InvalidCidrBlock.Malformed", "DestinationCidrBlock", p.str("DestinationCidrBlock"), true)
	if aerr != nil {
		return nil, aerr
	}
	for k := range p {
		if strings.HasPrefix(k, "NextHopList") {
			return nil, newError(http.StatusBadRequest, "InvalidNextHopType", "Specified parameter NextHopList is not supported: vpcflow has no ECMP route entries; give NextHopType Instance and NextHopId.")
		}
	}
	if t := cmpOr(p.str("NextHopType"), "Instance"); t != "Instance" {
		return nil, newError(http.StatusBadRequest, "InvalidNextHopType", "Specified parameter NextHopType %q is not valid: vpcflow routes to instances (NextHopType Instance) only.", t)
	}
	hopID, aerr := p.required("NextHopId")
	if aerr != nil {
		return nil, aerr
	}
	if dest.Overlaps(cloudServices) && dest.Bits() >= cloudServices.Bits() {
		return nil, newError(http.StatusBadRequest, "InvalidCidrBlock", "Specified CIDR block %s is not valid: it may not be or sit inside 100.64.0.0/10, which the cloud's services use.", dest)
	}
	if name := p.str("RouteEntryName"); name != "" {
		if aerr := checkName("InvalidRouteEntryName.Malformed", "RouteEntryName", name); aerr != nil {
			return nil, aerr
		}
	}
	var v topology.VPC
	var h topology.Host
	var name string
	aerr = nil
	c.read(func(st *topology.State) {
		var ok bool
		if v, ok = vpcByPrefixedID(st, topology.AliyunRouteTablePrefix, table); !ok {
			aerr = errRouteTableNotFound(table)
			return
		}
		if h, ok = hostByAliyunID(st, hopID); !ok || h.VPC != v.Name {
			aerr = newError(http.StatusNotFound, "InvalidNextHopId.NotFound", "Specified next hop %q does not exist in the VPC of route table %s.", hopID, table)
			return
		}
		subs := st.Subnets(v.Name)
		if len(subs) >= MaxCustomRouteEntries {
			aerr = newError(http.StatusBadRequest, "QuotaExceeded", "Route entry quota exceeded in this route table: at most %d custom route entries.", MaxCustomRouteEntries)
			return
		}
		for _, s := range subs {
			if s.CIDR == dest {
				if s.Host == h.Name {
					aerr = newError(http.StatusBadRequest, "InvalidRouteEntry.Duplicate", "The route entry already exist: %s → %s is %s.", dest, hopID, s.AliyunID())
				} else {
					aerr = newError(http.StatusBadRequest, "InvalidCIDRBlock.Duplicate", "Specified CIDR block %s already exists in route table %s (%s).", dest, table, s.AliyunID())
				}
				return
			}
		}
		name = p.str("RouteEntryName")
		if name != "" {
			if _, taken := st.Subnet(v.Name, name); taken {
				aerr = newError(http.StatusBadRequest, "InvalidRouteEntryName.Duplicate", "A route entry named %q exists in this route table already: vpcflow names are unique per VPC.", name)
			}
			return
		}
		name = topology.DefaultSubnetName(dest)
		if _, taken := st.Subnet(v.Name, name); taken {
			name = randomName("rte")
		}
	})
	if aerr != nil {
		return nil, aerr
	}
	if !c.s.routes.start(v.Name, name, statePending) {
		return nil, errRouteEntryStatus()
	}
	sub := &topology.Subnet{VPC: v.Name, Name: name, CIDR: dest, Host: h.Name}
	var id string
	aerr = c.applyAsync(v.Name, name, topology.Create(sub), func(st *topology.State) bool {
		s, ok := st.Subnet(v.Name, name)
		if ok && s.CIDR == dest && s.Host == h.Name {
			id = s.AliyunID()
			return true
		}
		return false
	}, func(te *topology.Error) *Error {
		switch {
		case te.Field == "cidr" && te.Kind == topology.ErrConflict:
			return newError(http.StatusBadRequest, "InvalidCIDRBlock.Duplicate", "Specified CIDR block already exists: %s", te.Msg)
		case te.Field == "cidr":
			return newError(http.StatusBadRequest, "InvalidCidrBlock", "Specified CIDR block is not valid: %s", te.Msg)
		case te.Field == "host":
			return newError(http.StatusNotFound, "InvalidNextHopId.NotFound", "Specified next hop does not exist: %s", te.Msg)
		case te.Field == "vpc":
			return errRouteTableNotFound(table)
		}
		return nil
	})
	if aerr != nil {
		return nil, aerr
	}
	if id == "" {
		// The apply finished before a poll saw it: read the ID now.
		c.read(func(st *topology.State) {
			if s, ok := st.Subnet(v.Name, name); ok {
				id = s.AliyunID()
			}
		})
	}
	return createRouteEntryResponse{RequestId: c.requestID, RouteEntryId: id}, nil
}

// ---- DeleteRouteEntry ----

func (c *call) deleteRouteEntry() (any, *Error) {
	p := c.p
	entryID, table, destText, hopID := p.str("RouteEntryId"), p.str("RouteTableId"), p.str("DestinationCidrBlock"), p.str("NextHopId")
	for k := range p {
		if strings.HasPrefix(k, "NextHopList") {
			return nil, newError(http.StatusBadRequest, "InvalidNextHopType", "Specified parameter NextHopList is not supported: vpcflow has no ECMP route entries.")
		}
	}
	if entryID == "" && (table == "" || destText == "") {
		if table == "" {
			return nil, errMissing("RouteTableId")
		}
		return nil, errMissing("DestinationCidrBlock")
	}
	var dest netip.Prefix
	if destText != "" {
		var aerr *Error
		if dest, aerr = parseCIDR("InvalidCidrBlock.Malformed", "DestinationCidrBlock", destText, true); aerr != nil {
			return nil, aerr
		}
	}
	if _, system := topology.ParseAliyunSystemRouteEntryID(entryID); system {
		return nil, errSystemEntry()
	}
	var s topology.Subnet
	var aerr *Error
	c.read(func(st *topology.State) {
		var v topology.VPC
		if table != "" {
			var ok bool
			if v, ok = vpcByPrefixedID(st, topology.AliyunRouteTablePrefix, table); !ok {
				aerr = errRouteTableNotFound(table)
				return
			}
		}
		if entryID != "" {
			var ok bool
			if s, ok = subnetByAliyunID(st, entryID); !ok || (table != "" && s.VPC != v.Name) || (destText != "" && s.CIDR != dest) {
				aerr = newError(http.StatusBadRequest, "InvalidRouteEntryId.NotFound", "Specified RouteEntryId %q does not exist.", entryID)
			}
		} else {
			for _, w := range st.VSwitches(v.Name) {
				if w.CIDR == dest {
					aerr = errSystemEntry()
					return
				}
			}
			found := false
			for _, x := range st.Subnets(v.Name) {
				if x.CIDR == dest {
					s, found = x, true
				}
			}
			if !found {
				aerr = newError(http.StatusBadRequest, "InvalidRouteEntry.NotFound", "Route entry not exists: route table %s has no custom entry for %s.", table, dest)
				return
			}
		}
		if aerr == nil && hopID != "" {
			if h, _ := st.Host(s.VPC, s.Host); h.AliyunID() != hopID {
				aerr = newError(http.StatusBadRequest, "InvalidRouteEntry.NotFound", "Route entry not exists: the entry for %s goes to %s, not %s.", s.CIDR, h.AliyunID(), hopID)
			}
		}
	})
	if aerr != nil {
		return nil, aerr
	}
	if !c.s.routes.start(s.VPC, s.Name, stateDeleting) {
		return nil, errRouteEntryStatus()
	}
	aerr = c.applyAsync(s.VPC, s.Name, topology.Delete(&topology.Subnet{VPC: s.VPC, Name: s.Name}, false), func(st *topology.State) bool {
		x, ok := st.Subnet(s.VPC, s.Name)
		return !ok || x.ID != s.ID
	}, func(te *topology.Error) *Error {
		if te.Kind == topology.ErrNotFound {
			return newError(http.StatusBadRequest, "InvalidRouteEntry.NotFound", "Route entry not exists: %s", te.Msg)
		}
		return nil
	})
	if aerr != nil {
		return nil, aerr
	}
	return requestOnly{RequestId: c.requestID}, nil
}

func errSystemEntry() *Error {
	return newError(http.StatusBadRequest, "OperationDenied", "Specified operation is denied as route entry type is system.")
}
