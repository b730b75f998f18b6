#!/usr/bin/python3
"""Independent checks of the IKEv2 primitives in package crypto.

Written from the RFCs, sharing no code with the Go package, so that a
misreading in one is unlikely to be repeated in the other.

    ike_check.py prfplus   RFC 7296 section 2.13 prf+ with the stdlib hmac
    ike_check.py modp      RFC 3526 group 14 from its defining formula, pow()
    ike_check.py sk        RFC 7296 section 3.14 / RFC 5282 / RFC 7634 SK
                           payloads with pyca/cryptography

Each mode reads a JSON list of cases on stdin and writes JSON on stdout.
"""
import hashlib
import hmac
import json
import os
import sys

HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def prf_plus(hash_name, key, seed, n):
    h = HASHES[hash_name]
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(key, t + seed + bytes([i]), h).digest()
        out += t
        i += 1
    return out[:n]


def mode_prfplus(cases):
    return [
        prf_plus(c["hash"], bytes.fromhex(c["key"]), bytes.fromhex(c["seed"]), c["n"]).hex()
        for c in cases
    ]


def arctan_inv(x, one):
    """arctan(1/x) in fixed point with the given one."""
    total = term = one // x
    x2, n, sign = x * x, 3, -1
    while term:
        term //= x2
        total += sign * (term // n)
        n, sign = n + 2, -sign
    return total


def modp_2048_prime():
    """RFC 3526 section 3: p = 2^2048 - 2^1984 - 1 + 2^64 * { [2^1918 pi] + 124476 }."""
    guard = 64
    one = 1 << (1918 + guard)
    pi = 16 * arctan_inv(5, one) - 4 * arctan_inv(239, one)  # Machin
    floor_pi = pi >> guard
    return 2**2048 - 2**1984 - 1 + 2**64 * (floor_pi + 124476)


def mode_modp(cases):
    p = modp_2048_prime()
    out = {"p": p.to_bytes(256, "big").hex(), "cases": []}
    for c in cases:
        x = int(c["x"], 16)
        peer = int(c["peer"], 16)
        out["cases"].append({
            "pub": pow(2, x, p).to_bytes(256, "big").hex(),
            "shared": pow(peer, x, p).to_bytes(256, "big").hex(),
        })
    return out


def sk_mode(cases):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

    def aead_for(encr, key):
        return ChaCha20Poly1305(key) if encr == "chacha20-poly1305" else AESGCM(key)

    def seal(c, head, plaintext, iv, pad):
        """head is the message up to and including the SK generic header."""
        key = bytes.fromhex(c["key"])
        padded = plaintext + pad + bytes([len(pad)])
        if c["encr"] == "aes-cbc":
            enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
            ct = enc.update(padded) + enc.finalize()
            body = head + iv + ct
            icv = hmac.new(bytes.fromhex(c["integ_key"]), body, HASHES[c["integ"]]).digest()
            return body + icv[: c["icv_len"]]
        k, salt = key[:-4], key[-4:]
        # RFC 5282 section 5.1: AAD from the IKE header through the SK
        # payload's generic header; nonce = salt | IV (section 4).
        return head + iv + aead_for(c["encr"], k).encrypt(salt + iv, padded, head)

    def with_lengths(head, sk_off, total):
        head = bytearray(head)
        head[24:28] = total.to_bytes(4, "big")
        head[sk_off + 2 : sk_off + 4] = (total - sk_off).to_bytes(2, "big")
        return bytes(head)

    out = []
    for c in cases:
        msg = bytes.fromhex(c["msg"])
        off = c["sk_off"]
        head = msg[: off + 4]
        key = bytes.fromhex(c["key"])
        if c["encr"] == "aes-cbc":
            iv = msg[off + 4 : off + 20]
            body, icv = msg[: -c["icv_len"]], msg[-c["icv_len"] :]
            want = hmac.new(bytes.fromhex(c["integ_key"]), body, HASHES[c["integ"]]).digest()
            auth_ok = hmac.compare_digest(want[: c["icv_len"]], icv)
            dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
            padded = dec.update(body[off + 20 :]) + dec.finalize()
        else:
            iv = msg[off + 4 : off + 12]
            try:
                padded = aead_for(c["encr"], key[:-4]).decrypt(key[-4:] + iv, msg[off + 12 :], head)
                auth_ok = True
            except Exception:  # cryptography.exceptions.InvalidTag
                padded, auth_ok = b"\x00", False
        plaintext = padded[: len(padded) - 1 - padded[-1]]
        # Re-seal with the same IV and espx's padding choice (minimal, zero
        # bytes) for a byte-exact comparison, and once more with padding
        # of our own, which a receiver must accept.
        if c["encr"] == "aes-cbc":
            pad = bytes((16 - (len(plaintext) + 1) % 16) % 16)
            extra = os.urandom(len(pad) + 16)
        else:
            pad, extra = b"", os.urandom(7)
        resealed = seal(c, head, plaintext, iv, pad)
        fresh_iv = os.urandom(len(iv))
        total = len(msg) + len(extra) - len(pad)
        padded_msg = seal(c, with_lengths(head, off, total), plaintext, fresh_iv, extra)
        out.append({
            "auth_ok": auth_ok,
            "plaintext": plaintext.hex(),
            "resealed": resealed.hex(),
            "padded": padded_msg.hex(),
        })
    return out


def main():
    mode = sys.argv[1]
    cases = json.load(sys.stdin)
    fn = {"prfplus": mode_prfplus, "modp": mode_modp, "sk": sk_mode}[mode]
    json.dump(fn(cases), sys.stdout)


if __name__ == "__main__":
    main()
