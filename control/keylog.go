package control

import (
	"fmt"

	"github.com/espx/espx/crypto"
)

// Key logging, for debugging interoperability only: with LogKeys on, each
// IKE SA's encryption and integrity keys are logged at debug level when it
// gets them (IKE_SA_INIT, IKE SA rekey), as a line of Wireshark's IKEv2
// decryption table (a record of the ikev2_decryption_table UAT file, or of
// tshark -o uat:ikev2_decryption_table:RECORD), so that a capture's
// encrypted payloads can be read. Off, no key is ever logged.

// LogKeys turns key logging on or off; set it before the daemon runs.
// espxd turns it on only at its most verbose level and on request
// (-v -log-keys).
func (d *Daemon) LogKeys(on bool) { d.logKeys = on }

// wiresharkIKE names the suite's transforms as Wireshark's IKEv2
// decryption table does; ok is false for one it cannot decrypt.
func wiresharkIKE(s crypto.IKESuite) (encr, integ string, ok bool) {
	switch s.Encr {
	case crypto.ENCR_AES_GCM_16:
		encr = fmt.Sprintf("AES-GCM-%d with 16 octet ICV [RFC5282]", s.EncrKeyBits)
	case crypto.ENCR_AES_CBC:
		encr = fmt.Sprintf("AES-CBC-%d [RFC3602]", s.EncrKeyBits)
	default:
		return "", "", false
	}
	switch s.Integ {
	case crypto.AUTH_NONE:
		integ = "NONE [RFC4306]"
	case crypto.AUTH_HMAC_SHA2_256_128:
		integ = "HMAC_SHA2_256_128 [RFC4868]"
	case crypto.AUTH_HMAC_SHA2_384_192:
		integ = "HMAC_SHA2_384_192 [RFC4868]"
	case crypto.AUTH_HMAC_SHA2_512_256:
		integ = "HMAC_SHA2_512_256 [RFC4868]"
	default:
		return "", "", false
	}
	return encr, integ, true
}

// logKeys logs sa's keys if the daemon logs keys.
func (sa *IKESA) logKeys() {
	if !sa.d.logKeys || sa.keys == nil {
		return
	}
	k := sa.keys
	args := []any{"peer", sa.cfg.Name, "spi_i", fmt.Sprintf("%016x", sa.spiI), "spi_r", fmt.Sprintf("%016x", sa.spiR),
		"suite", k.Suite.String(),
		"sk_ei", fmt.Sprintf("%x", k.SKei), "sk_er", fmt.Sprintf("%x", k.SKer),
		"sk_ai", fmt.Sprintf("%x", k.SKai), "sk_ar", fmt.Sprintf("%x", k.SKar)}
	if encr, integ, ok := wiresharkIKE(k.Suite); ok {
		args = append(args, "wireshark_ikev2", fmt.Sprintf(`%016x,%016x,%x,%x,"%s",%x,%x,"%s"`,
			sa.spiI, sa.spiR, k.SKei, k.SKer, encr, k.SKai, k.SKar, integ))
	}
	sa.d.log.Debug("IKE SA keys", args...)
}
