#!/bin/sh
# Seed corpora for the libFuzzer harnesses (fuzz/fuzz.mk), into BUILD/seeds/NAME:
# every .ae file of examples/ and tests/, small data files of each format
# (the harness's first two bytes pick the format and the expected sample
# size), and a checkpoint of fuzz_checkpoint's model.
set -e
B=${1:-build-fuzz}
rm -rf "$B/seeds" && mkdir -p "$B/seeds/ae" "$B/seeds/data" "$B/seeds/checkpoint"
for f in examples/*.ae tests/*/*.ae tests/bad/*.ae; do
  [ -f "$f" ] && cp "$f" "$B/seeds/ae/$(echo "$f" | tr / _)"
done
d="$B/seeds/data"
# mode byte, size byte (index into fuzz_data.c's sizes: 4 -> 4 values, 0 -> 784), then the file
# IDX: 3 samples of [1, 4] bytes
printf '\000\004\000\000\010\003\000\000\000\003\000\000\000\001\000\000\000\004abcdefghijkl' > "$d/idx"
printf '\001\004\000\000\010\003\000\000\000\003\000\000\000\001\000\000\000\004abcdefghijkl' > "$d/idx-gz-raw"
printf '\001\004\000\000\010\003\000\000\000\003\000\000\000\001\000\000\000\004abcdefghijk' > "$d/idx-gz"
printf '\002\004%s\n' '1,0.5,0.25,0,1' '2,0,0,1,1' '0.1,0.2,0.3,0.4' > "$d/csv"
printf '\005\004%s\n' '1,0.5,0.25,0,1' '2,0,0,1,1' > "$d/csv-gz"
# npy: f4 [2, 4]
python3 - "$d" <<'PY' 2>/dev/null || true
import struct, sys
d = sys.argv[1]
def npy(descr, shape, payload):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    h += ' ' * ((64 - (10 + len(h) + 1) % 64) % 64) + '\n'
    return b'\x93NUMPY\x01\x00' + struct.pack('<H', len(h)) + h.encode() + payload
open(d + '/npy-f4', 'wb').write(b'\x03\x04' + npy('<f4', '(2, 4)', struct.pack('<8f', *range(8))))
open(d + '/npy-f8', 'wb').write(b'\x03\x04' + npy('<f8', '(2, 2, 2)', struct.pack('<8d', *range(8))))
open(d + '/npy-u1', 'wb').write(b'\x07\x04' + npy('|u1', '(2, 4)', bytes(range(8))))
# A gzip bomb, as raw gzip (an odd length): an IDX header of 3 samples of
# [1, 4] bytes, then 64 MiB of zeros. The loaders stop at the header's 12 bytes.
import gzip, io
z = io.BytesIO()
with gzip.GzipFile(fileobj=z, mode='wb', compresslevel=9) as g:
    g.write(b'\x00\x00\x08\x03\x00\x00\x00\x03\x00\x00\x00\x01\x00\x00\x00\x04')
    for _ in range(64): g.write(bytes(1 << 20))
bomb = z.getvalue()
open(d + '/idx-gz-bomb', 'wb').write(b'\x01\x04' + bomb + (b'' if len(bomb) % 2 else b'\x00'))
open(d + '/npy-bin', 'wb').write(b'\x04\x04' + npy('<f4', '(1, 4)', struct.pack('<4f', 1, 2, 3, 4)))
PY
printf '\006\004\000\000\010\001\000\000\000\003\001\002\003' > "$d/labels"
AEC_FUZZ_SEED_DIR="$B/seeds/checkpoint" "$B/fuzz_checkpoint" -runs=0 "$B/seeds/checkpoint" >/dev/null 2>&1 || true
