"""Server file paths kept out of what the browser is shown.

Problems and errors are written for the command line, where `/srv/shop/rules/x.toml` helps;
in a browser the folders tell an attacker how the server is laid out (and the user name in a
home folder). The file's own name is what a marketer needs, so each absolute path is cut to
it. The texts this applies to are messages, never the files a marketer edits.
"""

from __future__ import annotations

import re

# An absolute POSIX path's folders: a "/" that does not continue a word, a URL ("https://")
# or a date ("1404/12/29"), then one or more "name/" steps. What follows is the file's name.
_FOLDERS = re.compile(r"(?<![\w.~:/-])/(?:[^\s/'\"`<>:;,()\[\]{}]+/)+")


def without_paths(text: object) -> str:
    """`text` with every absolute path cut to its last part: "cannot read
    /srv/shop/rules/a.toml" becomes "cannot read a.toml"."""
    return _FOLDERS.sub("", str(text))
