package ovstest

import "testing"

func TestStart(t *testing.T) {
	s := Start(t)
	s.Vsctl("add-br", "br0")
	if got := s.Vsctl("list-br"); got != "br0" {
		t.Fatalf("list-br = %q", got)
	}
}
