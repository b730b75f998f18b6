"""Cross-check of espx's ESP against scapy's SecurityAssociation.

dataplane/scapy_test.go runs this once for all its cases:

    /usr/bin/python3 testdata/scapy_esp.py in.json out.json

in.json holds the cases. For each, "go_to_scapy" carries the packets our
Encap produced, which scapy decrypts here, and "scapy_to_go" the plaintext
packets scapy encrypts here for our Decap. out.json gets, per case and in
the same order, {"decrypted": [...], "encrypted": [...], "notes": [...]},
each packet as {"hex": ...} or {"error": ...}. Comparing bytes is left to
the Go test, which knows what it started from.

scapy 2.5.0 has a few quirks that are worked around here, each only where it
applies and each reported in the case's "notes", so that what the Go test
checks is RFC behaviour and not scapy's:

  * SecurityAssociation.encrypt(pkt, seq_num=0) and esn=0 fall back to the
    SA's own seq_num and esn ("seq_num or self.seq_num"), so the sequence
    number of 2^32 (low bits 0) cannot be passed as an argument: the SA's
    seq_num and esn attributes are set before every packet instead.
  * With ESN and a separate integrity algorithm (HMAC), scapy leaves the
    high-order 32 sequence bits out of the ESP ICV: AuthAlgo.sign and
    AuthAlgo.verify only append them for AH. RFC 4303 section 2.2.1 puts
    them in the ICV computation, in an implicit trailer after the Next
    Header that is never transmitted. _ESNAuth below is scapy's own
    sign/verify with that one change, and the note says whether stock scapy
    accepted our packets.
  * With an IPv4 nat_t_header, scapy re-dissects the IP/UDP header before the
    ESP payload is attached, which freezes the UDP length at 8 (RFC 768 and
    RFC 3948 section 2.1 want the whole datagram). The length is recomputed.
  * Transport-mode decryption of UDP-encapsulated IPv6 leaves the UDP header
    in the packet and the IPv6 next header at 17. RFC 3948 section 3.3 first
    removes the UDP header, so that is done here before scapy decrypts.
  * CRYPT_ALGOS' decrypt returns the plaintext without its padding (the
    padding field it returns is sliced from the wrong offset), so _Tap keeps
    the whole plaintext to check the RFC 4303 section 2.4 padding.
"""

import copy
import json
import struct
import sys

# Exit status that tells the Go test scapy cannot be used here (it skips).
EXIT_NO_SCAPY = 77

try:
    from scapy.compat import raw
    from scapy.config import conf
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.ipsec import (
        AUTH_ALGOS,
        ESP,
        IPSecIntegrityError,
        SecurityAssociation,
    )
    from scapy.utils import checksum
except ImportError as err:
    print("cannot import scapy.layers.ipsec: %s" % err, file=sys.stderr)
    sys.exit(EXIT_NO_SCAPY)
if not conf.crypto_valid:
    print("scapy has no python3-cryptography: IPsec is disabled", file=sys.stderr)
    sys.exit(EXIT_NO_SCAPY)

NATT_PORT = 4500
PROTO_UDP = 17
PROTO_ESP = 50


class Fail(Exception):
    """A check on one packet failed; the message goes to the Go test."""


class _ESNAuth(object):
    """scapy's AuthAlgo for ESP with the high-order ESN bits in the ICV.

    sign and verify are AuthAlgo.sign and AuthAlgo.verify for ESP, with the
    high 32 bits of the sequence number (the SA's esn attribute) appended to
    the authenticated data, as RFC 4303 section 2.2.1 describes.
    """

    def __init__(self, algo, sa):
        self.algo = algo
        self.sa = sa
        self.name = algo.name
        self.mac = algo.mac
        self.icv_size = algo.icv_size

    def _icv(self, authed, key):
        mac = self.algo.new_mac(key)
        mac.update(authed + struct.pack("!L", self.sa.esn))
        return mac.finalize()[:self.icv_size]

    def sign(self, pkt, key, esn_en=False, esn=0):
        pkt[ESP].data += self._icv(raw(pkt[ESP]), key)
        return pkt

    def verify(self, pkt, key, esn_en=False, esn=0):
        icv = pkt.data[len(pkt.data) - self.icv_size:]
        clone = pkt.copy()
        clone.data = clone.data[:len(clone.data) - self.icv_size]
        want = self._icv(raw(clone), key)
        if icv != want:
            raise IPSecIntegrityError("pkt_icv=%r, computed_icv=%r (with ESN)" % (icv, want))


class _Tap(object):
    """Keeps the last plaintext scapy's cipher produced, padding included."""

    def __init__(self):
        self.last = None


class _TapAEAD(object):
    def __init__(self, cipher, tap):
        self.cipher, self.tap = cipher, tap

    def encrypt(self, *args):
        return self.cipher.encrypt(*args)

    def decrypt(self, *args):
        self.tap.last = self.cipher.decrypt(*args)
        return self.tap.last


