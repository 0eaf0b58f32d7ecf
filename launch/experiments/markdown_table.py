"""The Markdown tables the experiment scripts write for docs/: a header line, its separator
(one `---` per column) and one line per row."""


def write_markdown_table(path, head, lines):
    """Writes `head` ("| a | b |"), the separator and `lines` (already formatted) to `path`."""
    columns = head.count("|") - 1
    with open(path, "w") as f:
        f.write("\n".join([head, "|" + "---|" * columns, *lines]) + "\n")
    print("wrote", path)
