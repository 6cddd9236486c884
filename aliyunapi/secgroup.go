package aliyunapi

import (
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/vpcflow/vpcflow/topology"
)

// Security groups (ECS API 2014-05-26): the groups and their members are
// vpcflow's security groups (topology.SecurityGroup, "sg-vf…") and the
// hosts' security_groups, the same objects the REST API shows. The rules
// are in secgrouprule.go.

// securityGroupActions are the ECS API's security group actions.
func securityGroupActions() map[string]handler {
	return map[string]handler{
		"CreateSecurityGroup":            (*call).createSecurityGroup,
		"DescribeSecurityGroups":         (*call).describeSecurityGroups,
		"DescribeSecurityGroupAttribute": (*call).describeSecurityGroupAttribute,
		"DeleteSecurityGroup":            (*call).deleteSecurityGroup,
		"AuthorizeSecurityGroup":         (*call).authorizeSecurityGroup,
		"AuthorizeSecurityGroupEgress":   (*call).authorizeSecurityGroupEgress,
		"RevokeSecurityGroup":            (*call).revokeSecurityGroup,
		"RevokeSecurityGroupEgress":      (*call).revokeSecurityGroupEgress,
		"ModifySecurityGroupRule":        (*call).modifySecurityGroupRule,
		"ModifySecurityGroupEgressRule":  (*call).modifySecurityGroupEgressRule,
		"JoinSecurityGroup":              (*call).joinSecurityGroup,
		"LeaveSecurityGroup":             (*call).leaveSecurityGroup,
		"ModifyInstanceAttribute":        (*call).modifyInstanceAttribute,
		"ModifySecurityGroupAttribute":   (*call).modifySecurityGroupAttribute,
		"ModifySecurityGroupPolicy":      (*call).modifySecurityGroupPolicy,
	}
}

// ---- CreateSecurityGroup ----

type createSecurityGroupResponse struct {
	RequestId       string
	SecurityGroupId string
}

func (c *call) createSecurityGroup() (any, *Error) {
	return c.idempotent(func() (any, *Error) {
		vpcID := c.p.str("VpcId")
		if vpcID == "" {
			// Aliyun's answer where only VPC instances exist, as here.
			return nil, newError(http.StatusForbidden, "InvalidVpcId.NotFound", "vpc id must not empty when only support vpc vm: vpcflow has no classic network; give VpcId.")
		}
		switch t := c.p.str("SecurityGroupType"); t {
		case "", "normal":
		case "enterprise":
			return nil, errInvalid("SecurityGroupType", "vpcflow has basic (normal) security groups only: members of a group reach each other")
		default:
			return nil, errInvalid("SecurityGroupType", "%q is not normal or enterprise", t)
		}
		name := c.p.str("SecurityGroupName")
		if name != "" {
			if aerr := checkName("InvalidSecurityGroupName.Malformed", "SecurityGroupName", name); aerr != nil {
				return nil, aerr
			}
		} else {
			name = randomName("sg")
		}
		desc := c.p.str("Description")
		var v topology.VPC
		var found bool
		c.read(func(st *topology.State) { v, found = vpcByAliyunID(st, vpcID) })
		if !found {
			return nil, errVpcNotFound(vpcID)
		}
		out, aerr := c.apply([]topology.Op{topology.Create(&topology.SecurityGroup{VPC: v.Name, Name: name, Description: desc})}, func(te *topology.Error) *Error {
			switch {
			case te.Field == "vpc" && te.Kind == topology.ErrNotFound:
				return errVpcNotFound(vpcID)
			case te.Field == "vpc" && te.Kind == topology.ErrConflict:
				return newError(http.StatusForbidden, "QuotaExceed.SecurityGroup", "The maximum number of security groups is reached: %s", te.Msg)
			case te.Field == "name" && te.Kind == topology.ErrConflict:
				return newError(http.StatusBadRequest, "InvalidSecurityGroupName.Duplicate", "A security group named %q exists in this VPC already: vpcflow names are unique per VPC; choose another SecurityGroupName.", name)
			case te.Field == "description":
				return newError(http.StatusBadRequest, "InvalidDescription.Malformed", "The specified parameter Description is not valid: %s", te.Msg)
			}
			return nil
		})
		if aerr != nil {
			return nil, aerr
		}
		return createSecurityGroupResponse{RequestId: c.requestID, SecurityGroupId: out[0].SecurityGroup().AliyunID()}, nil
	})
}

// ---- DescribeSecurityGroups ----

type tagList struct {
	Tag []struct{} `json:"Tag"`
}

