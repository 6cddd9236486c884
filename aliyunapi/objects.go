package aliyunapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"sort"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/topology"
)

// OwnerID is the account every object belongs to: vpcflow has one.
const OwnerID int64 = 1

// Lookups by Aliyun ID, inside Read.

func vpcByAliyunID(st *topology.State, id string) (topology.VPC, bool) {
	n, ok := topology.ParseAliyunID(topology.AliyunVPCPrefix, id)
	if !ok {
		return topology.VPC{}, false
	}
	return st.VPCByID(n)
}

func vpcByPrefixedID(st *topology.State, prefix, id string) (topology.VPC, bool) {
	n, ok := topology.ParseAliyunID(prefix, id)
	if !ok {
		return topology.VPC{}, false
	}
	return st.VPCByID(n)
}

func vswitchByAliyunID(st *topology.State, id string) (topology.VSwitch, bool) {
	n, ok := topology.ParseAliyunID(topology.AliyunVSwitchPrefix, id)
	if !ok {
		return topology.VSwitch{}, false
	}
	return st.VSwitchByID(n)
}

func hostByAliyunID(st *topology.State, id string) (topology.Host, bool) {
	n, ok := topology.ParseAliyunID(topology.AliyunInstancePrefix, id)
	if !ok {
		return topology.Host{}, false
	}
	return st.HostByID(n)
}

func subnetByAliyunID(st *topology.State, id string) (topology.Subnet, bool) {
	n, ok := topology.ParseAliyunID(topology.AliyunRouteEntryPrefix, id)
	if !ok {
		return topology.Subnet{}, false
	}
	return st.SubnetByID(n)
}

// allVPCs lists the VPCs in creation (ID) order.
func allVPCs(st *topology.State) []topology.VPC {
	vs := st.VPCs()
	sort.Slice(vs, func(i, j int) bool { return vs[i].ID < vs[j].ID })
	return vs
}

// vswitchesOf lists a VPC's vSwitches in ID order.
func vswitchesOf(st *topology.State, vpc string) []topology.VSwitch {
	ws := st.VSwitches(vpc)
	sort.Slice(ws, func(i, j int) bool { return ws[i].ID < ws[j].ID })
	return ws
}

func vswitchIDs(ws []topology.VSwitch) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.AliyunID()
	}
	return out
}

// randomName is prefix + "-" + 8 hex digits: the vpcflow name of an
// object created without a name (vpcflow names are keys, Aliyun's are
// optional labels).
func randomName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// checkName validates a name given for a new object: it becomes the
// vpcflow name, which is a key (see topology.ValidateName).
func checkName(code, param, name string) *Error {
	if err := topology.ValidateName(param, name); err != nil {
		return newError(http.StatusBadRequest, code,
			"The specified %s %q is not valid in vpcflow: 1-63 letters, digits, '.', '_' and '-', starting with a letter or digit (it becomes the object's vpcflow name).", param, name)
	}
	return nil
}

// apply runs ops synchronously. A change stored but not confirmed by every
// switch is a success (the switches get it when they reconcile), logged.
func (c *call) apply(ops []topology.Op, mapErr func(*topology.Error) *Error) ([]topology.Op, *Error) {
	out, err := c.s.b.Apply(c.ctx, ops)
	if err != nil && len(out) > 0 {
		c.s.log.Warn("change stored, but not confirmed by every switch", zap.String("action", c.action), zap.Error(err))
		return out, nil
	}
	if err != nil {
		return nil, c.mapApplyError(err, mapErr)
	}
	return out, nil
}

// mapApplyError turns a Backend error into an Aliyun error: topology
// errors through mapErr (nil or a nil result: a generic code by kind).
func (c *call) mapApplyError(err error, mapErr func(*topology.Error) *Error) *Error {
	if te, ok := topology.AsError(err); ok {
		if mapErr != nil {
			if e := mapErr(te); e != nil {
				return e
			}
		}
		switch te.Kind {
		case topology.ErrNotFound:
			return newError(http.StatusNotFound, "InvalidParameter.NotFound", "%s", te.Error())
		case topology.ErrConflict:
			return newError(http.StatusBadRequest, "OperationConflict", "%s", te.Error())
		default:
			return newError(http.StatusBadRequest, "InvalidParameter", "%s", te.Error())
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return newError(http.StatusServiceUnavailable, "ServiceUnavailable", "The request has failed due to a temporary failure of the server: %v", err)
	}
	c.s.log.Error("aliyun API: change failed", zap.String("action", c.action), zap.Error(err))
	return errInternal("%v", err)
}
