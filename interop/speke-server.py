#!/usr/bin/env python3
"""A DRM provider's key server as SPEKE v2 has it, for the interop suite: it answers CPIX 2.3
documents posted with `X-Speke-Version: 2.0`, filling each content key with a fresh random key
and each DRM system with its signaling (a Widevine and a PlayReady `pssh` box, FairPlay's
`skd://` key tag), and writes what it gave, one JSON line per key, to LOG.

    interop/speke-server.py PORT LOG
"""
import base64
import json
import secrets
import struct
import sys
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CPIX = "urn:dashif:org:cpix"
PSKC = "urn:ietf:params:xml:ns:keyprov:pskc"
WIDEVINE = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"
PLAYREADY = "9a04f079-9840-4286-ab92-e65be0885f95"
FAIRPLAY = "94ce86fb-07ff-4f43-adb8-93d2fa968ca2"
ET.register_namespace("cpix", CPIX)
ET.register_namespace("pskc", PSKC)
PORT, LOG = int(sys.argv[1]), sys.argv[2]


def pssh(system, data):
    return struct.pack(">I", 32 + len(data)) + b"pssh" + b"\0\0\0\0" + uuid.UUID(system).bytes + struct.pack(">I", len(data)) + data


def q(name, ns=CPIX):
    return f"{{{ns}}}{name}"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("X-Speke-Version") != "2.0":
            return self.reply(400, b"X-Speke-Version: 2.0 is required")
        try:
            doc = ET.fromstring(body)
        except ET.ParseError as e:
            return self.reply(400, str(e).encode())
        if doc.tag != q("CPIX") or doc.get("version") != "2.3":
            return self.reply(400, b"a CPIX 2.3 document is required")
        period = doc.find(f"{q('ContentKeyPeriodList')}/{q('ContentKeyPeriod')}")
        for key in doc.iter(q("ContentKey")):
            value = secrets.token_bytes(16)
            secret = ET.SubElement(ET.SubElement(key, q("Data")), q("Secret", PSKC))
            ET.SubElement(secret, q("PlainValue", PSKC)).text = base64.b64encode(value).decode()
            with open(LOG, "a") as f:
                f.write(json.dumps({"content": doc.get("contentId"), "kid": key.get("kid"), "key": value.hex(),
                                    "period": period.get("index") if period is not None else None}) + "\n")
        for system in doc.iter(q("DRMSystem")):
            kid, sid = system.get("kid"), system.get("systemId").lower()
            for child in list(system):
                system.remove(child)
            if sid == WIDEVINE:
                ET.SubElement(system, q("PSSH")).text = base64.b64encode(pssh(WIDEVINE, f"provider-widevine:{kid}".encode())).decode()
            elif sid == PLAYREADY:
                ET.SubElement(system, q("PSSH")).text = base64.b64encode(pssh(PLAYREADY, b"<WRMHEADER/>")).decode()
            elif sid == FAIRPLAY:
                tag = f'#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://{kid}",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"'
                ET.SubElement(system, q("HLSSignalingData"), playlist="media").text = base64.b64encode(tag.encode()).decode()
        self.reply(200, ET.tostring(doc, xml_declaration=True, encoding="UTF-8"), "application/xml")

    def reply(self, status, body, kind="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("X-Speke-Version", "2.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