class _TapCtx(object):
    def __init__(self, ctx, tap):
        self.ctx, self.tap, self.out = ctx, tap, b""

    def update(self, data):
        b = self.ctx.update(data)
        self.out += b
        return b

    def finalize(self):
        b = self.ctx.finalize()
        self.tap.last = self.out + b
        return b


class _TapCipher(object):
    def __init__(self, cipher, tap):
        self.cipher, self.tap = cipher, tap

    def encryptor(self):
        return self.cipher.encryptor()

    def decryptor(self):
        return _TapCtx(self.cipher.decryptor(), self.tap)


def tapped(algo, tap):
    """A copy of a CryptAlgo whose cipher reports its plaintext to tap."""
    a = copy.copy(algo)
    if a.ciphers_aead_api:
        factory = a.cipher
        a.cipher = lambda key, *args, **kw: _TapAEAD(factory(key, *args, **kw), tap)
    elif a.cipher is not None:
        new_cipher = a.new_cipher
        a.new_cipher = lambda key, iv, digest=None: _TapCipher(new_cipher(key, iv, digest), tap)
    return a


def ip_class(b):
    v = b[0] >> 4
    if v == 4:
        return IP
    if v == 6:
        return IPv6
    raise Fail("not an IP packet: version %d" % v)


def make_sa(case, d):
    """The scapy SA for one direction of a case, with its _Tap."""
    tunnel = None
    if case["mode"] == "tunnel":
        cls = IPv6 if ":" in d["src"] else IP
        tunnel = cls(src=d["src"], dst=d["dst"])
    kw = {}
    if case["auth"]:
        kw["auth_algo"] = case["auth"]
        kw["auth_key"] = bytes.fromhex(d["integ_key"])
    if case["encap"]:
        kw["nat_t_header"] = UDP(sport=NATT_PORT, dport=NATT_PORT)
    sa = SecurityAssociation(
        ESP,
        spi=d["spi"],
        crypt_algo=case["encr"],
        crypt_key=bytes.fromhex(d["encr_key"]) or None,
        tunnel_header=tunnel,
        esn_en=case["esn"],
        esn=0,
        **kw
    )
    if case["esn"] and sa.auth_algo.mac is not None:
        sa.auth_algo = _ESNAuth(sa.auth_algo, sa)
    tap = _Tap()
    sa.crypt_algo = tapped(sa.crypt_algo, tap)
    return sa, tap


def check_outer(case, d, pkt, b, seq):
    """Checks what scapy does not: outer header, UDP encapsulation, SPI, seq."""
    if isinstance(pkt, IP):
        hl = pkt.ihl * 4
        if checksum(b[:hl]) != 0:
            raise Fail("bad IPv4 header checksum %#06x" % pkt.chksum)
        if pkt.len != len(b):
            raise Fail("IPv4 total length %d, packet %d bytes" % (pkt.len, len(b)))
    elif pkt.plen + 40 != len(b):
        raise Fail("IPv6 payload length %d, packet %d bytes" % (pkt.plen, len(b)))
    if case["mode"] == "tunnel" and (pkt.src != d["src"] or pkt.dst != d["dst"]):
        raise Fail("outer %s > %s, want %s > %s" % (pkt.src, pkt.dst, d["src"], d["dst"]))
    proto = pkt.proto if isinstance(pkt, IP) else pkt.nh
    want = PROTO_UDP if case["encap"] else PROTO_ESP
    if proto != want:
        raise Fail("outer protocol %d, want %d" % (proto, want))
    if case["encap"]:
        u = pkt[UDP]
        if u.sport != NATT_PORT or u.dport != NATT_PORT:
            raise Fail("UDP ports %d > %d, want %d" % (u.sport, u.dport, NATT_PORT))
        if u.len != len(raw(u)):
            raise Fail("UDP length %d, datagram %d bytes" % (u.len, len(raw(u))))
        if isinstance(pkt, IP):
            # RFC 3948 section 2.1: the checksum SHOULD be zero over IPv4.
            if u.chksum != 0:
                raise Fail("UDP checksum %#06x over IPv4, want 0" % u.chksum)
        else:
            again = pkt.copy()
            again[UDP].chksum = None
            good = IPv6(raw(again))[UDP].chksum
            if u.chksum != good:
                raise Fail("UDP checksum %#06x over IPv6, want %#06x" % (u.chksum, good))
    if not pkt.haslayer(ESP):
        raise Fail("scapy finds no ESP layer in %r" % pkt.summary())
    e = pkt[ESP]
    if e.spi != d["spi"]:
        raise Fail("SPI %#x, want %#x" % (e.spi, d["spi"]))
    if e.seq != seq & 0xFFFFFFFF:
        raise Fail("ESP seq %#x, want the low bits of %#x" % (e.seq, seq))


