"""Checks espx's ESP on the wire with scapy, which we did not write.

    esp_pcap.py decrypt CAPTURE.pcap SAS.json
        Decrypts every ESP (or ESP-in-UDP) packet of the capture with the
        keys of SAS.json ({"<spi hex>": "<key hex incl. 4-byte salt>"}, all
        AES-GCM-16 tunnel mode) and prints one JSON object per packet:
        {"spi", "seq", "outer_src", "outer_dst", "encap", "src", "dst",
        "proto", "icmp_type"} of the inner packet. A packet whose ICV does
        not verify ends the script with status 1.

    esp_pcap.py replay CAPTURE.pcap IFACE SPI
        Sends the ESP frames of SPI from the capture out of IFACE again,
        as they were, and prints how many.
"""
import json
import sys

from scapy.all import ESP, IP, UDP, IPv6, ICMP, rdpcap, sendp, raw
from scapy.layers.ipsec import SecurityAssociation, IPSecIntegrityError


def esp_of(pkt):
    """(outer IP layer, ESP layer, encap) of an ESP frame, or None."""
    ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
    if ip is None:
        return None
    if pkt.haslayer(ESP):
        return ip, pkt[ESP], pkt.haslayer(UDP)
    if pkt.haslayer(UDP) and pkt[UDP].dport == 4500:
        payload = bytes(pkt[UDP].payload)
        if len(payload) >= 8 and payload[:4] != b"\0\0\0\0":
            return ip, ESP(payload), True
    return None


def decrypt(path, sas_path):
    with open(sas_path) as f:
        keys = {int(k, 16): bytes.fromhex(v) for k, v in json.load(f).items()}
    for pkt in rdpcap(path):
        found = esp_of(pkt)
        if found is None:
            continue
        ip, esp, encap = found
        key = keys.get(esp.spi)
        if key is None:
            print(json.dumps({"spi": esp.spi, "error": "unknown spi"}))
            sys.exit(1)
        cls = IPv6 if isinstance(ip, IPv6) else IP
        kw = {}
        if encap:
            kw["nat_t_header"] = UDP(sport=4500, dport=4500)
        sa = SecurityAssociation(ESP, spi=esp.spi, crypt_algo="AES-GCM", crypt_key=key,
                                 tunnel_header=cls(src=ip.src, dst=ip.dst), **kw)
        outer = cls(raw(ip))
        try:
            inner = sa.decrypt(outer)
        except IPSecIntegrityError as err:
            print(json.dumps({"spi": esp.spi, "seq": esp.seq, "error": str(err)}))
            sys.exit(1)
        out = {"spi": esp.spi, "seq": esp.seq, "outer_src": ip.src, "outer_dst": ip.dst,
               "encap": bool(encap), "src": inner.src, "dst": inner.dst}
        if isinstance(inner, IP):
            out["proto"] = inner.proto
            if inner.haslayer(ICMP):
                out["icmp_type"] = inner[ICMP].type
        else:
            out["proto"] = inner.nh
            if inner.nh == 58:
                out["icmp_type"] = bytes(inner.payload)[0]
        print(json.dumps(out))


def replay(path, iface, spi):
    frames = [p for p in rdpcap(path) if esp_of(p) is not None and esp_of(p)[1].spi == spi]
    sendp(frames, iface=iface, verbose=False)
    print(len(frames))


if __name__ == "__main__":
    if sys.argv[1] == "decrypt":
        decrypt(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "replay":
        replay(sys.argv[2], sys.argv[3], int(sys.argv[4], 0))
    else:
        sys.exit("usage: esp_pcap.py decrypt CAPTURE SAS.json | replay CAPTURE IFACE SPI")
