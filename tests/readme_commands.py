"""The commands of README.md's ```bash blocks, so tests run what a newcomer copies (no second copy)."""

from __future__ import annotations

import re
import shlex
import textwrap
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands(script: str) -> list[list[str]]:
    """The arguments after `python <script>` of every README bash line that runs it, in order
    (line continuations joined, `# comments` dropped, shell quoting removed)."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            words = shlex.split(line, comments=True)
            for start in range(len(words) - 1):
                if words[start] == "python" and words[start + 1] == script:
                    end = words.index("&&", start) if "&&" in words[start:] else len(words)
                    found.append(words[start + 2 : end])
    return found


def readme_yaml(name: str) -> str:
    """The README's ```yaml snippet that starts with the comment `# <name>`, without that line."""
    for block in re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        lines = textwrap.dedent(block).strip("\n").splitlines()  # snippets in a list are indented
        if lines and lines[0].startswith(f"# {name}"):
            return "\n".join(lines[1:]) + "\n"
    raise LookupError(f"README.md has no yaml snippet starting with '# {name}'")
