#!/usr/bin/env python3
"""Writes the tokenizer test corpus: text that exercises every branch of DeepSeek-V3's
pre-tokenizer and byte-level BPE. Deterministic (seeded), assembled from the word lists and
character ranges below, at least --min-bytes long.

  make_tokenizer_corpus.py --out corpus.txt [--invalid-bytes] [--min-bytes 220000] [--seed 1]

Without --invalid-bytes the corpus is valid UTF-8; with it, ill-formed byte sequences (lone
continuation bytes, truncated, overlong, surrogate and out-of-range forms) are mixed in.
"""
import argparse
import random

WORDS = """the of and to in is was for on that with as by at from it an be this are which or
have has had not but were they their one all there been more when will would who so if out
about into than them can only other new some could time these two may then do first any my
now such like our over man me even most made after also did many before must through back
years where much your way well down should because each just those people how too little state
good very make world still own see men work long get here between both life being under never
day same another know while last might us great old year off come since against go came right
used take three states himself few house use during without again place around however home
small found thought went say part once general high upon school every don't does got united
left number course war until always away something fact though water less public put think
almost hand enough far took head yet government system better set told nothing night end why
called didn't eyes find going look asked later knew point next program city business give group
toward young let room president side social given present several order national possible rather
second face per among form important often things looked early white john become case large big
need four within felt children along saw best church ever least power development light thing
seemed family interest want members mind country area others although turned done open god
service certain kind problem began different door thus help sense means whole matter perhaps
itself york it's times law human line above name example action company hands local show whether
five history gave today either act feet across taken past quite anything seen having death week
experience body word half really field am car words already themselves i'm information tell
together college shall money period held keep sure free real probably seems political you're
question air we're they've she'll he'd couldn't wouldn't o'clock rock'n'roll state-of-the-art
well-known self-evident naïve café résumé coöperate façade jalapeño Zürich São Paulo Ærøskøbing
""".split()

CODE_SNIPPETS = [
    "def {f}({a}, {b}=None):\n    \"\"\"Return the {w} of {a}.\"\"\"\n    if {b} is None:\n        {b} = []\n    for i in range(len({a})):\n        {b}.append({a}[i] ** 2 + {n})\n    return {b}\n",
    "int {f}(const std::vector<int>& {a}) {{\n\tint {b} = {n};\n\tfor (auto x : {a}) {b} += x * x;  // {w}\n\treturn {b};\n}}\n",
    "const {f} = async ({a}) => {{\n  const {b} = await fetch(`https://example.org/{w}?id=${{{a}}}`);\n  return {b}.json();\n}};\n",
    "for f in *.txt; do\n  grep -c '{w}' \"$f\" >> /tmp/{f}.log 2>&1 || echo \"fail: $f\"\ndone\n",
    "{{\"{w}\": [{n}, {n2}, null, true], \"{f}\": {{\"nested\": \"a\\tb\\nc\\u00e9\"}}}}\n",
    "<div class=\"{w}\" id='{f}'>&nbsp;&lt;{a}&gt; &amp; {n}%</div>\n",
    "SELECT {a}, COUNT(*) AS {b} FROM {f} WHERE {w} >= {n} GROUP BY {a} ORDER BY {b} DESC;\n",
    "    if ({a} != {b} && {a} <= {n}) {{ {f}({a}++, --{b}); }} else {{ return {a} >> 2 | {b} << 3; }}\n",
    "$ {f} --{w}={n} -v -o ./out/{a}_{b}.bin && echo $? # exit code\n",
    "\\begin{{equation}} \\frac{{\\partial {a}}}{{\\partial {b}}} = \\sum_{{i=1}}^{{{n}}} \\alpha_i x^{{2}} \\end{{equation}}\n",
]

def cjk(rng, first, last, count):
    return "".join(chr(rng.randint(first, last)) for _ in range(count))

def prose(rng):
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 22))]
    words[0] = words[0].capitalize()
    for i in range(1, len(words)):
        roll = rng.random()
        if roll < 0.08:
            words[i] = words[i] + ","
        elif roll < 0.11:
            words[i] = "(" + words[i] + ")"
        elif roll < 0.13:
            words[i] = "\"" + words[i] + "\""
        elif roll < 0.15:
            words[i] = words[i].upper()
        elif roll < 0.17:
            words[i] = words[i] + "'s"
    return " ".join(words) + rng.choice([".", "!", "?", "...", " —", ";", ":", "?!"])

