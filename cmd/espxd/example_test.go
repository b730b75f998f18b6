package main

import "testing"

// The example configuration in deploy/ is valid.
func TestExampleConfig(t *testing.T) {
	c, err := loadConfig("../../deploy/espxd.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.sas) != 2 || len(c.policies) != 2 || len(c.conns) != 1 {
		t.Fatalf("%d SAs, %d policies, %d connections", len(c.sas), len(c.policies), len(c.conns))
	}
}
