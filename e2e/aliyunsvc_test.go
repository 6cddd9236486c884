package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/aliyunapi"
)

// aliyunServiceIP is where VMs reach the Aliyun API: --aliyun-service-ip's
// default.
const aliyunServiceIP = "100.100.80.1"

// TestAliyunAPIFromVMs: the Aliyun API is reachable from the VMs at the
// service address 100.100.80.1:80, routed by the fabric through the
// bridge's vpcflow-meta port to the API listener vpcflow opens in the
// metadata namespace (pipeline feature AliyunService). Two VPCs with the
// same addresses, a VM in each at 10.10.10.11: both call the API with
// curl, signed (signature v1, HMAC-SHA1, as aliyungo signs), at the same
// time and from the same source port, and each gets its answer; a call
// from a VM creates a VPC that REST sees; the server logs each request
// from the asking VM's own link address (100.64.0.0/10 + host id); an
// unsigned call and a wrong secret get Aliyun's error envelope; the
// listener's own address and port are not reachable from a VM.
func TestAliyunAPIFromVMs(t *testing.T) {
	f := newFabric(t)
	f.addBridge("br-test")
	ctx := testCtx(t)

	meta, err := f.lab.AddNode("meta")
	must(t, err)
	_, err = f.lab.LinkToOVS(ctx, meta, "meta0", "02:00:00:00:00:fe", f.phys, f.ovs, "br-test", "vpcflow-meta", true)
	must(t, err)
	meta.MustCmd(t, "ip", "addr", "add", "169.254.169.254/32", "dev", "meta0")
	meta.MustCmd(t, "ip", "route", "add", "100.64.0.0/10", "dev", "meta0")
	keys := filepath.Join(f.lab.Dir(), "aliyun-keys")
	const ak, secret = "LTAI5tVpcflowFabric01", "fabric-secret-1"
	must(t, os.WriteFile(keys, []byte(ak+" "+secret+"\n"), 0o600))
	must(t, f.ctrl.Stop())
	f.serveFlags = append(f.serveFlags, "--metadata-listen", "169.254.169.254:80", "--metadata-netns", meta.NetNS(),
		"--aliyun-listen", "127.0.0.1:8090", "--aliyun-keys-file", keys)
	f.startController()

	type vmInfo struct {
		v           *vm
		name, vpcID string
		link        netip.Addr
	}
	vms := map[string]*vmInfo{}
	for vpc, s := range map[string]vmSpec{
		"vpc-a": {name: "vma", port: "vnet1", ip: "10.10.10.11", mac: "52:58:00:98:c0:81"},
		"vpc-b": {name: "vmb", port: "vnet3", ip: "10.10.10.11", mac: "52:58:00:98:c0:92"},
	} {
		v := f.addVM(s)
		f.plugVM(v, s, "br-test")
		var obj struct {
			ID       uint32 `json:"id"`
			AliyunID string `json:"aliyun_id"`
		}
		must(t, json.Unmarshal(f.rest("POST", "/v1/vpcs", map[string]any{"name": vpc}, 201), &obj))
		vpcID := obj.AliyunID
		f.rest("POST", "/v1/vpcs/"+vpc+"/vswitches", map[string]any{"name": "vsw-" + vpc, "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
		must(t, json.Unmarshal(f.rest("POST", "/v1/vpcs/"+vpc+"/hosts", map[string]any{"name": s.name, "vswitch": "vsw-" + vpc,
			"ip": s.ip, "mac": s.mac, "bridge": "br-test", "interface": s.port}, 201), &obj))
		// The host's link address: 100.64.0.0 + its id (pipeline.MetadataLinkAddr).
		b := netip.MustParseAddr("100.64.0.0").As4()
		n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + obj.ID
		link := netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		vms[vpc] = &vmInfo{v: v, name: s.name, vpcID: vpcID, link: link}
	}

	// call runs curl in the VM against the service address and returns
	// the HTTP status and the decoded JSON answer.
	call := func(v *vm, query string, extra ...string) (int, map[string]any, error) {
		args := append([]string{"curl", "-sS", "-m", "10", "-w", "\n%{http_code}"}, extra...)
		out, err := v.node.Cmd(ctx, append(args, "http://"+aliyunServiceIP+"/?"+query)...)
		if err != nil {
			return 0, nil, err
		}
		out = strings.TrimSpace(out)
		i := strings.LastIndexByte(out, '\n')
		if i < 0 {
			return 0, nil, fmt.Errorf("curl: %q", out)
		}
		status, err := strconv.Atoi(out[i+1:])
		if err != nil {
			return 0, nil, fmt.Errorf("curl status: %q", out)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out[:i]), &m); err != nil {
			return status, nil, fmt.Errorf("answer %d: %q", status, out[:i])
		}
		return status, m, nil
	}
	signed := func(sec, action string, p map[string]string) string {
		q := map[string]string{"Action": action, "Version": aliyunapi.VersionVPC, "Format": "JSON", "AccessKeyId": ak,
			"SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": uniqueNonce(),
			"Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05Z"), "RegionId": "cn-lab"}
		for k, v := range p {
			q[k] = v
		}
		q["Signature"] = aliyunapi.SignV1("GET", sec, q)
		vals := url.Values{}
		for k, v := range q {
			vals.Set(k, v)
		}
		return vals.Encode()
	}

	// The flows are in place once the VM's request is answered at all.
	for vpc, vi := range vms {
		f.eventually(vpc+": Aliyun API answers at "+aliyunServiceIP, 20*time.Second, func() error {
			_, _, err := call(vi.v, "Action=DescribeVpcs")
			return err
		})
	}

	// Both VMs at once, from the same address and source port: the
	// fabric tells them apart by their ports, the server by their link
	// addresses.
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string]map[string]any{}
	errs := map[string]error{}
	for vpc, vi := range vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, m, err := call(vi.v, signed(secret, "DescribeVpcs", map[string]string{"VpcId": vi.vpcID}), "--local-port", "41000")
			if err == nil && status != 200 {
				err = fmt.Errorf("status %d: %v", status, m)
			}
			mu.Lock()
			defer mu.Unlock()
			answers[vpc], errs[vpc] = m, err
		}()
	}
	wg.Wait()
	for vpc, vi := range vms {
		if errs[vpc] != nil {
			t.Fatalf("%s: signed DescribeVpcs from the VM: %v", vpc, errs[vpc])
		}
		m := answers[vpc]
		b, _ := json.Marshal(m)
		if m["TotalCount"] != float64(1) || !strings.Contains(string(b), `"VpcId":"`+vi.vpcID+`"`) || !strings.Contains(string(b), `"VpcName":"`+vpc+`"`) {
			t.Errorf("%s: DescribeVpcs VpcId=%s from its VM: %s", vpc, vi.vpcID, b)
		}
		t.Logf("%s (%s at 10.10.10.11:41000) → %s:80: DescribeVpcs → %s", vpc, vi.name, aliyunServiceIP, b)
	}

	// What a VM reads about itself from the metadata service is what the
	// API knows: its region (the default of --region-id, which the API
	// also answers for) and zone find its vSwitch.
	vma := vms["vpc-a"].v
	metaGet := func(key string) string {
		out, err := vma.node.Cmd(ctx, "curl", "-sS", "-m", "10", "http://100.100.100.200/latest/meta-data/"+key)
		if err != nil {
			t.Fatalf("metadata %s: %v", key, err)
		}
		return strings.TrimSpace(out)
	}
	region, zone, vswID := metaGet("region-id"), metaGet("zone-id"), metaGet("vswitch-id")
	if region != aliyunapi.DefaultRegion || zone != aliyunapi.ZoneOf(region) {
		t.Errorf("metadata region-id %q zone-id %q; want the API's default region %q and its zone", region, zone, aliyunapi.DefaultRegion)
	}
	status, found, err := call(vma, signed(secret, "DescribeVSwitches", map[string]string{"RegionId": region, "ZoneId": zone, "VSwitchId": vswID}))
	if b, _ := json.Marshal(found); err != nil || status != 200 || found["TotalCount"] != float64(1) || !strings.Contains(string(b), `"ZoneId":"`+zone+`"`) {
		t.Errorf("DescribeVSwitches in the VM's own region %s and zone %s, VSwitchId %s: %d %s %v", region, zone, vswID, status, b, err)
	}

	// A write from a VM: the VPC it creates is the store's (REST sees it).
	status, created, err := call(vms["vpc-a"].v, signed(secret, "CreateVpc", map[string]string{"VpcName": "made-in-vma", "CidrBlock": "192.168.0.0/16"}))
	if err != nil || status != 200 {
		t.Fatalf("CreateVpc from vma: %d %v %v", status, created, err)
	}
	var rest struct {
		AliyunID string `json:"aliyun_id"`
	}
	must(t, json.Unmarshal(f.rest("GET", "/v1/vpcs/made-in-vma", nil, 200), &rest))
	if rest.AliyunID != created["VpcId"] {
		t.Errorf("REST has made-in-vma as %s, the VM was told %v", rest.AliyunID, created["VpcId"])
	}

	// Aliyun's error envelope: an unsigned request, a wrong secret.
	for name, c := range map[string]struct{ query, code string }{
		"unsigned":     {"Action=DescribeVpcs&Version=" + aliyunapi.VersionVPC, ""},
		"wrong secret": {signed("not-the-secret", "DescribeVpcs", nil), "SignatureDoesNotMatch"},
	} {
		status, m, err := call(vms["vpc-b"].v, c.query)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		code, _ := m["Code"].(string)
		if status < 400 || status >= 500 || code == "" || m["RequestId"] == nil || m["Message"] == nil || (c.code != "" && code != c.code) {
			t.Errorf("%s: %d %v, want Aliyun's error envelope (Code %q)", name, status, m, c.code)
		}
		t.Logf("%s from vmb: %d %s: %s", name, status, code, m["Message"])
	}

	// The server saw each VM's requests from that VM's link address.
	f.eventually("the API's log names both link addresses", 5*time.Second, func() error {
		b, err := os.ReadFile(f.logPath)
		if err != nil {
			return err
		}
		for vpc, vi := range vms {
			// console log: "remote": "ADDR"; json: "remote":"ADDR".
			from := vi.link.String() + `:41000"`
			if !strings.Contains(string(b), `"remote": "`+from) && !strings.Contains(string(b), `"remote":"`+from) {
				return fmt.Errorf("%s: no request from %s:41000 in the log", vpc, vi.link)
			}
		}
		return nil
	})

	// Nothing else is reachable: the service address on another port,
	// the listener's own address.
	for _, target := range []string{"http://" + aliyunServiceIP + ":8090/", "http://169.254.169.254:8090/"} {
		if out, err := vms["vpc-a"].v.node.Cmd(ctx, "curl", "-sS", "-m", "3", target); err == nil {
			t.Errorf("%s answered a VM: %s", target, out)
		}
	}
}

// uniqueNonce is a signature nonce as the SDKs make one (a random UUID's
// worth): the time alone repeated when both VMs signed at once, and the
// server rightly refused the second as a replay (SignatureNonceUsed).
func uniqueNonce() string {
	return fmt.Sprintf("%d-%016x", time.Now().UnixNano(), rand.Uint64())
}
