package control

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/espx/espx/crypto"
)

type saState uint8

const (
	stateInitSent    saState = iota + 1 // initiator: IKE_SA_INIT request out
	stateInitDone                       // responder: IKE_SA_INIT answered
	stateAuthSent                       // initiator: IKE_AUTH request out
	stateEstablished                    // both: authenticated, child SA up
	stateFailed
	stateDeleted
)

func (s saState) String() string {
	return [...]string{"", "INIT_SENT", "INIT_DONE", "AUTH_SENT", "ESTABLISHED", "FAILED", "DELETED"}[s]
}

// IKESA is one IKE SA. Everything in it belongs to whoever holds mu: one
// goroutine at a time processes a message or a timer for it, as in
// strongSwan's IKE SA manager's check-out.
type IKESA struct {
	mu sync.Mutex

	d         *Daemon
	cfg       *PeerConfig
	initiator bool
	spiI      uint64
	spiR      uint64
	state     saState
	err       error
	// lastHeard is when the peer last sent an authenticated message;
	// dead is set when it stopped answering our requests.
	lastHeard time.Time
	dead      bool
	// upSince is when the SA came up, for IKE SA lifetimes.
	upSince time.Time

	// local and remote are the IKE endpoints now in use: the configured
	// ones, moved to port 4500 and to the peer's NAT mapping as NAT
	// traversal requires.
	local, remote netip.AddrPort
	// natLocal: we are behind a NAT (or pretend to be); natRemote: the
	// peer is.
	natLocal, natRemote bool
	// ikeRekeying is set while our rekey of this IKE SA is outstanding;
	// peerRekeyed is the IKE SA the peer made by rekeying this one
	// meanwhile: both ends rekeyed it at once (section 2.8.2).
	ikeRekeying bool
	peerRekeyed *IKESA
	// peerChildless: the peer announced RFC 6023 support in IKE_SA_INIT;
	// childless: this IKE SA was made without a child SA.
	peerChildless, childless bool

	prf    crypto.PRF
	suite  crypto.IKESuite
	keys   *crypto.IKEKeys
	out    *crypto.SK // protects what we send
	in     *crypto.SK // opens what the peer sends
	ke     crypto.KeyExchange
	keID   crypto.KEID
	ni, nr []byte
	// msg1 and msg2 are the IKE_SA_INIT request and response as they
	// went on the wire: the AUTH payloads sign them (section 2.15).
	msg1, msg2  []byte
	cookie      []byte
	cookieTries int

	// Message IDs (section 2.2): nextID is that of our next request;
	// peerID that of the request we expect; lastResp caches our answer
	// to the peer's last request for its retransmissions.
	nextID   uint32
	peerID   uint32
	lastResp []byte
	req      *request // our request awaiting its response
	queue    []func() // exchanges of ours waiting for req to finish

	// children are the child SAs this IKE SA negotiated and installed.
	children []*child
	// pendingInSPI is the inbound SPI we offered in a request not yet
	// answered.
	pendingInSPI uint32
	// halfOpen: a responder SA counted as half-open by the daemon.
	halfOpen bool

	done chan struct{} // closed once established or failed
}

func newSPI() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if s := binary.BigEndian.Uint64(b[:]); s != 0 {
			return s
		}
	}
}

func newNonce() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// ourSPI is the SPI by which the daemon finds this SA.
func (sa *IKESA) ourSPI() uint64 {
	if sa.initiator {
		return sa.spiI
	}
	return sa.spiR
}

// State names where the SA is, for espxctl and tests.
func (sa *IKESA) State() string {
	sa.mu.Lock()
	defer sa.mu.Unlock()
	return sa.state.String()
}

// Wait blocks until the SA is established or has failed.
func (sa *IKESA) Wait() error {
	<-sa.done
	sa.mu.Lock()
	defer sa.mu.Unlock()
	return sa.err
}

func (sa *IKESA) fail(err error) {
	if sa.state == stateFailed || sa.state == stateEstablished {
		return
	}
	sa.state, sa.err = stateFailed, err
	sa.d.Stats.Failed.Add(1)
	sa.stopRequest()
	sa.d.remove(sa)
	close(sa.done)
	sa.d.log.Warn("IKE SA failed", "peer", sa.cfg.Name, "spi_i", fmt.Sprintf("%016x", sa.spiI), "err", err)
}

func (sa *IKESA) established() {
	sa.state = stateEstablished
	sa.d.Stats.Established.Add(1)
	sa.d.mu.Lock()
	sa.d.leaveInit(sa)
	sa.d.mu.Unlock()
	sa.upSince = sa.d.clock.Now()
	sa.armKeepalive()
	close(sa.done)
	sa.d.log.Info("IKE SA established", "peer", sa.cfg.Name, "ike", sa.suite.String(), "children", len(sa.children))
}

// child is one child SA: both directions.
type child struct {
	// cfg is the configuration the child SA was negotiated under: its
	// selectors and proposals, which its rekeys keep.
	cfg           *PeerConfig
	prop          Proposal
	inSPI, outSPI uint32
	lts, rts      []TrafficSelector
	// rekeying is set while our rekey of this child is outstanding;
	// collision is the child the peer created by rekeying it at the same
	// time (section 2.8.1).
	rekeying  bool
	collision *rekeyed
}