type securityGroupItem struct {
	SecurityGroupId         string
	SecurityGroupName       string
	Description             string
	VpcId                   string
	SecurityGroupType       string
	CreationTime            string
	EcsCount                int32
	AvailableInstanceAmount int32
	RuleCount               int32
	GroupToGroupRuleCount   int32
	ResourceGroupId         string
	ServiceManaged          bool
	Tags                    tagList
}

type describeSecurityGroupsResponse struct {
	RequestId      string
	RegionId       string
	TotalCount     int32
	PageNumber     int32
	PageSize       int32
	NextToken      string
	SecurityGroups struct {
		SecurityGroup []securityGroupItem `json:"SecurityGroup"`
	}
}

// maxGroupMembers is what DescribeSecurityGroups reports a group may
// still take (AvailableInstanceAmount): Aliyun's per-group limit for basic
// groups; vpcflow sets none.
const maxGroupMembers = 2000

func (c *call) describeSecurityGroups() (any, *Error) {
	p := c.p
	ids, aerr := p.list("SecurityGroupIds", 100)
	if aerr != nil {
		return nil, aerr
	}
	if one := p.str("SecurityGroupId"); one != "" {
		ids = append(ids, one)
	}
	want := setOf(ids)
	vpcID, name, typ, netType := p.str("VpcId"), p.str("SecurityGroupName"), p.str("SecurityGroupType"), p.str("NetworkType")
	fuzzy, _, aerr := p.boolParam("FuzzyQuery")
	if aerr != nil {
		return nil, aerr
	}
	var items []securityGroupItem
	c.read(func(st *topology.State) {
		if (typ != "" && typ != "normal") || (netType != "" && netType != "vpc") {
			return
		}
		for _, v := range allVPCs(st) {
			if vpcID != "" && v.AliyunID() != vpcID {
				continue
			}
			groups := st.SecurityGroups(v.Name)
			sort.Slice(groups, func(i, j int) bool { return groups[i].ID < groups[j].ID })
			for _, g := range groups {
				if want != nil && !want[g.AliyunID()] {
					continue
				}
				if name != "" && g.Name != name && !(fuzzy && strings.Contains(g.Name, name)) {
					continue
				}
				items = append(items, c.securityGroupItem(st, v, g))
			}
		}
	})
	resp := describeSecurityGroupsResponse{RequestId: c.requestID, RegionId: c.region, TotalCount: int32(len(items))}
	if p.str("NextToken") != "" || p.str("MaxResults") != "" {
		pageItems, next, aerr := tokenPage(p, items, "MaxResults", 10, 100)
		if aerr != nil {
			return nil, aerr
		}
		resp.NextToken = next
		resp.SecurityGroups.SecurityGroup = nonNil(pageItems)
		return resp, nil
	}
	pg, aerr := p.pageParams(50)
	if aerr != nil {
		return nil, aerr
	}
	resp.PageNumber, resp.PageSize = pg.number, pg.size
	resp.SecurityGroups.SecurityGroup = page(items, pg)
	return resp, nil
}

func (c *call) securityGroupItem(st *topology.State, v topology.VPC, g topology.SecurityGroup) securityGroupItem {
	members := int32(len(st.MembersOf(g.VPC, g.Name)))
	var rules, groupRules int32
	st.EachRule(g.VPC, g.Name, func(r *topology.SecurityGroupRule) bool {
		rules++
		if r.SecurityGroup != "" {
			groupRules++
		}
		return true
	})
	return securityGroupItem{
		SecurityGroupId: g.AliyunID(), SecurityGroupName: g.Name, Description: g.Description, VpcId: v.AliyunID(),
		SecurityGroupType: "normal", CreationTime: c.creationTime(g.AliyunID()), EcsCount: members,
		AvailableInstanceAmount: max(maxGroupMembers-members, 0), RuleCount: rules, GroupToGroupRuleCount: groupRules,
		Tags: tagList{Tag: []struct{}{}},
	}
}

// ---- DescribeSecurityGroupAttribute ----

type describeSecurityGroupAttributeResponse struct {
	RequestId         string
	RegionId          string
	SecurityGroupId   string
	SecurityGroupName string
	Description       string
	VpcId             string
	InnerAccessPolicy string
	NextToken         string
	Permissions       struct {
		Permission []permissionItem `json:"Permission"`
	}
}

