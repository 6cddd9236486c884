package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/aliyunapi"
)

// TestServeAliyunAPI: `vpcflow serve --aliyun-listen` serves the Aliyun
// API next to REST, over the same store: a VPC created through one is
// seen by the other with the same Aliyun ID; without a keys file serve
// refuses to start.
func TestServeAliyunAPI(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "aliyun-keys")
	if err := os.WriteFile(keys, []byte("AKID1 secret-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "none.yaml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rest, aliyun := freeAddr(t), freeAddr(t)
	d := startDaemon(t, []string{"PATH=" + os.Getenv("PATH")}, false, "--init", "--data-dir", filepath.Join(dir, "data"),
		"--listen", rest, "--openflow", freeAddr(t), "--aliyun-listen", aliyun, "--aliyun-keys-file", keys, "--config", filepath.Join(dir, "none.yaml"))
	d.waitLog("Aliyun API serving", 30*time.Second)

	call := func(secret, action string, p map[string]string) (int, map[string]any) {
		t.Helper()
		q := map[string]string{"Action": action, "Version": aliyunapi.VersionVPC, "Format": "JSON", "AccessKeyId": "AKID1",
			"SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": fmt.Sprint(time.Now().UnixNano()),
			"Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05Z")}
		for k, v := range p {
			q[k] = v
		}
		q["Signature"] = aliyunapi.SignV1("GET", secret, q)
		vals := url.Values{}
		for k, v := range q {
			vals.Set(k, v)
		}
		resp, err := http.Get("http://" + aliyun + "/?" + vals.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %s", action, b)
		}
		return resp.StatusCode, m
	}
	status, created := call("secret-one", "CreateVpc", map[string]string{"VpcName": "from-aliyun", "CidrBlock": "10.0.0.0/16"})
	if status != 200 {
		t.Fatalf("CreateVpc: %d %v", status, created)
	}
	if status, m := call("wrong", "DescribeVpcs", nil); status != 400 || m["Code"] != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %d %v", status, m)
	}
	resp, err := http.Get("http://" + rest + "/v1/vpcs/from-aliyun")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"aliyun_id":"`+created["VpcId"].(string)+`"`) {
		t.Fatalf("REST GET of the VPC created over the Aliyun API: %d %s (Aliyun said %v)", resp.StatusCode, b, created)
	}
	resp, err = http.Post("http://"+rest+"/v1/vpcs", "application/json", strings.NewReader(`{"name":"from-rest"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, m := call("secret-one", "DescribeVpcs", map[string]string{"VpcName": "from-rest"}); m["TotalCount"] != float64(1) {
		t.Fatalf("DescribeVpcs of the VPC created over REST: %v", m)
	}
	if err := d.stop(); err != nil {
		t.Fatalf("vpcflow serve: %v\n%s", err, d.log())
	}

	// --aliyun-listen without keys: refused before anything starts.
	bad := startDaemon(t, []string{"PATH=" + os.Getenv("PATH")}, false, "--init", "--data-dir", filepath.Join(dir, "data2"),
		"--listen", freeAddr(t), "--openflow", freeAddr(t), "--aliyun-listen", freeAddr(t), "--config", filepath.Join(dir, "none.yaml"))
	select {
	case <-bad.exited():
	case <-time.After(30 * time.Second):
		t.Fatal("serve without --aliyun-keys-file did not exit")
	}
	if bad.err == nil || !strings.Contains(bad.log(), "--aliyun-listen: needs --aliyun-keys-file") {
		t.Fatalf("serve without keys: %v\n%s", bad.err, bad.log())
	}
}

// --aliyun-service-ip: an address VMs can send to, or none; the API is
// served to the VMs only with both --aliyun-listen and --metadata-listen,
// on port 8090 of the metadata host, in its namespace.
func TestAliyunServiceIP(t *testing.T) {
	for in, want := range map[string]string{
		"100.100.80.1": "100.100.80.1", "100.100.0.5": "100.100.0.5", "10.0.0.9": "10.0.0.9", "none": "", "": "",
		"100.100.100.200": "is the metadata service's address", "169.254.169.254": "want a unicast address",
		"127.0.0.1": "want a unicast address", "224.0.0.1": "want a unicast address", "0.0.0.0": "want a unicast address",
		"fd00::1": "want an IPv4 address", "vpc.example": "want an IPv4 address",
	} {
		ip, err := aliyunServiceIP(in)
		got := ""
		if err != nil {
			got = err.Error()
		} else if ip.IsValid() {
			got = ip.String()
		}
		if !strings.Contains(got, want) || (want == "" && got != "") {
			t.Errorf("aliyunServiceIP(%q) = %q, want %q", in, got, want)
		}
	}
	meta := metadataConfig{Listen: "169.254.169.254:80", Netns: "vpcflow-meta"}
	f, err := aliyunFabricOf("127.0.0.1:8090", "100.100.80.1", meta)
	if err != nil || f.ServiceIP.String() != "100.100.80.1" || f.Listen != "169.254.169.254:8090" || f.Netns != "vpcflow-meta" {
		t.Errorf("both served: %+v %v", f, err)
	}
	for name, c := range map[string]struct {
		aliyun, ip string
		meta       metadataConfig
	}{
		"no Aliyun API":        {"", "100.100.80.1", meta},
		"no metadata service":  {"127.0.0.1:8090", "100.100.80.1", metadataConfig{}},
		"service address none": {"127.0.0.1:8090", "none", meta},
	} {
		if f, err := aliyunFabricOf(c.aliyun, c.ip, c.meta); err != nil || f.ServiceIP.IsValid() {
			t.Errorf("%s: %+v %v, want not served", name, f, err)
		}
	}
}