// rekeyed is a child SA made by a rekey, with the nonces of its exchange.
type rekeyed struct {
	c      *child
	ni, nr []byte
}

// lowest is the smallest of the nonces, compared as octet strings.
func lowest(nonces ...[]byte) []byte {
	var m []byte
	for _, n := range nonces {
		if m == nil || bytes.Compare(n, m) < 0 {
			m = n
		}
	}
	return m
}

// header is the IKE header for a message of ours.
func (sa *IKESA) header(ex ExchangeType, response bool, id uint32) Header {
	h := Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: ex, MessageID: id}
	if sa.initiator {
		h.Flags |= FlagInitiator
	}
	if response {
		h.Flags |= FlagResponse
	}
	return h
}

// natDetection is the NAT_DETECTION_*_IP hash of section 2.23.
func natDetection(spiI, spiR uint64, ap netip.AddrPort) []byte {
	h := sha1.New()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], spiI)
	binary.BigEndian.PutUint64(b[8:], spiR)
	h.Write(b[:])
	h.Write(ap.Addr().AsSlice())
	binary.BigEndian.PutUint16(b[:2], ap.Port())
	h.Write(b[:2])
	return h.Sum(nil)
}

// ikeSuite turns a chosen IKE proposal into the crypto package's terms.
func ikeSuite(p Proposal) (crypto.IKESuite, crypto.KEID, error) {
	var s crypto.IKESuite
	var ke crypto.KEID
	for _, t := range p.Transforms {
		switch t.Type {
		case TransformENCR:
			s.Encr, s.EncrKeyBits = crypto.EncrID(t.ID), int(t.KeyLength)
		case TransformINTEG:
			s.Integ = crypto.IntegID(t.ID)
		case TransformPRF:
			s.PRF = crypto.PRFID(t.ID)
		case TransformKE:
			ke = crypto.KEID(t.ID)
		}
	}
	if s.Encr == 0 || s.PRF == 0 || ke == 0 {
		return s, 0, fmt.Errorf("%w: incomplete IKE proposal %v", ErrProtocol, p)
	}
	return s, ke, nil
}

// espTransform turns a chosen ESP proposal into a transform without keys
// and the ESN choice.
func espTransform(p Proposal) (crypto.Config, bool, error) {
	var c crypto.Config
	var esn bool
	for _, t := range p.Transforms {
		switch t.Type {
		case TransformENCR:
			c.Encr, c.EncrKeyBits = crypto.EncrID(t.ID), int(t.KeyLength)
		case TransformINTEG:
			c.Integ = crypto.IntegID(t.ID)
		case TransformESN:
			esn = t.ID == ESNYes
		}
	}
	if c.Encr == 0 {
		return c, false, fmt.Errorf("%w: ESP proposal without encryption %v", ErrProtocol, p)
	}
	return c, esn, nil
}

// Errors of the exchanges.
var (
	// ErrProtocol: the peer broke the protocol; the SA fails.
	ErrProtocol = errors.New("IKE protocol error")
	// ErrAuthFailed: the peer did not prove its identity.
	ErrAuthFailed = errors.New("IKE authentication failed")
	// ErrNotify: the peer answered with an error notify.
	ErrNotify = errors.New("peer refused")
)

func findNotify(ps []Payload, t NotifyType) *Notify {
	for _, p := range ps {
		if n, ok := p.(*Notify); ok && n.NotifyType == t {
			return n
		}
	}
	return nil
}

// firstErrorNotify is the first error notify in ps, if any.
func firstErrorNotify(ps []Payload) *Notify {
	for _, p := range ps {
		if n, ok := p.(*Notify); ok && n.NotifyType.IsError() {
			return n
		}
	}
	return nil
}

// payloadsOf collects the single payloads of each type that an exchange
// needs; a second of a type is a protocol error.
type payloadsOf struct {
	sa       *SA
	ke       *KE
	nonce    *Nonce
	idi, idr *ID
	auth     *Auth
	tsi, tsr *TS
}

func collect(ps []Payload) (payloadsOf, error) {
	var r payloadsOf
	dup := func(t PayloadType) error { return fmt.Errorf("%w: two %v payloads", ErrProtocol, t) }
	for _, p := range ps {
		switch v := p.(type) {
		case *SA:
			if r.sa != nil {
				return r, dup(PayloadSA)
			}
			r.sa = v
		case *KE:
			if r.ke != nil {
				return r, dup(PayloadKE)
			}
			r.ke = v
		case *Nonce:
			if r.nonce != nil {
				return r, dup(PayloadNonce)
			}
			r.nonce = v
		case *ID:
			if v.Responder {
				if r.idr != nil {
					return r, dup(PayloadIDr)
				}
				r.idr = v
			} else {
				if r.idi != nil {
					return r, dup(PayloadIDi)
				}
				r.idi = v
			}
		case *Auth:
			if r.auth != nil {
				return r, dup(PayloadAUTH)
			}
			r.auth = v
		case *TS:
			if v.Responder {
				r.tsr = v
			} else {
				r.tsi = v
			}
		}
	}
	return r, nil
}
