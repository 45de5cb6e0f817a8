"""Decodes claimwatch output messages the way a Python subscriber would: Confluent framing (magic
byte 0 + big-endian schema id) and fastavro's schemaless reader with the schema from schemas/.

Usage: decode_with_fastavro.py SCHEMA_IDS_JSON MESSAGES_FILE
  SCHEMA_IDS_JSON: {"<id>": "<path to .avsc>", ...}
  MESSAGES_FILE:   repeated [u32 big-endian length][message bytes]
Prints one JSON object per decoded message (bytes fields as hex).
"""
import io
import json
import struct
import sys

import fastavro


def main():
    ids = json.loads(open(sys.argv[1]).read())
    schemas = {int(i): fastavro.parse_schema(json.load(open(p))) for i, p in ids.items()}
    data = open(sys.argv[2], "rb").read()
    pos = 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        msg = data[pos + 4 : pos + 4 + n]
        pos += 4 + n
        if msg[0] != 0:
            raise SystemExit("not Confluent-framed: magic byte %d" % msg[0])
        (schema_id,) = struct.unpack(">I", msg[1:5])
        record = fastavro.schemaless_reader(io.BytesIO(msg[5:]), schemas[schema_id], None)
        print(json.dumps(record, default=lambda b: b.hex() if isinstance(b, bytes) else str(b)))


if __name__ == "__main__":
    main()
