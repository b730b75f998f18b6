// Package api is the operator's API of espxd, which espxctl speaks: one
// JSON request per line on a unix socket that only root can open, one JSON
// answer per line. SA keys cross it only when a request asks for them
// (Request.Keys), as `ip xfrm state` shows them to root, to decrypt a
// capture; espxd logs each such request.
package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// Request asks espxd for something. Cmd is one of sas, counters, ike,
// policies, initiate and reauth (Arg: connection), rekey and delete (Arg:
// a child SA's SPI), flush (Arg: connection, or empty for all), sp-hash
// (Arg: "ipv4 LOCAL REMOTE" or "ipv6 LOCAL REMOTE": the SPD's hash
// thresholds, changed while traffic flows).
type Request struct {
	Cmd string `json:"cmd"`
	Arg string `json:"arg,omitempty"`
	// Keys asks sas to include each SA's keys.
	Keys bool `json:"keys,omitempty"`
}

// SA is an SA in the data plane.
type SA struct {
	SPI          string `json:"spi"`
	Dir          string `json:"dir"`
	ReqID        uint64 `json:"reqid"`
	Conn         string `json:"connection,omitempty"` // the IKE connection of the reqid
	Mode         string `json:"mode"`
	Src          string `json:"src,omitempty"`
	Dst          string `json:"dst,omitempty"`
	Encap        bool   `json:"encap,omitempty"`
	ESN          bool   `json:"esn,omitempty"`
	Transform    string `json:"transform"`
	ReplayWindow int    `json:"replay_window,omitempty"`
	Packets      uint64 `json:"packets"`
	Bytes        uint64 `json:"bytes"`
	Seq          uint64 `json:"seq"`
	AgeSeconds   int64  `json:"age_s"`
	IdleSeconds  int64  `json:"idle_s"` // -1: never used
	// Details: the UDP ports of an encapsulated SA, and the lifetime
	// limits (0: none).
	SrcPort     uint16 `json:"src_port,omitempty"`
	DstPort     uint16 `json:"dst_port,omitempty"`
	SoftSeconds int64  `json:"soft_s,omitempty"`
	HardSeconds int64  `json:"hard_s,omitempty"`
	SoftBytes   uint64 `json:"soft_bytes,omitempty"`
	HardBytes   uint64 `json:"hard_bytes,omitempty"`
	SoftPackets uint64 `json:"soft_packets,omitempty"`
	HardPackets uint64 `json:"hard_packets,omitempty"`
	// Inbound: packets dropped as replays, as left of the window, and
	// for an ICV that did not verify.
	Replay     uint64 `json:"replay,omitempty"`
	TooOld     uint64 `json:"too_old,omitempty"`
	AuthFailed uint64 `json:"auth_failed,omitempty"`
	// Only when the request asks for keys: the encryption key (with the
	// 4-byte salt of AES-GCM, AES-GMAC and ChaCha20-Poly1305, as RFC 4106
	// keying material) and the integrity key, in hex.
	EncrKey  string `json:"encr_key,omitempty"`
	IntegKey string `json:"integ_key,omitempty"`
}

// Core is one worker's counters by name.
type Core struct {
	Core     int               `json:"core"`
	Counters map[string]uint64 `json:"counters"`
}

// IKESA is an IKE SA with its child SAs.
type IKESA struct {
	Name      string  `json:"name"`
	State     string  `json:"state"`
	Initiator bool    `json:"initiator"`
	SPIi      string  `json:"spi_i"`
	SPIr      string  `json:"spi_r"`
	Local     string  `json:"local"`
	Remote    string  `json:"remote"`
	NAT       string  `json:"nat,omitempty"`
	Suite     string  `json:"suite"`
	HeardS    int64   `json:"last_heard_s"` // -1: never
	Children  []Child `json:"children"`
}

// Child is a child SA of an IKE SA.
type Child struct {
	// Name is the connection the child SA belongs to.
	Name     string   `json:"name"`
	InSPI    string   `json:"in_spi"`
	OutSPI   string   `json:"out_spi"`
	Proposal string   `json:"proposal"`
	LocalTS  []string `json:"local_ts"`
	RemoteTS []string `json:"remote_ts"`
	// From the data plane: what each direction carried, and how long
	// since the child SA last carried anything (-1: never).
	InPackets   uint64 `json:"in_packets"`
	InBytes     uint64 `json:"in_bytes"`
	OutPackets  uint64 `json:"out_packets"`
	OutBytes    uint64 `json:"out_bytes"`
	IdleSeconds int64  `json:"idle_s"`
	AgeSeconds  int64  `json:"age_s"`
}

// Policy is a security policy in the data plane's SPD.
type Policy struct {
	ID       uint64 `json:"id"`
	Dir      string `json:"dir"`
	Local    string `json:"local"`
	Remote   string `json:"remote"`
	Proto    uint8  `json:"proto,omitempty"`
	Ports    string `json:"ports,omitempty"` // e.g. "lport 1024-65535 rport 443"
	Priority uint32 `json:"priority"`
	Action   string `json:"action"`
	ReqID    uint64 `json:"reqid,omitempty"`
	Trap     bool   `json:"trap,omitempty"`
	// Hashed: in the hash table under the current thresholds, rather than
	// in the list that lookups scan.
	Hashed bool `json:"hashed"`
}

// SPD summarises the security policy database.
type SPD struct {
	// Thresholds as [local, remote] prefix lengths.
	IPv4     [2]uint8 `json:"sp_hash_ipv4"`
	IPv6     [2]uint8 `json:"sp_hash_ipv6"`
	Policies int      `json:"policies"`
	Hashed   int      `json:"hashed"`
	Buckets  int      `json:"buckets"`
}

// Response is espxd's answer.
type Response struct {
	Error    string   `json:"error,omitempty"`
	SAs      []SA     `json:"sas,omitempty"`
	Cores    []Core   `json:"cores,omitempty"`
	IKE      []IKESA  `json:"ike,omitempty"`
	SPD      *SPD     `json:"spd,omitempty"`
	Policies []Policy `json:"policies,omitempty"`
	Done     string   `json:"done,omitempty"`
}

// Ask sends one request to the espxd listening on socket and returns its
// answer, raw and decoded. An answer with an error is returned as one.
func Ask(socket string, req Request) ([]byte, *Response, error) {
	c, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return nil, nil, fmt.Errorf("is espxd running? %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := json.Marshal(req)
	if err != nil {
		return nil, nil, err
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		return nil, nil, err
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return nil, nil, err
	}
	var r Response
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, nil, err
	}
	if r.Error != "" {
		return line, &r, fmt.Errorf("espxd: %s", r.Error)
	}
	return line, &r, nil
}
