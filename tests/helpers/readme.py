"""The README's commands, as tests/workflow/test_readme.py runs them and
tests/project/test_readme.py checks what the README says about them."""

from __future__ import annotations

import re

from helpers import REPO

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```bash\n(.*?)```", README, flags=re.DOTALL)
INLINE = re.findall(r"(?<!`)`(snakemake [^`]+)`", README)


def _commands(block: str, program: str = "snakemake") -> list[tuple[str | None, str]]:
    """(folder the block cd'd to, command) for each ``program`` command of a bash block."""
    found, folder = [], None
    for line in block.splitlines():
        for part in line.split("&&"):
            # A command sent to the background (`... &`, to run beside the next) runs in the
            # foreground here, so its exit status counts.
            part = part.strip().removesuffix("&").strip()
            if part.startswith("cd "):
                folder = part[3:].strip()
            elif part.startswith(f"{program} "):
                found.append((folder, part))
    return found


COMMANDS = [command for block in BLOCKS for command in _commands(block)]
COMMANDS += [(None, command) for command in INLINE]
