package crypto

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestConfigNeverPrintsKeys: whatever verb a log line uses, a Config's key
// bytes do not appear.
func TestConfigNeverPrintsKeys(t *testing.T) {
	c := Config{Encr: ENCR_AES_CBC, EncrKey: []byte("0123456789abcdef"), Integ: AUTH_HMAC_SHA2_256_128, IntegKey: []byte("ZYXWVUTSRQPONMLKJIHGFEDCBA987654")}
	type wrapper struct {
		Name string
		C    Config
		P    *Config
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		for _, v := range []any{c, &c, wrapper{"sa", c, &c}, []Config{c}} {
			s := fmt.Sprintf(verb, v)
			for _, leak := range []string{"0123456789abcdef", "ZYXWVUTS", "3031323334", "5a595857", "48 49 50"} {
				if strings.Contains(s, leak) {
					t.Errorf("%s of %T shows key material: %s", verb, v, s)
				}
			}
		}
	}
	for _, v := range []any{c, &c, wrapper{"sa", c, &c}} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(j), "MDEyMzQ1") || strings.Contains(string(j), "0123456789abcdef") {
			t.Errorf("JSON of %T shows key material: %s", v, j)
		}
	}
	if s := fmt.Sprint(c); !strings.Contains(s, "ENCR_AES_CBC") || !strings.Contains(s, "128-bit") {
		t.Errorf("Config prints as %q: the transform should show", s)
	}
}