def strip_udp6(pkt):
    """RFC 3948 section 3.3, step 1: the IPv6 packet without its UDP header."""
    esp = raw(pkt[ESP])
    hdr = pkt.copy()
    hdr.remove_payload()
    hdr.nh = PROTO_ESP
    hdr.plen = len(esp)
    return IPv6(raw(hdr) + esp)


def check_padding(case, sa, tap, esp_data):
    """RFC 4303 section 2.4: pad bytes 1, 2, 3, ...; 4-byte (CBC: block) alignment."""
    if sa.crypt_algo.cipher is None:
        pt = esp_data[:len(esp_data) - sa.auth_algo.icv_size]
    else:
        pt = tap.last
    if pt is None or len(pt) < 2:
        raise Fail("no plaintext seen")
    align = 16 if case["encr"] == "AES-CBC" else 4
    if len(pt) % align:
        raise Fail("plaintext of %d bytes is not a multiple of %d" % (len(pt), align))
    padlen = pt[-2]
    if padlen + 2 > len(pt):
        raise Fail("pad length %d in %d bytes of plaintext" % (padlen, len(pt)))
    pad = pt[len(pt) - 2 - padlen:len(pt) - 2]
    if pad != bytes(range(1, padlen + 1)):
        raise Fail("padding %s, want 01 02 03 ..." % pad.hex())


def decrypt_one(case, sa, tap, b, seq, notes):
    """Decrypts one of our packets; returns the packet scapy reconstructs."""
    pkt = ip_class(b)(b)
    check_outer(case, case["go_to_scapy"], pkt, b, seq)
    sa.esn = seq >> 32
    if case["esn"] and isinstance(sa.auth_algo, _ESNAuth):
        try:
            AUTH_ALGOS[case["auth"]].verify(pkt[ESP].copy(), sa.auth_key)
            notes.add("stock scapy (no ESN bits in the HMAC) ACCEPTED our ESN packet: "
                      "we leave the high bits out of the ICV")
        except IPSecIntegrityError:
            notes.add("stock scapy AuthAlgo.verify rejects our ESN+HMAC packets: it leaves the "
                      "high-order ESN bits out of the ESP ICV (RFC 4303 2.2.1); "
                      "checked with them included")
    if case["encap"] and case["mode"] == "transport" and isinstance(pkt, IPv6):
        pkt = strip_udp6(pkt)
        notes.add("UDP header removed before scapy decrypts: its transport-mode decryption "
                  "of UDP-encapsulated IPv6 leaves the UDP header in (RFC 3948 3.3)")
    tap.last = None
    esp_data = pkt[ESP].data  # decrypt takes pkt apart
    try:
        out = sa.decrypt(pkt)
    except IPSecIntegrityError as err:
        raise Fail("ICV does not verify: %s" % err)
    check_padding(case, sa, tap, esp_data)
    return raw(out)


def encrypt_one(case, sa, b, seq, notes):
    """Encrypts one plaintext packet for our Decap."""
    pkt = ip_class(b)(b)
    if raw(pkt) != b:
        raise Fail("scapy does not rebuild the plaintext byte for byte: %s" % raw(pkt).hex())
    # Not encrypt(pkt, seq_num=...): seq_num=0 would mean "the SA's own".
    sa.seq_num = seq & 0xFFFFFFFF
    sa.esn = seq >> 32
    out = sa.encrypt(pkt)
    if case["encap"] and out.haslayer(UDP):
        u = out[UDP]
        n = len(raw(u.payload)) + 8
        if u.len is not None and u.len != n:
            notes.add("scapy froze the UDP length of an IPv4 UDP-encapsulated packet at %d; "
                      "recomputed (RFC 768, RFC 3948 2.1)" % u.len)
            u.len = None
    return raw(out)


def guard(fn, *args):
    try:
        return {"hex": fn(*args).hex()}
    except Exception as err:  # pylint: disable=broad-except
        return {"error": "%s: %s" % (type(err).__name__, err)}


def run_case(case):
    notes = set()
    res = {"name": case["name"], "decrypted": [], "encrypted": []}
    d = case["go_to_scapy"]
    sa, tap = make_sa(case, d)
    for h, seq in zip(d["packets"], d["seqs"]):
        res["decrypted"].append(guard(decrypt_one, case, sa, tap, bytes.fromhex(h), seq, notes))
    d = case["scapy_to_go"]
    sa, _ = make_sa(case, d)
    for h, seq in zip(d["plain"], d["seqs"]):
        res["encrypted"].append(guard(encrypt_one, case, sa, bytes.fromhex(h), seq, notes))
    res["notes"] = sorted(notes)
    return res


def main(argv):
    if len(argv) != 3:
        print("usage: %s in.json out.json" % argv[0], file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        cases = json.load(f)["cases"]
    out = {"scapy": conf.version, "cases": [run_case(c) for c in cases]}
    with open(argv[2], "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
