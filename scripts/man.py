"""`make man`: write certman's man pages into docs/man/ from the Click command tree."""

from __future__ import annotations

import sys
from pathlib import Path

from certman.cli.manpages import pages

OUT = Path(__file__).resolve().parent.parent / "docs" / "man"


def main() -> int:
    OUT.mkdir(exist_ok=True)
    wanted = pages()
    for stale in set(p.name for p in OUT.glob("*.1")) - set(wanted):
        (OUT / stale).unlink()
        print(f"removed docs/man/{stale}")
    for name, text in sorted(wanted.items()):
        path = OUT / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote docs/man/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
