"""Render the library's plain-text docstrings safely as reStructuredText.

The docstrings write their maths as plain text (``||D^T y||_inf``, ``a * b``, ``x_k``) and indent freely, which
reads well in ``help()`` and in an editor; reStructuredText would parse the maths as substitutions (``|...|``),
emphasis (``*...``) and references (``name_``), and a change of indentation without a blank line as an error.
Before napoleon turns the Google-style sections (``Args:``, ``Returns:``, ...) into fields, this extension

* escapes ``\\``, ``*``, ``|`` and reference-like trailing underscores in the prose, and
* outside those sections, puts a blank line where the indentation changes in the middle of a paragraph,

leaving inline literals (double back-quotes), list markers, doctest blocks (``>>>``) and literal blocks (after
``::``) as they are.
"""
import re

_TRAILING_UNDERSCORE = re.compile(r"(?<=\w)_(?=[^\w]|$)")
_LITERAL = re.compile(r"(``.+?``)")
_BULLET = re.compile(r"\s*(?:[*-]|\d+\.|\(\d+\)) ")
_SECTIONS = {"args", "arguments", "parameters", "returns", "return", "raises", "yields", "attributes", "example",
             "examples", "note", "notes", "warning", "warns", "references", "see also", "keyword args"}


def escape_prose(text: str) -> str:
    """Escape backslashes, ``*``, ``|`` and reference-like trailing underscores outside inline literals."""
    parts = _LITERAL.split(text)
    for i in range(0, len(parts), 2):                  # even parts are prose, odd ones are ``literals``
        p = parts[i].replace("\\", "\\\\").replace("*", "\\*").replace("|", "\\|")
        parts[i] = _TRAILING_UNDERSCORE.sub(r"\\_", p)
    return "".join(parts)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


_TABLE_BORDER = re.compile(r"\s*=+( +=+)+\s*$")
_INITIAL = re.compile(r"(\s*[A-Z])\. ")             # "B. Wohlberg, ..." is a name, not an enumerated list
_SAME_WIDTH = str.maketrans({"|": "\u2223", "*": "\u2217"})


def _escape_line(line: str, in_table: bool = False) -> str:
    if in_table:                                     # a simple table's columns must keep their widths
        return line.translate(_SAME_WIDTH)
    bullet = _BULLET.match(line)
    if bullet:
        return line[:bullet.end()] + escape_prose(line[bullet.end():])
    line = escape_prose(line)
    return _INITIAL.sub(r"\1\\. ", line, count=1) if _INITIAL.match(line) else line


def escape_docstring(lines: list[str]) -> list[str]:
    """The docstring's lines, escaped and with blank lines at mid-paragraph indentation changes."""
    out: list[str] = []
    in_doctest, literal_indent, section_indent, table_borders = False, None, None, 0
    prev = ""                                          # the previous line as written (blank: a paragraph break)
    for line in lines:
        stripped, indent = line.strip(), _indent(line)
        if literal_indent is not None:                 # inside a literal block: verbatim until it dedents
            if stripped and indent <= literal_indent:
                literal_indent = None
            else:
                out.append(line)
                prev = line
                continue
        if stripped.startswith(">>>"):
            in_doctest = True
        elif in_doctest and not stripped:
            in_doctest = False
        if in_doctest:
            out.append(line)
            prev = line
            continue
        if _TABLE_BORDER.match(line):
            table_borders = (table_borders + 1) % 3      # top, below the header, bottom
            out.append(line)
            prev = line
            continue
        if table_borders:
            out.append(_escape_line(line, in_table=True))
            prev = line
            continue
        if section_indent is not None and stripped and indent <= section_indent:
            section_indent = None
        header = stripped.endswith(":") and stripped[:-1].strip().lower() in _SECTIONS
        if stripped and prev.strip() and section_indent is None and not header:
            p_indent = _indent(prev)
            bullet = _BULLET.match(prev)
            continues_item = bullet is not None and indent == bullet.end()
            if indent < p_indent or (indent > p_indent and not continues_item):
                out.append("")
        out.append(_escape_line(line))
        if header:
            section_indent = indent
        if stripped.endswith("::"):
            literal_indent = indent
        prev = line
    return out


def _process(app, what, name, obj, options, lines):
    lines[:] = escape_docstring(lines)


def setup(app):
    app.connect("autodoc-process-docstring", _process, priority=100)   # before napoleon (priority 500)
    return {"parallel_read_safe": True, "version": "1"}