func (c *call) describeSecurityGroupAttribute() (any, *Error) {
	id, aerr := c.p.required("SecurityGroupId")
	if aerr != nil {
		return nil, aerr
	}
	dir := strings.ToLower(c.p.str("Direction"))
	switch dir {
	case "", "all", topology.DirectionIngress, topology.DirectionEgress:
	default:
		return nil, errInvalid("Direction", "%q is not all, ingress or egress", c.p.str("Direction"))
	}
	resp := describeSecurityGroupAttributeResponse{RequestId: c.requestID, RegionId: c.region, SecurityGroupId: id, InnerAccessPolicy: "Accept"}
	var perms []permissionItem
	found := false
	c.read(func(st *topology.State) {
		g, ok := secGroupByAliyunID(st, id)
		if !ok {
			return
		}
		found = true
		v, _ := st.VPC(g.VPC)
		resp.SecurityGroupName, resp.Description, resp.VpcId = g.Name, g.Description, v.AliyunID()
		for _, r := range st.RulesOf(g.VPC, g.Name) {
			if dir == "" || dir == "all" || r.Direction == dir {
				perms = append(perms, c.permissionItem(st, r))
			}
		}
	})
	if !found {
		return nil, errSecGroupNotFound(id)
	}
	pageItems, next, aerr := tokenPage(c.p, perms, "MaxResults", 500, 1000)
	if aerr != nil {
		return nil, aerr
	}
	resp.NextToken = next
	resp.Permissions.Permission = nonNil(pageItems)
	return resp, nil
}

// ---- ModifySecurityGroupAttribute, ModifySecurityGroupPolicy ----

// modifySecurityGroupAttribute changes a group's description. Its name is
// its vpcflow key: a SecurityGroupName other than the current one is
// refused.
func (c *call) modifySecurityGroupAttribute() (any, *Error) {
	id, aerr := c.p.required("SecurityGroupId")
	if aerr != nil {
		return nil, aerr
	}
	var g topology.SecurityGroup
	var found bool
	c.read(func(st *topology.State) { g, found = secGroupByAliyunID(st, id) })
	if !found {
		return nil, errSecGroupNotFound(id)
	}
	if name := c.p.str("SecurityGroupName"); name != "" && name != g.Name {
		return nil, errInvalid("SecurityGroupName", "vpcflow names are keys: security group %s stays %q", id, g.Name)
	}
	desc := c.p.str("Description")
	if desc == "" || desc == g.Description {
		return requestOnly{RequestId: c.requestID}, nil
	}
	if _, aerr := c.apply([]topology.Op{topology.Update(&topology.SecurityGroup{VPC: g.VPC, Name: g.Name, Description: desc})}, func(te *topology.Error) *Error {
		switch {
		case te.Field == "description":
			return newError(http.StatusBadRequest, "InvalidDescription.Malformed", "The specified parameter Description is not valid: %s", te.Msg)
		case te.Kind == topology.ErrNotFound:
			return errSecGroupNotFound(id)
		}
		return nil
	}); aerr != nil {
		return nil, aerr
	}
	return requestOnly{RequestId: c.requestID}, nil
}

// modifySecurityGroupPolicy: vpcflow's groups let their members reach each
// other (InnerAccessPolicy Accept), and only that.
func (c *call) modifySecurityGroupPolicy() (any, *Error) {
	id, aerr := c.p.required("SecurityGroupId")
	if aerr != nil {
		return nil, aerr
	}
	pol, aerr := c.p.required("InnerAccessPolicy")
	if aerr != nil {
		return nil, aerr
	}
	var found bool
	c.read(func(st *topology.State) { _, found = secGroupByAliyunID(st, id) })
	switch {
	case !found:
		return nil, errSecGroupNotFound(id)
	case strings.EqualFold(pol, "Accept"):
		return requestOnly{RequestId: c.requestID}, nil
	case strings.EqualFold(pol, "Drop"):
		return nil, errInvalid("InnerAccessPolicy", "vpcflow's security groups always let their members reach each other (Accept)")
	}
	return nil, errInvalid("InnerAccessPolicy", "%q is not Accept or Drop", pol)
}

// ---- DeleteSecurityGroup ----

