package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestMetadataOverlappingVPCs: two VPCs with the same addresses on one
// bridge, a VM in each at 10.10.10.11; both ask 100.100.100.200 with curl
// and each gets its own answers — the service knows a VM by the port its
// request came in by. The service runs in hardened mode: without a token
// a request is refused; with one (PUT /latest/api/token) it is answered,
// and a VM cannot use the other's token.
func TestMetadataOverlappingVPCs(t *testing.T) {
	f := newFabric(t)
	f.addBridge("br-test")
	ctx := testCtx(t)

	// The metadata server's side: a namespace behind the bridge's
	// vpcflow-meta port, as docs/pipeline.md ("Metadata") describes.
	meta, err := f.lab.AddNode("meta")
	must(t, err)
	_, err = f.lab.LinkToOVS(ctx, meta, "meta0", "02:00:00:00:00:fe", f.phys, f.ovs, "br-test", "vpcflow-meta", true)
	must(t, err)
	meta.MustCmd(t, "ip", "addr", "add", "169.254.169.254/32", "dev", "meta0")
	meta.MustCmd(t, "ip", "route", "add", "100.64.0.0/10", "dev", "meta0")
	must(t, f.ctrl.Stop())
	f.serveFlags = append(f.serveFlags, "--metadata-listen", "169.254.169.254:80", "--metadata-netns", meta.NetNS(),
		"--metadata-hardened", "--region-id", "cn-lab")
	f.startController()

	specA := vmSpec{name: "vma", port: "vnet1", ip: "10.10.10.11", mac: "52:58:00:98:c0:81"}
	specB := vmSpec{name: "vmb", port: "vnet3", ip: "10.10.10.11", mac: "52:58:00:98:c0:92"}
	vms, names := map[string]*vm{}, map[string]string{}
	for vpc, s := range map[string]vmSpec{"vpc-a": specA, "vpc-b": specB} {
		v := f.addVM(s)
		f.plugVM(v, s, "br-test")
		vms[vpc], names[vpc] = v, s.name
		f.rest("POST", "/v1/vpcs", map[string]any{"name": vpc}, 201)
		f.rest("POST", "/v1/vpcs/"+vpc+"/vswitches", map[string]any{"name": "vsw-" + vpc, "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
		f.rest("POST", "/v1/vpcs/"+vpc+"/hosts", map[string]any{"name": s.name, "vswitch": "vsw-" + vpc,
			"ip": s.ip, "mac": s.mac, "bridge": "br-test", "interface": s.port}, 201)
	}
	// The service names the objects by their Aliyun IDs, as the Aliyun
	// API does (aliyun_id in REST).
	aliyunID := func(path string) string {
		var m struct {
			AliyunID string `json:"aliyun_id"`
		}
		must(t, json.Unmarshal(f.rest("GET", path, nil, 200), &m))
		return m.AliyunID
	}
	curl := func(v *vm, args ...string) (string, error) {
		return v.node.Cmd(ctx, append([]string{"curl", "-sS", "-m", "5", "-f"}, args...)...)
	}
	tokens := map[string]string{}
	for vpc, v := range vms {
		if out, err := curl(v, "http://100.100.100.200/latest/meta-data/vpc-id"); err == nil {
			t.Errorf("%s: hardened mode answered without a token: %s", vpc, out)
		}
		tok, err := curl(v, "-X", "PUT", "-H", "X-aliyun-ecs-metadata-token-ttl-seconds: 60", "http://100.100.100.200/latest/api/token")
		if err != nil {
			t.Fatalf("%s: token: %v %s", vpc, err, tok)
		}
		tokens[vpc] = strings.TrimSpace(tok)
	}
	for vpc, v := range vms {
		get := func(key string) string {
			out, err := curl(v, "-H", "X-aliyun-ecs-metadata-token: "+tokens[vpc], "http://100.100.100.200/latest/meta-data/"+key)
			if err != nil {
				t.Fatalf("%s: GET %s: %v %s", vpc, key, err, out)
			}
			return strings.TrimSpace(out)
		}
		got := map[string]string{}
		for _, k := range []string{"instance-id", "private-ipv4", "mac", "vpc-id", "vswitch-id", "vswitch-cidr-block", "region-id", "zone-id", "hostname"} {
			got[k] = get(k)
		}
		want := map[string]string{"private-ipv4": "10.10.10.11", "mac": v.mac, "vpc-id": aliyunID("/v1/vpcs/" + vpc),
			"vswitch-id": aliyunID("/v1/vpcs/" + vpc + "/vswitches/vsw-" + vpc), "instance-id": aliyunID("/v1/vpcs/" + vpc + "/hosts/" + names[vpc]),
			"vswitch-cidr-block": "10.10.10.0/24", "region-id": "cn-lab", "zone-id": "cn-lab-a"}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s: %s = %q, want %q", vpc, k, got[k], w)
			}
		}
		list := get("")
		for _, k := range []string{"instance-id", "hostname", "vpc-id"} {
			if !strings.Contains(list, k) {
				t.Errorf("%s: listing lacks %s:\n%s", vpc, k, list)
			}
		}
		t.Logf("%s asked 100.100.100.200 with curl: %v", vpc, got)
	}
	// A token is bound to the VM it was given to.
	if out, err := curl(vms["vpc-b"], "-H", "X-aliyun-ecs-metadata-token: "+tokens["vpc-a"], "http://100.100.100.200/latest/meta-data/vpc-id"); err == nil {
		t.Errorf("vpc-b's VM used vpc-a's token: %s", out)
	}
	// Nothing else of the metadata namespace is reachable from a VM.
	if out, err := curl(vms["vpc-a"], "http://169.254.169.254/latest/meta-data/"); err == nil {
		t.Errorf("the metadata server's own address answered a VM: %s", out)
	}
}
