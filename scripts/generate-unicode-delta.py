#!/usr/bin/python3
"""Writes runtime/io/unicode_delta.cpp: for each Unicode general category (\\p{L}, \\p{Lu}, ...),
the code points JavaScript's regular expressions count in it and PCRE2's do not (added), and
the other way round (removed). The tokenizer's regex rewrite (runtime/io/regex.cpp) applies them
so that PCRE2 10.42 (Unicode 14 tables) splits text as the JavaScript reference encoder (Node,
a newer Unicode) does, e.g. for emoji and CJK ideographs assigned after Unicode 14.

  python3 scripts/generate-unicode-delta.py [--out runtime/io/unicode_delta.cpp]

Needs node (the Unicode version of its ICU is the target) and libpcre2-32 (the one Trident
links in its 8-bit form: both read the same Unicode tables). Both sets are found by testing
every code point against ^\\p{X}$.
"""
import argparse
import ctypes
import ctypes.util
import json
import subprocess

CATEGORIES = ["L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No",
              "P", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So",
              "Z", "Zs", "Zl", "Zp", "C", "Cc", "Cf", "Cs", "Co", "Cn"]
LAST = 0x10FFFF

JS_SETS = r"""
const out = {};
for (const p of JSON.parse(process.argv[1])) {
  const re = new RegExp(`^\\p{${p}}$`, "u");
  const ranges = [];
  let start = -1;
  for (let cp = 0; cp <= 0x110000; cp++) {
    const inside = cp <= 0x10FFFF && re.test(String.fromCodePoint(cp));
    if (inside && start < 0) start = cp;
    if (!inside && start >= 0) { ranges.push([start, cp - 1]); start = -1; }
  }
  out[p] = ranges;
}
process.stdout.write(JSON.stringify({unicode: process.versions.unicode,
                                     node: process.versions.node, sets: out}));
"""


def pcre2_sets():
    lib = ctypes.CDLL(ctypes.util.find_library("pcre2-32") or "libpcre2-32.so.0")
    lib.pcre2_compile_32.restype = ctypes.c_void_p
    lib.pcre2_compile_32.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint32,
                                     ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_size_t),
                                     ctypes.c_void_p]
    lib.pcre2_match_data_create_from_pattern_32.restype = ctypes.c_void_p
    lib.pcre2_match_data_create_from_pattern_32.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.pcre2_match_32.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                   ctypes.c_size_t, ctypes.c_uint32, ctypes.c_void_p,
                                   ctypes.c_void_p]
    lib.pcre2_config_32.argtypes = [ctypes.c_uint32, ctypes.c_void_p]
    version = (ctypes.c_uint32 * 32)()  # code units of the library's width
    lib.pcre2_config_32(10, ctypes.cast(version, ctypes.c_void_p))  # PCRE2_CONFIG_UNICODE_VERSION
    utf, no_check = 0x00080000, 0x40000000
    sets = {}
    for p in CATEGORIES:
        pattern = (ctypes.c_uint32 * 16)(*[ord(c) for c in "^\\p{%s}$" % p], 0)
        error, offset = ctypes.c_int(), ctypes.c_size_t()
        code = lib.pcre2_compile_32(pattern, ctypes.c_size_t(-1), utf, ctypes.byref(error),
                                    ctypes.byref(offset), None)
        match = lib.pcre2_match_data_create_from_pattern_32(code, None)
        subject = (ctypes.c_uint32 * 1)()
        members = []
        for cp in range(LAST + 1):
            if 0xD800 <= cp <= 0xDFFF:
                continue  # not valid UTF-32 for PCRE2; JavaScript's \p{Cs} keeps them (no delta)
            subject[0] = cp
            if lib.pcre2_match_32(code, subject, 1, 0, no_check, match, None) > 0:
                members.append(cp)
        sets[p] = set(members)
    return "".join(chr(c) for c in version if c), sets


def expand(ranges):
    out = set()
    for first, last in ranges:
        out.update(range(first, last + 1))
    return out


def as_ranges(points):
    ranges = []
    for cp in sorted(points):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return ranges


def cpp_ranges(name, ranges):
    """A constexpr array of {first, last} pairs, wrapped at 100 columns."""
    lines, line = [], "   "
    for first, last in ranges:
        item = " {0x%X, 0x%X}," % (first, last)
        if len(line) + len(item) > 100:
            lines.append(line)
            line = "   "
        line += item
    lines.append(line.rstrip(","))
    return "constexpr CodePointRange %s[] = {\n%s};\n" % (name, "\n".join(lines))


def render(deltas, node, unicode, pcre2_unicode):
    """The C++ file for {category: (added ranges, removed ranges)}; equal lists share one array
    (a category and its only differing subcategory, C and Cn, often have the same delta)."""
    tables, entries, names = [], [], {}

    def array(name, ranges):
        if not ranges:
            return "{}"
        key = tuple(map(tuple, ranges))
        if key not in names:
            names[key] = name
            tables.append(cpp_ranges(name, ranges))
        return names[key]

    for p in CATEGORIES:
        if p not in deltas:
            continue
        added, removed = deltas[p]
        entries.append('    {"%s", %s, %s},' % (p, array("k%sAdded" % p, added),
                                                  array("k%sRemoved" % p, removed)))
    return "".join([
        "// Generated by scripts/generate-unicode-delta.py; do not edit by hand.\n",
        "// General categories as JavaScript sees them (Node %s, Unicode %s) against PCRE2's own\n"
        "// tables (Unicode %s): code points to add to and remove from \\p{X}.\n"
        % (node, unicode, pcre2_unicode),
        '#include "runtime/io/unicode_delta.h"\n\nnamespace trident::io {\n\nnamespace {\n\n',
        "\n".join(tables),
        "\n}  // namespace\n\n",
        'const char* const kUnicodeDeltaTarget = "Unicode %s (Node %s) over PCRE2\'s Unicode %s";\n\n'
        % (unicode, node, pcre2_unicode),
        "const std::span<const UnicodeDelta> kUnicodeDeltas = [] {\n",
        "  static const UnicodeDelta deltas[] = {\n%s\n  };\n" % "\n".join(entries),
        "  return std::span<const UnicodeDelta>(deltas);\n}();\n\n}  // namespace trident::io\n",
    ])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runtime/io/unicode_delta.cpp")
    args = parser.parse_args()
    js = json.loads(subprocess.run(["node", "-e", JS_SETS, json.dumps(CATEGORIES)],
                                   capture_output=True, text=True, check=True).stdout)
    pcre2_unicode, pcre2 = pcre2_sets()
    deltas = {}
    for p in CATEGORIES:
        theirs = expand(js["sets"][p]) - set(range(0xD800, 0xE000))
        added, removed = as_ranges(theirs - pcre2[p]), as_ranges(pcre2[p] - theirs)
        if added or removed:
            deltas[p] = (added, removed)
    with open(args.out, "w") as f:
        f.write(render(deltas, js["node"], js["unicode"], pcre2_unicode))
    print("wrote {}: {} categories differ (Unicode {} vs PCRE2's {})".format(
        args.out, len(deltas), js["unicode"], pcre2_unicode))


if __name__ == "__main__":
    main()
