package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// charonPath is where Debian installs charon.
const charonPath = "/usr/lib/ipsec/charon"

// strongswanConf is charon's configuration: internal/sswantest's plugins
// (openssl first: X25519, AES-GCM and HMAC-SHA-256 come from OpenSSL),
// kernel-libipsec for the child SAs, no routes, DoS protection out of the
// way, an IKE SA hash table instead of the default single list, and
// logging off (espx's responder logs warnings only). %[1]s is the state
// directory, %[2]d the log level.
const strongswanConf = `charon {
	load = random nonce drbg openssl aesni aes sha1 sha2 hmac gcm ctr ccm chapoly cmac xcbc curve25519 gmp kdf pem pkcs1 pubkey x509 kernel-libipsec kernel-netlink socket-default vici
	port = 500
	port_nat_t = 4500
	install_routes = no
	dos_protection = no
	cookie_threshold = 1000000
	block_threshold = 1000000
	init_limit_half_open = 0
	init_limit_job_load = 0
	ikesa_limit = 0
	ikesa_table_size = 32768
	ikesa_table_segments = 16
	filelog {
		main {
			path = %[1]s/charon.log
			default = %[2]d
		}
	}
	syslog {
		daemon {
			default = -1
		}
	}
}
`

// swanctlConf is the responder's connection: one for the whole initiator
// range, with the same proposals, identities and selectors as espx's
// (remote_ts = %[9]s is the initiator's address). unique = never: the
// initiators share an identity, and no IKE SA is to replace another.
const swanctlConf = `connections {
	bench {
		version = 2
		local_addrs = %[1]s
		remote_addrs = %[2]s
		proposals = %[3]s
		unique = never
		mobike = no
		local {
			auth = psk
			id = %[5]s
		}
		remote {
			auth = psk
			id = %[6]s
		}
		children {
			bench {
				mode = tunnel
				local_ts = %[7]s
				remote_ts = %[9]s
				esp_proposals = %[4]s
				start_action = none
			}
		}
	}
}
secrets {
	ike-bench {
		id-a = %[5]s
		id-b = %[6]s
		secret = 0x%[8]x
	}
}
`

// charon is a running strongSwan responder.
type charon struct {
	b     *bench
	p     *proc
	state string
	vici  string
}

// startCharon runs charon on cpus in the responder namespace with a
// private /run (its PID file and vici socket paths are fixed), and loads
// the connection.
func (b *bench) startCharon(ctx context.Context, cpus []int) (*charon, error) {
	state, err := os.MkdirTemp(b.dir, "charon-")
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(state, "run"), 0o700); err != nil {
		return nil, err
	}
	level := -1
	if b.opt.verbose {
		level = 1
	}
	if err := os.WriteFile(filepath.Join(state, "strongswan.conf"), fmt.Appendf(nil, strongswanConf, state, level), 0o600); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(swanctlConf, respAddr, initNet, ikeProposal, espProposal,
		responderID.Data, initiatorID.Data, protNet, b.psk, initTSNet)
	if err := os.WriteFile(filepath.Join(state, "swanctl.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	c := &charon{b: b, state: state, vici: "unix://" + filepath.Join(state, "run", "charon.vici")}
	// taskset, ip netns exec, unshare, env and sh all exec the next, so
	// the PID is charon's.
	args := []string{"taskset", "-c", cpuList(cpus), "ip", "netns", "exec", b.tp.resp,
		"unshare", "--mount", "--propagation", "private",
		"env", "STRONGSWAN_CONF=" + filepath.Join(state, "strongswan.conf"),
		"sh", "-c", `mount --bind "$1/run" /run && exec "$2"`, "charon", state, charonPath}
	if c.p, err = b.start("charon", args, nil, nil); err != nil {
		return nil, err
	}
	b.AtExit(func() {
		if err := c.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "ikebench: charon:", err)
		}
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(state, "run", "charon.vici")); err == nil {
			break
		}
		select {
		case <-c.p.done:
			return nil, fmt.Errorf("charon exited: %v\n%s", c.p.err, c.p.tail())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if i == 200 {
			return nil, fmt.Errorf("charon's vici socket did not appear in 10 s\n%s", c.p.tail())
		}
	}
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c.p.pid())); strings.TrimSpace(string(comm)) != "charon" {
		return nil, fmt.Errorf("pid %d is %q, not charon", c.p.pid(), strings.TrimSpace(string(comm)))
	}
	if _, err := c.swanctl(ctx, "--load-all", "--noprompt", "--file", filepath.Join(state, "swanctl.conf")); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *charon) swanctl(ctx context.Context, args ...string) (string, error) {
	if c.b.opt.verbose {
		fmt.Fprintln(os.Stderr, "+ swanctl", strings.Join(args, " "))
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "swanctl", append(args, "--uri", c.vici)...)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+filepath.Join(c.state, "strongswan.conf"), "SWANCTL_DIR="+c.state)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("swanctl %v: %w\n%s", args, err, out)
	}
	return string(out), nil
}

func (c *charon) pid() int { return c.p.pid() }

var statsRE = regexp.MustCompile(`IKE_SAs: (\d+) total, (\d+) half-open`)

// established is the number of IKE SAs past IKE_AUTH: charon's total less
// the half-open ones. Its responder installs the child SA while it
// processes IKE_AUTH, before the SA counts as established.
func (c *charon) established(ctx context.Context) (uint64, error) {
	out, err := c.swanctl(ctx, "--stats")
	if err != nil {
		return 0, err
	}
	m := statsRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("swanctl --stats without an IKE_SAs line:\n%s", out)
	}
	total, _ := strconv.ParseUint(m[1], 10, 64)
	half, _ := strconv.ParseUint(m[2], 10, 64)
	return total - half, nil
}

// stop stops charon by PID. With tens of thousands of IKE SAs it may take
// a while to tidy up; it gets 10 s.
func (c *charon) stop() error { return c.p.stop(10 * time.Second) }
