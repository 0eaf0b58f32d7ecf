"""Reads a TensorBoard event file without TensorBoard: checks the framing CRCs and decodes the
scalar summaries with a minimal protobuf wire-format parser. With --selftest BINARY it runs the
C++ writer test, keeps its file and checks the decoded values."""
import os
import struct
import subprocess
import sys
import tempfile


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, pos):
    result, shift = 0, 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def fields(buf):
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        elif wire == 2:
            length, pos = varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield number, value


def read_scalars(path):
    data = open(path, "rb").read()
    pos, scalars, version = 0, [], None
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        assert length_crc == masked(header), "bad length crc"
        payload = data[pos + 12:pos + 12 + length]
        (payload_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        assert payload_crc == masked(payload), "bad payload crc"
        pos += 16 + length
        step = 0
        for number, value in fields(payload):
            if number == 2:
                step = value
            elif number == 3:
                version = value.decode()
            elif number == 5:
                for _, entry in fields(value):
                    tag, simple = None, None
                    for n, v in fields(entry):
                        if n == 1:
                            tag = v.decode()
                        elif n == 2:
                            (simple,) = struct.unpack("<f", v)
                    scalars.append((step, tag, simple))
    return version, scalars


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--selftest":
        with tempfile.TemporaryDirectory() as tmp:
            keep = os.path.join(tmp, "events")
            env = dict(os.environ, TRIDENT_TB_KEEP=keep)
            subprocess.run([sys.argv[2], "--gtest_filter=TensorBoard.*"], check=True, env=env,
                           stdout=subprocess.DEVNULL)
            version, scalars = read_scalars(keep)
            assert version == "brain.Event:2", version
            assert scalars == [(1, "train/loss", 2.5), (2, "train/loss", 2.25)], scalars
            print("tensorboard event file decoded:", scalars)
        return
    for path in sys.argv[1:]:
        version, scalars = read_scalars(path)
        print(path, version)
        for step, tag, value in scalars:
            print(step, tag, value)


if __name__ == "__main__":
    main()