def numbers(rng):
    parts = []
    for length in range(1, 41):
        parts.append(str(rng.randint(10 ** (length - 1), 10 ** length - 1)))
    parts += [
        "-" + str(rng.randint(0, 10 ** 6)), "{:.6f}".format(rng.uniform(-1e4, 1e4)),
        "{:,}".format(rng.randint(0, 10 ** 12)), "{:.3e}".format(rng.uniform(0, 1e30)),
        hex(rng.randint(0, 2 ** 64)), "2024-0{}-1{}T0{}:3{}:59Z".format(*[rng.randint(1, 9) for _ in range(4)]),
        "v{}.{}.{}".format(rng.randint(0, 20), rng.randint(0, 99), rng.randint(0, 999)),
        "{}%".format(rng.randint(0, 100)), "+1 (555) {}-{:04d}".format(rng.randint(100, 999), rng.randint(0, 9999)),
        "٠١٢٣٤٥٦٧٨٩", "１２３４５", "²³¹", "½¼¾", "ⅫⅣⅨ", "①②③", "१२३", "一二三四五",
        "0" * rng.randint(1, 12), "007", "1,000,000.00", "3.14159265358979323846",
    ]
    rng.shuffle(parts)
    seps = [" ", ", ", "\n", "\t", " x ", "/", "-", "", "=", ": "]
    return "".join(p + rng.choice(seps) for p in parts)

def chinese(rng):
    text = []
    for _ in range(rng.randint(3, 8)):
        text.append(cjk(rng, 0x4E00, 0x9FA5, rng.randint(2, 12)))
        text.append(rng.choice(["，", "。", "、", "；", "：", "！", "？", "（", "）", "“", "”", "《", "》", " ", "", "1", "23", "abc"]))
    # Ideographs outside [\u4e00-\u9fa5] (later additions, Extension A and B) take the
    # letter branch of the third split instead of the CJK split.
    text.append(cjk(rng, 0x9FA6, 0x9FEF, 3) + cjk(rng, 0x3400, 0x4DBF, 3) + cjk(rng, 0x20000, 0x2A6DF, 2))
    text.append(cjk(rng, 0x31350, 0x323AF, 2))  # extension H, Unicode 15.0
    return "".join(text)

def japanese(rng):
    text = []
    for _ in range(rng.randint(3, 8)):
        text.append(cjk(rng, 0x3041, 0x3096, rng.randint(1, 6)))   # hiragana
        text.append(cjk(rng, 0x30A1, 0x30FA, rng.randint(1, 6)))   # katakana
        text.append(cjk(rng, 0x4E00, 0x9FA5, rng.randint(1, 3)))   # kanji
        text.append(rng.choice(["ー", "。", "、", "「", "」", "・", "ｶﾀｶﾅ", "ｰ", " ", "です。", "〜"]))
    return "".join(text)

OTHER_SCRIPTS = [
    "안녕하세요 세계! 한국어 텍스트입니다.", "مرحبا بالعالم، هذا نص عربي ١٢٣.", "שלום עולם, זה טקסט בעברית.",
    "नमस्ते दुनिया, यह हिन्दी पाठ है। क्षत्रिय", "สวัสดีชาวโลก นี่คือข้อความภาษาไทย", "Привет, мир! Это русский текст.",
    "Γειά σου Κόσμε! Ελληνικό κείμενο.", "Ça va? Élève, naïve, Œuvre, ß, ẞ, İstanbul, ǅ",
    "e\u0301 a\u0308 o\u0302\u0323 n\u0303 Z\u0335\u0321\u034ealgo\u0336", "ﬁ ﬂ ﬀ ㎏ ℃ № ™ ©",
    "Tiếng Việt có dấu: Người, được, những.", "ქართული ენა", "Հայերեն լեզու", "ᚠᛇᚻ᛫ᛒᛦᚦ",
    "\U00011F04\U00011F05\U00011F06 \U00011F43",  # Kawi (Unicode 15.0)
]

EMOJI = [
    "😀", "😂", "🥲", "👍", "👍🏽", "👍🏿", "❤️", "❤", "🇺🇸", "🇯🇵🇨🇳", "👨‍👩‍👧‍👦", "🧑🏽‍💻", "🏳️‍🌈",
    "#️⃣", "1️⃣", "©️", "☺️", "🤷‍♀️", "🐍", "🦀", "🚀✨", "⚡", "🫠", "🀄", "🃏", "🎉🎉🎉",
    # assigned in Unicode 15.0 (after the Unicode 14 of PCRE2 10.42's tables)
    "🩷", "🫨", "🪿", "🫎🪼",
]

WHITESPACE = [
    " ", "  ", "   ", " " * 8, " " * 17, "\t", "\t\t", "\t \t", " \t ", "\u00a0", "\u00a0\u00a0",
    "\u2002", "\u2003\u2003", "\u2009", "\u200a", "\u3000", "\u3000\u3000", "\ufeff", "\u0085",
    "\u180e", "\u2028", "\u2029", "\u202f", "\u205f", "\u200b", "\x0b", "\x0c", "\n", "\n\n",
    "\n\n\n\n", "\r\n", "\r\n\r\n", "\r", "\n\r", " \n", "  \n  ", "\t\n", " \r\n ", "\x1c\x1d\x1e\x1f",
]

