package control

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"sync"
	"time"
)

// Denial-of-service limits on IKE_SA_INIT (RFC 7296 section 2.6, RFC 8019),
// named and defaulted as strongSwan's charon.cookie_threshold,
// block_threshold, init_limit_half_open and ikesa_limit, plus an
// initiator-only mode.
type Limits struct {
	// CookieThreshold is the number of half-open IKE SAs from which a
	// request must carry a cookie (default 10; CookiesAlways to demand
	// them always).
	CookieThreshold int
	// BlockThreshold is the most half-open IKE SAs one peer address may
	// have; requests beyond it are dropped (default 5).
	BlockThreshold int
	// InitLimitHalfOpen drops new requests while this many IKE SAs are
	// half-open (0: no limit).
	InitLimitHalfOpen int
	// IKESALimit drops new requests while this many IKE SAs exist (0: no
	// limit).
	IKESALimit int
	// InitiatorOnly refuses to respond to IKE_SA_INIT at all.
	InitiatorOnly bool
	// HalfOpenTimeout is how long a responder keeps an IKE SA that never
	// completes IKE_AUTH (default 30 s).
	HalfOpenTimeout time.Duration
}

// CookiesAlways makes every IKE_SA_INIT request prove its address first.
const CookiesAlways = -1

// DefaultLimits are strongSwan's defaults.
var DefaultLimits = Limits{CookieThreshold: 10, BlockThreshold: 5, HalfOpenTimeout: 30 * time.Second}

func (l Limits) withDefaults() Limits {
	if l.CookieThreshold == 0 {
		l.CookieThreshold = DefaultLimits.CookieThreshold
	}
	if l.BlockThreshold == 0 {
		l.BlockThreshold = DefaultLimits.BlockThreshold
	}
	if l.HalfOpenTimeout == 0 {
		l.HalfOpenTimeout = DefaultLimits.HalfOpenTimeout
	}
	return l
}

// cookieSecrets make and check cookies: Cookie = version | HMAC-SHA-256
// (secret, Ni | IPi | SPIi) truncated, as section 2.6 suggests. The secret
// changes every cookieLifetime; cookies of the previous one still pass, so
// an initiator that got one just before the change is not turned away.
type cookieSecrets struct {
	mu       sync.Mutex
	version  uint32
	cur, old [32]byte
	changed  time.Time
}

const (
	cookieLifetime = 2 * time.Minute
	cookieLen      = 4 + 16
)

func (c *cookieSecrets) rotate(now time.Time) {
	if c.changed.IsZero() || now.Sub(c.changed) >= cookieLifetime {
		c.old = c.cur
		rand.Read(c.cur[:])
		c.version++
		c.changed = now
	}
}

func cookieFor(secret []byte, version uint32, ni []byte, ip netip.Addr, spiI uint64) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(ni)
	m.Write(ip.AsSlice())
	binary.Write(m, binary.BigEndian, spiI)
	return append(binary.BigEndian.AppendUint32(nil, version), m.Sum(nil)[:cookieLen-4]...)
}

// make returns the cookie to send back for a request.
func (c *cookieSecrets) make(now time.Time, ni []byte, ip netip.Addr, spiI uint64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotate(now)
	return cookieFor(c.cur[:], c.version, ni, ip, spiI)
}

// valid checks a cookie a request returned.
func (c *cookieSecrets) valid(now time.Time, cookie, ni []byte, ip netip.Addr, spiI uint64) bool {
	if len(cookie) != cookieLen {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotate(now)
	v := binary.BigEndian.Uint32(cookie)
	switch v {
	case c.version:
		return hmac.Equal(cookie, cookieFor(c.cur[:], v, ni, ip, spiI))
	case c.version - 1:
		return hmac.Equal(cookie, cookieFor(c.old[:], v, ni, ip, spiI))
	}
	return false
}

// admitInit decides whether an IKE_SA_INIT request may create state:
// it may, or it is dropped (counted), or answered with a cookie. d.mu is
// held.
func (d *Daemon) admitInit(m *Message, from netip.AddrPort) (ok bool, cookie []byte) {
	l := d.limits
	if l.InitiatorOnly {
		d.Stats.InitDropped.Add(1)
		return false, nil
	}
	if l.IKESALimit > 0 && d.sas.len() >= l.IKESALimit ||
		l.InitLimitHalfOpen > 0 && d.halfOpen >= l.InitLimitHalfOpen ||
		d.halfOpenBy[from.Addr()] >= l.BlockThreshold {
		d.Stats.InitDropped.Add(1)
		return false, nil
	}
	if l.CookieThreshold != CookiesAlways && d.halfOpen < l.CookieThreshold {
		return true, nil
	}
	var ni []byte
	for _, p := range m.Payloads {
		if n, ok := p.(*Nonce); ok {
			ni = n.Data
		}
	}
	// Section 2.6: the cookie notify comes first.
	if len(m.Payloads) > 0 {
		if n, ok := m.Payloads[0].(*Notify); ok && n.NotifyType == COOKIE {
			if d.cookies.valid(d.clock.Now(), n.Data, ni, from.Addr(), m.SPIi) {
				return true, nil
			}
			d.Stats.BadCookie.Add(1)
		}
	}
	d.Stats.CookiesSent.Add(1)
	return false, d.cookies.make(d.clock.Now(), ni, from.Addr(), m.SPIi)
}

// halfOpenKey finds a responder's IKE SA by the initiator's SPI and address
// while IKE_SA_INIT is retransmitted.
type halfOpenKey struct {
	spiI uint64
	ip   netip.Addr
}

// setHalfOpen counts a responder IKE SA in or out of the half-open state;
// d.mu is held.
func (d *Daemon) setHalfOpen(sa *IKESA, on bool) {
	if sa.halfOpen == on {
		return
	}
	sa.halfOpen = on
	ip := sa.remote.Addr()
	if on {
		d.halfOpen++
		d.halfOpenBy[ip]++
		return
	}
	d.halfOpen--
	if d.halfOpenBy[ip]--; d.halfOpenBy[ip] <= 0 {
		delete(d.halfOpenBy, ip)
	}
}