// deleteSecurityGroup deletes a group with its rules, as Aliyun does; it
// is refused while instances are in it or another group's rules name it.
func (c *call) deleteSecurityGroup() (any, *Error) {
	id, aerr := c.p.required("SecurityGroupId")
	if aerr != nil {
		return nil, aerr
	}
	c.s.sgMu.Lock()
	defer c.s.sgMu.Unlock()
	var ops []topology.Op
	c.read(func(st *topology.State) {
		g, ok := secGroupByAliyunID(st, id)
		if !ok {
			aerr = errSecGroupNotFound(id)
			return
		}
		if n := len(st.MembersOf(g.VPC, g.Name)); n > 0 {
			aerr = newError(http.StatusForbidden, "DependencyViolation", "There is still instance(s) in the specified security group: %d.", n)
			return
		}
		for _, o := range st.SecurityGroups(g.VPC) {
			if o.Name == g.Name {
				continue
			}
			for _, r := range st.RulesOf(o.VPC, o.Name) {
				if r.SecurityGroup == g.Name {
					aerr = newError(http.StatusForbidden, "DependencyViolation", "The specified security group has been authorized in another one: rule %s of %s.", ruleAliyunID(r), o.AliyunID())
					return
				}
			}
		}
		for _, r := range st.RulesOf(g.VPC, g.Name) {
			ops = append(ops, topology.Delete(&topology.SecurityGroupRule{VPC: r.VPC, Group: r.Group, ID: r.ID}, false))
		}
		ops = append(ops, topology.Delete(&topology.SecurityGroup{VPC: g.VPC, Name: g.Name}, false))
	})
	if aerr != nil {
		return nil, aerr
	}
	if _, aerr := c.apply(ops, func(te *topology.Error) *Error {
		switch te.Kind {
		case topology.ErrConflict:
			return newError(http.StatusForbidden, "DependencyViolation", "The specified security group is still in use: %s", te.Msg)
		case topology.ErrNotFound:
			return errSecGroupNotFound(id)
		}
		return nil
	}); aerr != nil {
		return nil, aerr
	}
	return requestOnly{RequestId: c.requestID}, nil
}

// ---- JoinSecurityGroup, LeaveSecurityGroup, ModifyInstanceAttribute ----

// instanceOf finds the instance a request names by InstanceId or, failing
// that, NetworkInterfaceId (its primary ENI, "eni-vf…").
func (c *call) instanceOf(st *topology.State) (topology.Host, *Error) {
	if id := c.p.str("InstanceId"); id != "" {
		h, ok := hostByAliyunID(st, id)
		if !ok {
			return h, errInstanceNotFound(id)
		}
		return h, nil
	}
	if eni := c.p.str("NetworkInterfaceId"); eni != "" {
		n, ok := topology.ParseAliyunID("eni", eni)
		h, found := st.HostByID(n)
		if !ok || !found {
			return h, newError(http.StatusNotFound, "InvalidEniId.NotFound", "The specified NetworkInterfaceId %q does not exist.", eni)
		}
		return h, nil
	}
	return topology.Host{}, errMissing("InstanceId")
}

func errInstanceNotFound(id string) *Error {
	return newError(http.StatusNotFound, "InvalidInstanceId.NotFound", "The specified InstanceId %q does not exist.", id)
}

// setGroups stores a host's new groups.
func (c *call) setGroups(h topology.Host, groups []string) *Error {
	_, aerr := c.apply([]topology.Op{topology.Update(&topology.Host{VPC: h.VPC, Name: h.Name, SecurityGroups: groups})}, func(te *topology.Error) *Error {
		switch {
		case te.Field == "name" && te.Kind == topology.ErrNotFound:
			return errInstanceNotFound(h.AliyunID())
		case strings.HasPrefix(te.Field, "security_groups") && te.Kind == topology.ErrNotFound:
			return newError(http.StatusNotFound, "InvalidSecurityGroupId.NotFound", "The specified SecurityGroupId does not exist: %s", te.Msg)
		}
		return nil
	})
	return aerr
}

func (c *call) joinSecurityGroup() (any, *Error) {
	id, aerr := c.p.required("SecurityGroupId")
	if aerr != nil {
		return nil, aerr
	}
	c.s.sgMu.Lock()
	defer c.s.sgMu.Unlock()
	var h topology.Host
	var g topology.SecurityGroup
	c.read(func(st *topology.State) {
		if h, aerr = c.instanceOf(st); aerr != nil {
			return
		}
		var ok bool
		if g, ok = secGroupByAliyunID(st, id); !ok {
			aerr = errSecGroupNotFound(id)
		}
	})
	switch {
	case aerr != nil:
		return nil, aerr
	case g.VPC != h.VPC:
		return nil, newError(http.StatusBadRequest, "InvalidInstanceId.Mismatch", "Specified instance and security group are not in the same VPC.")
	case slices.Contains(h.SecurityGroups, g.Name):
		return nil, newError(http.StatusForbidden, "InvalidInstanceId.AlreadyExists", "The specified instance already exists in the specified security group.")
	case len(h.SecurityGroups) >= topology.MaxGroupsPerHost:
		return nil, newError(http.StatusBadRequest, "InstanceSecurityGroupLimitExceeded", "Exceeding the allowed amount of security groups that an instance can be in: %d.", topology.MaxGroupsPerHost)
	}
	if aerr := c.setGroups(h, append(slices.Clone(h.SecurityGroups), g.Name)); aerr != nil {
		return nil, aerr
	}
	return requestOnly{RequestId: c.requestID}, nil
}

