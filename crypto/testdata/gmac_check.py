#!/usr/bin/python3
"""Independent check of ENCR_NULL_AUTH_AES_GMAC (RFC 4543) ESP packets.

scapy has no AES-GMAC, so this uses pyca/cryptography's AES-GCM directly,
with RFC 4543's construction: nonce = salt || IV, no plaintext, and AAD =
SPI || [seq high ||] seq low || IV || payload, padding, pad length, next
header; the ICV is the GCM tag.

Reads JSON cases on stdin: key (with salt), esn, seq_hi, packet (the ESP
packet our code sealed). Writes one JSON line per case: the tag it computes,
and a packet it seals itself from our packet's plaintext, for Go to open.
"""
import json
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def aad_of(pkt, esn, seq_hi, icv_len=16):
    body = pkt[:-icv_len]
    if esn:
        return body[:4] + seq_hi.to_bytes(4, "big") + body[4:]
    return body


def main():
    out = []
    for case in json.load(sys.stdin):
        keymat = bytes.fromhex(case["key"])
        key, salt = keymat[:-4], keymat[-4:]
        pkt = bytes.fromhex(case["packet"])
        iv = pkt[8:16]
        aad = aad_of(pkt, case["esn"], case["seq_hi"])
        tag = AESGCM(key).encrypt(salt + iv, b"", aad)
        out.append({"tag": tag.hex(), "ours_ok": tag == pkt[-16:]})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