SPECIAL = [
    "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>", "<｜User｜>", "<｜Assistant｜>",
    "<|EOT|>", "<｜fim▁hole｜>", "<｜fim▁begin｜>", "<｜fim▁end｜>", "<｜tool▁calls▁begin｜>",
    "<｜tool▁sep｜>", "<｜place▁holder▁no▁0｜>", "<｜place▁holder▁no▁17｜>", "<｜place▁holder▁no▁799｜>",
    "<｜User", "<｜User｜", "<｜place▁holder▁no▁800｜>", "<|User|>", "<think>", "</think>",
]

INVALID = [
    b"\x80", b"\xbf\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xc3", b"\xe2\x82", b"\xe2\x28\xa1",
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
    b"\xf8\x88\x80\x80\x80", b"\xfe", b"\xff", b"\xff\xfe", b"\xf0\x9f\x98", b"a\x80b", b"\xe4\xbd",
]

MISC = [
    "https://www.example.com/path/to/page?query=1&lang=en#section-2", "user.name+tag@example.co.uk",
    "**bold** _italic_ `code` [link](http://x.y) > quote\n- item\n1. first", "!!!???...,,,;;;",
    "---===+++***", "(((nested)))", "'single' \"double\" `back`", "a" * 300, "ab" * 150,
    "Supercalifragilisticexpialidocious" * 3, "abc你好def", "テストtest123テスト", "x=1;y=2;z=x+y",
    "C:\\Users\\name\\file.txt", "~/.config/app/settings.json", "@mention #hashtag $100 ^caret",
    "¿Qué? ¡Sí! «guillemets» „Anführungszeichen“ ‹single›", "\x00\x01\x02\x07\x08\x7f",
    "tab\tseparated\tvalues\n", "trailing spaces   \nnext", "I'm you're he's it'd we'll they've",
    "IT'S DON'T 'tis o' 're", "μ-law ∑∫∂√∞ ≠ ≤ ≥ ± × ÷ → ⇒ ∀∃", "█▓▒░ ─│┌┐└┘", "♠♣♥♦ ♪♫",
]

def section(rng, invalid):
    kind = rng.choice(["prose", "prose", "prose", "code", "numbers", "chinese", "japanese", "other",
                       "emoji", "whitespace", "special", "misc"])
    if kind == "prose":
        text = " ".join(prose(rng) for _ in range(rng.randint(1, 5)))
    elif kind == "code":
        names = {"f": rng.choice(["compute", "_helper", "fooBar", "x1", "parse_v2"]),
                 "a": rng.choice(["xs", "data", "arr", "values"]), "b": rng.choice(["out", "acc", "res"]),
                 "w": rng.choice(WORDS), "n": rng.randint(0, 10 ** rng.randint(1, 9)),
                 "n2": rng.randint(-999, 999)}
        text = rng.choice(CODE_SNIPPETS).format(**names)
    elif kind == "numbers":
        text = numbers(rng)
    elif kind == "chinese":
        text = chinese(rng)
    elif kind == "japanese":
        text = japanese(rng)
    elif kind == "other":
        text = rng.choice(OTHER_SCRIPTS)
    elif kind == "emoji":
        text = "".join(rng.choice(EMOJI) + rng.choice(["", " ", "  ", "a", "。", "1"]) for _ in range(rng.randint(2, 10)))
    elif kind == "whitespace":
        text = "".join(rng.choice(WHITESPACE) + rng.choice(["word", "x", "", "1", "中", "!", "é"]) for _ in range(rng.randint(3, 12)))
    elif kind == "special":
        text = "".join(rng.choice(["", " ", "text", "\n", "12", "中文"]) + rng.choice(SPECIAL) for _ in range(rng.randint(1, 6)))
    else:
        text = rng.choice(MISC)
    data = text.encode("utf-8")
    if invalid and rng.random() < 0.25:
        cut = rng.randint(0, len(data))
        data = data[:cut] + rng.choice(INVALID) + data[cut:]
    return data + rng.choice([b" ", b"\n", b"\r\n", b"\n\n", b"", b"\t"])

def corpus(seed, min_bytes, invalid):
    rng = random.Random(seed)
    chunks, size = [], 0
    while size < min_bytes:
        chunk = section(rng, invalid)
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--invalid-bytes", action="store_true")
    parser.add_argument("--min-bytes", type=int, default=220000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    data = corpus(args.seed, args.min_bytes, args.invalid_bytes)
    with open(args.out, "wb") as out:
        out.write(data)
    print("wrote {}: {} bytes".format(args.out, len(data)))

if __name__ == "__main__":
    main()
