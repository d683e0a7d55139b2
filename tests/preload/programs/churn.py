# churn.py: a Python dict/list/string churn script, a real program run under LD_PRELOAD.
#
# Stresses the allocator as CPython uses it: many small objects (CPython's own pymalloc takes
# requests up to 512 bytes, larger ones and all dict/list storage growth go to malloc/realloc),
# string building and slicing, dicts that grow and shrink, lists appended and truncated, and
# large bytes objects. The output depends only on the arguments (no set/dict ordering by string
# hash is printed; dicts keep insertion order), so it is identical under any allocator and any
# PYTHONHASHSEED.
#
# Usage: python3 churn.py [rounds=40] [seed=1]
import random
import sys
import zlib


def make_word(rng):
    n = rng.randrange(1, 24)
    return "".join(chr(97 + rng.randrange(26)) for _ in range(n))


def round_churn(rng, r):
    # A dict of lists of strings, grown then partly deleted.
    table = {}
    for i in range(4000):
        key = make_word(rng) + str(i % 500)
        table.setdefault(key, []).append(make_word(rng) * rng.randrange(1, 8))
    for key in list(table)[::3]:
        del table[key]
    # String building: join, split, replace, slicing.
    text = " ".join(v[0] for v in table.values())
    words = text.split()
    text2 = text.replace("a", "AA").upper()[::2]
    # Lists of tuples, sorted, truncated; nested structures.
    pairs = sorted((len(w), w) for w in words)
    del pairs[len(pairs) // 2:]
    nested = [{"n": i, "s": str(i) * (i % 17), "l": list(range(i % 50))} for i in range(3000)]
    # Large buffers through malloc/realloc.
    blob = bytearray()
    for i in range(200):
        blob += bytes([i % 256]) * rng.randrange(100, 20000)
    digest = zlib.crc32(text2.encode())
    digest = zlib.crc32(blob, digest)
    digest = zlib.crc32(repr(pairs[:50]).encode(), digest)
    digest = zlib.crc32(repr(nested[r % 3000]).encode(), digest)
    return len(table), len(words), len(blob), digest


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    rng = random.Random(seed)
    keep = []  # a long-lived list that keeps some results alive across rounds
    total = 0
    for r in range(rounds):
        keys, words, blob_len, digest = round_churn(rng, r)
        keep.append((keys, words, blob_len, digest, make_word(rng) * 100))
        if len(keep) > 10:
            keep.pop(0)
        total = zlib.crc32(f"{keys} {words} {blob_len} {digest}".encode(), total)
        if r % 10 == 0:
            print(f"round {r}: keys={keys} words={words} blob={blob_len} crc={digest:08x}")
    print(f"churn.py rounds={rounds} seed={seed} total={total:08x} kept={len(keep)}")


main()
