package pipeline

import (
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// allFlows is every flow of every owner in both fixtures, and the defaults.
func allFlows(t *testing.T, p *Pipeline) []openflow.Flow {
	t.Helper()
	out := p.Defaults()
	for _, fx := range []struct {
		ops  []topology.Op
		snap func(*topology.State) *Snapshot
	}{{seedOps(), seedSnapshot}, {chassisOps(), chassisSnapshot}} {
		mustStore(t, fx.ops...).Read(func(st *topology.State) {
			s := fx.snap(st)
			for _, o := range AllOwners(st) {
				for _, pf := range p.Flows(s, o) {
					out = append(out, pf.Flow)
				}
			}
		})
	}
	return out
}

// TestEveryPuntIsMetered: every flow that sends packets to vpcflow does it
// through a declared meter, with userdata naming a service that has that
// meter.
func TestEveryPuntIsMetered(t *testing.T) {
	p := Default()
	punts := 0
	for _, f := range allFlows(t, p) {
		for _, a := range f.Actions {
			if a.Type == openflow.ActController {
				t.Errorf("unmetered controller action: %s", f.String())
			}
			if a.Type != openflow.ActController2 {
				continue
			}
			punts++
			s := a.String()
			var meter *Meter
			for _, m := range p.Meters() {
				if strings.Contains(s, "meter_id="+itoa(m.ID)+")") || strings.HasSuffix(s, "meter_id="+itoa(m.ID)) {
					meter = m
				}
			}
			if meter == nil {
				t.Errorf("controller action without a declared meter: %s", f.String())
				continue
			}
			if !strings.Contains(s, "userdata="+hex2(meter.Service.Userdata())) {
				t.Errorf("%s: userdata is not service %s of meter %s", f.String(), meter.Service, meter.Name)
			}
		}
	}
	if punts == 0 {
		t.Fatal("no punting flow in the fixtures: the test proves nothing")
	}
}

func itoa(v uint32) string {
	const d = "0123456789"
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{d[v%10]}, b...)
	}
	return string(b)
}

func hex2(b []byte) string {
	const h = "0123456789abcdef"
	var parts []string
	for _, c := range b {
		parts = append(parts, string([]byte{h[c>>4], h[c&15]}))
	}
	return strings.Join(parts, ".")
}

func TestServiceUserdata(t *testing.T) {
	for _, s := range []Service{ServiceTooBig, ServiceDHCP} {
		got, ok := ServiceOf(s.Userdata())
		if !ok || got != s {
			t.Errorf("ServiceOf(%x) = %v, %v", s.Userdata(), got, ok)
		}
	}
	for _, bad := range [][]byte{nil, {}, {0x76}, {0x76, 0}, {0x75, 1}, {0x76, 1, 0}} {
		if s, ok := ServiceOf(bad); ok {
			t.Errorf("ServiceOf(%x) = %v, want none", bad, s)
		}
	}
}

// TestMeterDeclarations: New refuses duplicate meter ids, a second meter
// for one service, a zero rate, and a punt through an undeclared meter
// panics.
func TestMeterDeclarations(t *testing.T) {
	tb := func(id uint8) []*Table { return []*Table{{ID: id, Name: "t", Handles: Any}} }
	m1 := &Meter{ID: 1, Name: "a", Service: 1, Rate: 10}
	cases := map[string][]Feature{
		"duplicate id":      {&meteredFeature{fakeFeature{name: "a", tables: tb(0)}, []*Meter{m1}}, &meteredFeature{fakeFeature{name: "b", tables: tb(1)}, []*Meter{{ID: 1, Name: "b", Service: 2, Rate: 10}}}},
		"duplicate service": {&meteredFeature{fakeFeature{name: "a", tables: tb(0)}, []*Meter{m1, {ID: 2, Name: "b", Service: 1, Rate: 10}}}},
		"zero rate":         {&meteredFeature{fakeFeature{name: "a", tables: tb(0)}, []*Meter{{ID: 3, Name: "z", Service: 3}}}},
		"id zero":           {&meteredFeature{fakeFeature{name: "a", tables: tb(0)}, []*Meter{{ID: 0, Name: "z", Service: 3, Rate: 1}}}},
	}
	for name, fs := range cases {
		if _, err := New(fs...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	p, err := New(&meteredFeature{fakeFeature{name: "a", tables: tb(0)}, []*Meter{m1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Meters()) != 1 || p.Meters()[0] != m1 {
		t.Fatalf("meters %v", p.Meters())
	}
	found := false
	for _, d := range p.DropReasons() {
		found = found || d.Reason == DropPuntLimited
	}
	if !found {
		t.Error("punt_limited not declared by a pipeline with meters")
	}
	defer func() {
		if recover() == nil {
			t.Error("punting through a foreign meter did not panic")
		}
	}()
	set := &FlowSet{p: p, feature: p.features[0]}
	set.On(1, p.First()).Punt(&Meter{ID: 9, Name: "foreign", Service: 9, Rate: 1})
}

type meteredFeature struct {
	fakeFeature
	meters []*Meter
}

func (m *meteredFeature) Meters() []*Meter { return m.meters }
