package aliyunapi

import (
	"github.com/vpcflow/vpcflow/topology"
)

// ---- DescribeInstances (ECS): hosts as instances ----

type ipList struct {
	IpAddress []string `json:"IpAddress"`
}

type vpcAttributes struct {
	VpcId            string
	VSwitchId        string
	PrivateIpAddress ipList
	NatIpAddress     string
}

type privateIPSet struct {
	PrivateIpAddress string
	Primary          bool
}

type networkInterface struct {
	NetworkInterfaceId string
	MacAddress         string
	PrimaryIpAddress   string
	Type               string
	PrivateIpSets      struct {
		PrivateIpSet []privateIPSet `json:"PrivateIpSet"`
	}
}

type instanceItem struct {
	InstanceId          string
	InstanceName        string
	HostName            string
	Description         string
	RegionId            string
	ZoneId              string
	Status              string
	InstanceNetworkType string
	InstanceType        string
	InstanceChargeType  string
	OSType              string
	CreationTime        string
	VpcAttributes       vpcAttributes
	InnerIpAddress      ipList
	PublicIpAddress     ipList
	SecurityGroupIds    struct {
		SecurityGroupId []string `json:"SecurityGroupId"`
	}
	NetworkInterfaces struct {
		NetworkInterface []networkInterface `json:"NetworkInterface"`
	}
}

type describeInstancesResponse struct {
	RequestId  string
	TotalCount int32
	PageNumber int32
	PageSize   int32
	NextToken  string
	Instances  struct {
		Instance []instanceItem `json:"Instance"`
	}
}

func (c *call) describeInstances() (any, *Error) {
	p := c.p
	ids, aerr := p.list("InstanceIds", 100)
	if aerr != nil {
		return nil, aerr
	}
	ips, aerr := p.list("PrivateIpAddresses", 100)
	if aerr != nil {
		return nil, aerr
	}
	wantID, wantIP := setOf(ids), setOf(ips)
	vpcID, vswID, name, zone, status := p.str("VpcId"), p.str("VSwitchId"), p.str("InstanceName"), p.str("ZoneId"), p.str("Status")
	var items []instanceItem
	c.read(func(st *topology.State) {
		if (zone != "" && zone != ZoneOf(c.region)) || (status != "" && status != "Running") {
			return
		}
		for _, v := range allVPCs(st) {
			if vpcID != "" && v.AliyunID() != vpcID {
				continue
			}
			for _, w := range vswitchesOf(st, v.Name) {
				if vswID != "" && w.AliyunID() != vswID {
					continue
				}
				for _, h := range st.HostsOfVSwitch(v.Name, w.Name) {
					if (wantID != nil && !wantID[h.AliyunID()]) || (wantIP != nil && !wantIP[h.IP.String()]) || (name != "" && h.Name != name) {
						continue
					}
					it := c.instanceItem(v, w, h)
					for _, name := range h.SecurityGroups {
						if g, ok := st.SecurityGroup(h.VPC, name); ok {
							it.SecurityGroupIds.SecurityGroupId = append(it.SecurityGroupIds.SecurityGroupId, g.AliyunID())
						}
					}
					items = append(items, it)
				}
			}
		}
	})
	// Either NextToken/MaxResults or PageNumber/PageSize pages, as ECS.
	resp := describeInstancesResponse{RequestId: c.requestID, TotalCount: int32(len(items))}
	if p.str("NextToken") != "" || p.str("MaxResults") != "" {
		pageItems, next, aerr := tokenPage(p, items, "MaxResults", 10, 100)
		if aerr != nil {
			return nil, aerr
		}
		resp.NextToken = next
		resp.Instances.Instance = nonNil(pageItems)
		return resp, nil
	}
	pg, aerr := p.pageParams(100)
	if aerr != nil {
		return nil, aerr
	}
	resp.PageNumber, resp.PageSize = pg.number, pg.size
	resp.Instances.Instance = page(items, pg)
	return resp, nil
}

func (c *call) instanceItem(v topology.VPC, w topology.VSwitch, h topology.Host) instanceItem {
	it := instanceItem{
		InstanceId: h.AliyunID(), InstanceName: h.Name, HostName: h.Name, RegionId: c.region, ZoneId: ZoneOf(c.region),
		Status: "Running", InstanceNetworkType: "vpc", InstanceType: "vpcflow.host", InstanceChargeType: "PostPaid", OSType: "linux",
		CreationTime:   c.s.created.at(h.AliyunID(), c.s.opts.Now()).Format("2006-01-02T15:04Z"),
		VpcAttributes:  vpcAttributes{VpcId: v.AliyunID(), VSwitchId: w.AliyunID(), PrivateIpAddress: ipList{IpAddress: []string{h.IP.String()}}},
		InnerIpAddress: ipList{IpAddress: []string{}}, PublicIpAddress: ipList{IpAddress: []string{}},
	}
	it.SecurityGroupIds.SecurityGroupId = []string{}
	ni := networkInterface{NetworkInterfaceId: topology.AliyunID("eni", h.ID), MacAddress: h.MAC.String(), PrimaryIpAddress: h.IP.String(), Type: "Primary"}
	ni.PrivateIpSets.PrivateIpSet = []privateIPSet{{PrivateIpAddress: h.IP.String(), Primary: true}}
	it.NetworkInterfaces.NetworkInterface = []networkInterface{ni}
	return it
}