// leaveSecurityGroup takes an instance out of a group; as on Aliyun, not
// out of its last one (REST's PUT security_groups [] does that: a host in
// no group is unfiltered, which Aliyun has no notion of).
func (c *call) leaveSecurityGroup() (any, *Error) {
	id, aerr := c.p.required("SecurityGroupId")
	if aerr != nil {
		return nil, aerr
	}
	c.s.sgMu.Lock()
	defer c.s.sgMu.Unlock()
	var h topology.Host
	var g topology.SecurityGroup
	c.read(func(st *topology.State) {
		if h, aerr = c.instanceOf(st); aerr != nil {
			return
		}
		var ok bool
		if g, ok = secGroupByAliyunID(st, id); !ok {
			aerr = errSecGroupNotFound(id)
		}
	})
	switch {
	case aerr != nil:
		return nil, aerr
	case g.VPC != h.VPC || !slices.Contains(h.SecurityGroups, g.Name):
		return nil, newError(http.StatusForbidden, "InstanceNotInSecurityGroup", "The instance not in the group.")
	case len(h.SecurityGroups) == 1:
		return nil, newError(http.StatusForbidden, "InstanceLastSecurityGroup", "The specified security group is the last security group for the instance.")
	}
	rest := slices.DeleteFunc(slices.Clone(h.SecurityGroups), func(n string) bool { return n == g.Name })
	if aerr := c.setGroups(h, rest); aerr != nil {
		return nil, aerr
	}
	return requestOnly{RequestId: c.requestID}, nil
}

// instanceAttributes are ModifyInstanceAttribute's parameters other than
// SecurityGroupIds.N: vpcflow changes none of them.
var instanceAttributes = []string{"InstanceName", "Description", "Password", "HostName", "UserData", "CreditSpecification",
	"DeletionProtection", "NetworkInterfaceQueueNumber", "Recyclable", "EnableJumboFrame"}

// modifyInstanceAttribute replaces an instance's security groups with
// SecurityGroupIds.N (1 to 5, of its VPC, no repeats).
func (c *call) modifyInstanceAttribute() (any, *Error) {
	id, aerr := c.p.required("InstanceId")
	if aerr != nil {
		return nil, aerr
	}
	for _, name := range instanceAttributes {
		if c.p[name] != "" {
			return nil, errInvalid(name, "vpcflow changes only an instance's SecurityGroupIds")
		}
	}
	ids, aerr := c.repeated("SecurityGroupIds", 100)
	if aerr != nil {
		return nil, aerr
	}
	if len(ids) == 0 {
		return requestOnly{RequestId: c.requestID}, nil
	}
	if len(ids) > topology.MaxGroupsPerHost {
		return nil, newError(http.StatusBadRequest, "InstanceSecurityGroupLimitExceeded", "Exceeding the allowed amount of security groups that an instance can be in: %d, not %d.", topology.MaxGroupsPerHost, len(ids))
	}
	c.s.sgMu.Lock()
	defer c.s.sgMu.Unlock()
	var h topology.Host
	var names []string
	c.read(func(st *topology.State) {
		var ok bool
		if h, ok = hostByAliyunID(st, id); !ok {
			aerr = errInstanceNotFound(id)
			return
		}
		seen := map[string]bool{}
		for _, gid := range ids {
			g, ok := secGroupByAliyunID(st, gid)
			switch {
			case !ok:
				aerr = errSecGroupNotFound(gid)
				return
			case g.VPC != h.VPC:
				aerr = newError(http.StatusBadRequest, "InvalidInstanceId.Mismatch", "Specified instance and security group %s are not in the same VPC.", gid)
				return
			case seen[gid]:
				aerr = errInvalid("SecurityGroupIds", "%s is given twice", gid)
				return
			}
			seen[gid] = true
			names = append(names, g.Name)
		}
	})
	if aerr != nil {
		return nil, aerr
	}
	if aerr := c.setGroups(h, names); aerr != nil {
		return nil, aerr
	}
	return requestOnly{RequestId: c.requestID}, nil
}
