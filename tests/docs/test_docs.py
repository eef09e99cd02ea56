"""The docs stay true: README.md and docs/*.md name only things that exist.

Checked without importing the package (the source is read with `ast`):

- every repository path in backticks or in a relative link exists (a link's `#anchor`
  names a heading of its page), and every dotted module `early_exit.x.y` resolves to a
  module or package under src/ (`early_exit.x.y.name`: the module defines `name`);
- every `make` target shown exists in the Makefile, every `early-exit predict` option
  shown is one of `src/early_exit/cli.py`'s argparse options, and every `--configfile`
  or `--profile` given exists;
- shell blocks marked runnable (fenced as ```bash runnable, or preceded by
  `<!-- runnable -->`) run in a temporary copy of the repository and exit 0; only cheap,
  offline commands may be marked (dry runs, `--help`);
- README.md stays a front page: short, and linking to every docs page.

A page that tells you to create a file names it in `<!-- new-files: path ... -->`; those
paths (and their modules) are exempt. Each failure names the file, the line and the
broken reference.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = SRC / "early_exit"
DOCS = ROOT / "docs"
README_MAX_LINES = 200

# Top-level folders of the repository whose paths the docs may name (data/ and results/
# hold generated files; their README.md files are the only tracked ones).
REPO_DIRS = {"config", "docs", "notebooks", "profiles", "scripts", "slides", "src", "tests"}
REPO_DIRS |= {"workflow"}
ROOT_FILES = {
    "Snakefile",
    "Makefile",
    "pyproject.toml",
    "requirements.txt",
    "requirements-nodeps.txt",
    "constraints.txt",
    "environment.yml",
}
SHELL = {"bash", "sh", "shell", "console"}
RUNNABLE_MARK = "<!-- runnable -->"
NEW_FILES = re.compile(r"<!--\s*new-files:(.*?)-->")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
MODULE = re.compile(r"(?<![\w.])early_exit(?:\.[A-Za-z_]\w*)+")
PLACEHOLDER = re.compile(r"\{[^}]*\}|<[^>]*>|\*")
# A runnable block may only hold commands like these: cheap, offline, writing nothing
# outside the temporary copy.
CHEAP = [
    re.compile(r"^\.venv/bin/snakemake\b.*\s(-n|--dry-run|--list-rules|--lint)\b"),
    re.compile(r"^\.venv/bin/early-exit\b.*\s(-h|--help)$"),
    re.compile(r"^\.venv/bin/python -m early_exit\.cli\b.*\s(-h|--help)$"),
    re.compile(r"^\.venv/bin/python scripts/\S+\.py (-h|--help)$"),
]


@dataclass
class Block:
    """A fenced code block: its info string, first line number and (line, text) pairs."""

    info: str
    line: int
    lines: list[tuple[int, str]] = field(default_factory=list)
    marked: bool = False

    @property
    def language(self) -> str:
        return self.info.split()[0].lower() if self.info.split() else ""

    @property
    def runnable(self) -> bool:
        return self.marked or "runnable" in self.info.split()[1:]


@dataclass
class Page:
    """One markdown page, split into prose lines and fenced blocks."""

    path: Path
    text: str
    prose: list[tuple[int, str]] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    new_files: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        try:
            return str(self.path.relative_to(ROOT))
        except ValueError:
            return str(self.path)

    def where(self, line: int) -> str:
        return f"{self.name}:{line}"


def parse_page(path: Path, text: str | None = None) -> Page:
    text = path.read_text(encoding="utf-8") if text is None else text
    page = Page(path, text)
    block: Block | None = None
    fence = ""
    last_prose = ""
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if block is None and match:
            fence = match.group(1)
            block = Block(match.group(2).strip(), number, marked=last_prose == RUNNABLE_MARK)
        elif block is not None and match and match.group(1).startswith(fence[0] * len(fence)):
            if not match.group(2).strip():
                page.blocks.append(block)
                block = None
                last_prose = ""
            else:
                block.lines.append((number, line))
        elif block is not None:
            block.lines.append((number, line))
        else:
            page.prose.append((number, line))
            if line.strip():
                last_prose = line.strip()
    if block is not None:
        page.blocks.append(block)  # an unclosed fence still counts as code
    for found in NEW_FILES.findall(text):
        page.new_files.update(found.split())
    return page


def doc_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


@cache
def pages() -> tuple[Page, ...]:
    return tuple(parse_page(path) for path in doc_pages())


def inline_spans(page: Page) -> list[tuple[int, str]]:
    return [(n, span) for n, line in page.prose for span in INLINE_CODE.findall(line)]


def shell_lines(page: Page) -> list[tuple[int, str]]:
    """The commands of a page's shell blocks, comments and prompts removed."""
    found = []
    for block in page.blocks:
        if block.language not in SHELL:
            continue
        for number, line in block.lines:
            command = re.sub(r"(^|\s)#.*$", "", line).strip()
            command = command[2:] if command.startswith("$ ") else command
            if command:
                found.append((number, command))
    return found


def split_words(command: str) -> list[str]:
    try:
        return shlex.split(command, comments=True)
    except ValueError:
        return command.split()


# ---------------------------------------------------------------------------------------
# (a) paths and modules


@cache
def subpackages() -> frozenset[str]:
    return frozenset(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


def module_of_path(path: str) -> str | None:
    """`src/early_exit/recipes/mine.py` -> `early_exit.recipes.mine`."""
    if not path.startswith("src/") or not path.endswith(".py"):
        return None
    return ".".join(Path(path[len("src/") :]).with_suffix("").parts)


def path_problem(token: str, new_files: set[str]) -> str | None:
    """Why `token`, if it names a repository path, does not exist (None: fine or no path)."""
    token = token.strip("'\"").rstrip(".,;:)").lstrip("(")
    if not token or "://" in token or "..." in token or token.startswith(("/", "~", "$", "-")):
        return None
    if "/" not in token:
        if token in ROOT_FILES and not (ROOT / token).exists():
            return f"path {token!r} does not exist"
        return None
    first = token.split("/")[0]
    if first not in REPO_DIRS | subpackages():
        return None  # generated (results/, data/...), a hub id or another repository's file
    if first == "data" and not token.endswith(".py"):
        return None  # data/ is both the data package and the prepared-data folder
    if token.rstrip("/") in {p.rstrip("/") for p in new_files}:
        return None
    roots = (ROOT, PACKAGE)
    if PLACEHOLDER.search(token):
        pattern = PLACEHOLDER.sub("*", token).rstrip("/")
        if any(next(iter(root.glob(pattern)), None) for root in roots):
            return None
        return f"path {token!r} matches no file"
    if any((root / token).exists() for root in roots):
        return None
    return f"path {token!r} does not exist"


@cache
def defined_names(module_file: Path) -> dict[str, set[str] | None]:
    """Top-level names a module binds; a class maps to its members (None: not a class)."""
    tree = ast.parse(module_file.read_text(encoding="utf-8"), str(module_file))
    names: dict[str, set[str] | None] = {}

    def bind(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                members = set()
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                        members.add(item.name)
                    elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        members.add(item.target.id)
                    elif isinstance(item, ast.Assign):
                        members.update(t.id for t in item.targets if isinstance(t, ast.Name))
                names[node.name] = members
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names[node.name] = None
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            names[name.id] = None
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names[node.target.id] = None
            elif isinstance(node, ast.Import | ast.ImportFrom):
                for alias in node.names:
                    names[(alias.asname or alias.name).split(".")[0]] = None
            elif isinstance(node, ast.If | ast.Try):
                bind(node.body)
                bind(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    bind(handler.body)

    bind(tree.body)
    return names


def module_file(parts: list[str]) -> Path | None:
    base = SRC.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_problem(dotted: str, new_modules: set[str]) -> str | None:
    """Why `early_exit.x.y[.name[.member]]` does not resolve (None: it does)."""
    if any(dotted == m or dotted.startswith(m + ".") for m in new_modules):
        return None
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        found = module_file(parts[:end])
        if found is not None:
            break
    else:  # pragma: no cover - early_exit itself always resolves
        return f"module {dotted!r}: no package early_exit under src/"
    module, rest = ".".join(parts[:end]), parts[end:]
    if not rest:
        return None
    names = defined_names(found)
    if rest[0] not in names:
        return f"module {dotted!r}: {module} has no submodule or attribute {rest[0]!r}"
    members = names[rest[0]]
    if len(rest) > 1 and members is not None and rest[1] not in members:
        return f"module {dotted!r}: class {module}.{rest[0]} has no member {rest[1]!r}"
    return None


def reference_problems(page: Page) -> list[str]:
    """Paths in backticks and in shell blocks, and dotted modules anywhere on the page."""
    problems = []
    tokens = [(n, word) for n, span in inline_spans(page) for word in span.split()]
    tokens += [(n, word) for n, command in shell_lines(page) for word in split_words(command)]
    for number, token in tokens:
        problem = path_problem(token, page.new_files)
        if problem:
            problems.append(f"{page.where(number)}: {problem}")
    new_modules = {m for m in map(module_of_path, page.new_files) if m}
    lines = list(page.prose) + [line for block in page.blocks for line in block.lines]
    for number, line in sorted(lines):
        for dotted in MODULE.findall(line):
            problem = module_problem(dotted, new_modules)
            if problem:
                problems.append(f"{page.where(number)}: {problem}")
    return problems


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Page) -> set[str]:
    found: set[str] = set()
    for _, line in page.prose:
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            name, k = base, 0
            while name in found:
                k += 1
                name = f"{base}-{k}"
            found.add(name)
    return found


def link_problems(page: Page) -> list[str]:
    problems = []
    for number, line in page.prose:
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if re.match(r"^[a-z]+:", target):
                continue  # https:, mailto:
            file_part, _, anchor = target.partition("#")
            if not file_part:
                if anchor not in anchors(page):
                    problems.append(f"{page.where(number)}: link {target!r}: no heading #{anchor}")
                continue
            path = (page.path.parent / file_part).resolve()
            if not path.exists():
                problems.append(f"{page.where(number)}: link {target!r}: {file_part} not found")
            elif (
                anchor
                and path.suffix == ".md"
                and path.is_file()
                and anchor not in anchors(parse_page(path))
            ):
                problems.append(f"{page.where(number)}: link {target!r}: no heading #{anchor}")
    return problems


# ---------------------------------------------------------------------------------------
# (b) make targets, CLI options, config files


@cache
def make_targets() -> frozenset[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return frozenset(re.findall(r"^([A-Za-z0-9_][\w.-]*)\s*:(?!=)", text, re.MULTILINE))


@cache
def cli_options() -> dict[str, frozenset[str]]:
    """Subcommand -> its option strings, read from `early_exit/cli.py`'s argparse calls."""
    tree = ast.parse((PACKAGE / "cli.py").read_text(encoding="utf-8"))
    parsers: dict[str, str] = {}  # variable name -> subcommand
    options: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            call = node.value
            if getattr(call.func, "attr", None) == "add_parser" and call.args:
                command = call.args[0].value
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        parsers[target.id] = command
                options.setdefault(command, {"-h", "--help"})
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            owner = getattr(node.func.value, "id", None)
            if owner in parsers:
                flags = [a.value for a in node.args if isinstance(a, ast.Constant)]
                options[parsers[owner]].update(f for f in flags if str(f).startswith("-"))
                if any(isinstance(a, ast.JoinedStr) for a in node.args):
                    # `f"--{option}"`: the options the policies declare (patience's tau)
                    options[parsers[owner]].update(f"--{o}" for o in policy_options())
    return {command: frozenset(flags) for command, flags in options.items()}


@cache
def policy_options() -> frozenset[str]:
    """The `options=(...)` every `Policy(...)` of the exit policies declares."""
    found = set()
    for path in sorted((PACKAGE / "exits").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Policy":
                for keyword in node.keywords:
                    if keyword.arg == "options" and isinstance(keyword.value, ast.Tuple):
                        for item in keyword.value.elts:
                            if isinstance(item, ast.Constant):
                                found |= {item.value, item.value.replace("_", "-")}
    return frozenset(found)


def command_problems(number: int, words: list[str], page: Page) -> list[str]:
    """make targets, early-exit options and --configfile/--profile paths of one command."""
    problems = []
    where = page.where(number)
    stops = {"|", "||", "&&", ";", "<", ">", "2>", ">>"}
    for i, word in enumerate(words):
        name = word.rsplit("/", 1)[-1]
        if name == "make":
            for target in words[i + 1 :]:
                if target in stops or target.startswith(("<", ">", "#")):
                    break
                named = not target.startswith("-") and "=" not in target
                if named and target not in make_targets():
                    problems.append(f"{where}: make target {target!r} is not in the Makefile")
        if name == "early-exit" and i + 1 < len(words):
            command = words[i + 1]
            if command.startswith("-"):
                continue
            if command not in cli_options():
                problems.append(f"{where}: early-exit has no subcommand {command!r}")
                continue
            for option in words[i + 2 :]:
                if option in stops or option.startswith(("<", ">")):
                    break
                flag = option.split("=", 1)[0]
                if flag.startswith("-") and flag not in cli_options()[command]:
                    problems.append(
                        f"{where}: early-exit {command} has no option {flag!r} "
                        f"(src/early_exit/cli.py)"
                    )
        for option, kind in (("--configfile", "file"), ("--profile", "dir")):
            value = None
            if word == option and i + 1 < len(words):
                value = words[i + 1]
            elif word.startswith(option + "="):
                value = word.split("=", 1)[1]
            if value and not PLACEHOLDER.search(value) and "..." not in value:
                path = ROOT / value
                if not (path.is_file() if kind == "file" else path.is_dir()):
                    problems.append(f"{where}: {option} {value!r}: no such {kind}")
    return problems


def cli_page(page: Page) -> bool:
    return page.path.name == "engine-and-cli.md"


def usage_problems(page: Page) -> list[str]:
    problems = []
    for number, command in shell_lines(page):
        problems += command_problems(number, split_words(command), page)
    for number, span in inline_spans(page):
        words = span.split()
        if not words:
            continue
        if "make" in words[:2] or "early-exit" in span or "--configfile" in span:
            problems += command_problems(number, words, page)
        elif cli_page(page) and words[0].startswith("--"):
            flag = words[0].split("=", 1)[0]
            if flag not in cli_options().get("predict", ()):
                problems.append(
                    f"{page.where(number)}: early-exit predict has no option {flag!r} "
                    f"(src/early_exit/cli.py)"
                )
    return problems


# ---------------------------------------------------------------------------------------
# the tests


@pytest.mark.parametrize("path", doc_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_paths_and_modules_exist(path: Path) -> None:
    page = next(p for p in pages() if p.path == path)
    problems = reference_problems(page)
    assert not problems, "broken references:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", doc_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(path: Path) -> None:
    page = next(p for p in pages() if p.path == path)
    problems = link_problems(page)
    assert not problems, "broken links:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", doc_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_commands_name_what_exists(path: Path) -> None:
    page = next(p for p in pages() if p.path == path)
    problems = usage_problems(page)
    assert not problems, "commands that would fail:\n" + "\n".join(problems)


def linked_pages(page: Page) -> set[Path]:
    """The files a page links to, resolved."""
    targets = [t for _, line in page.prose for t in LINK.findall(line)]
    return {(page.path.parent / t.partition("#")[0]).resolve() for t in targets}


def test_readme_is_a_front_page() -> None:
    page = parse_page(ROOT / "README.md")
    lines = page.text.count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md: {lines} lines; keep the front page under {README_MAX_LINES} and move "
        "details into docs/"
    )
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked_pages(page)]
    assert not missing, f"README.md: no link to docs page(s) {', '.join(missing)}"


def test_docs_index_lists_every_page() -> None:
    index = parse_page(DOCS / "README.md")
    pages_here = [p for p in sorted(DOCS.glob("*.md")) if p.name != "README.md"]
    missing = [p.name for p in pages_here if p.resolve() not in linked_pages(index)]
    assert not missing, f"docs/README.md: no link to {', '.join(missing)}"


# ---------------------------------------------------------------------------------------
# (c) runnable blocks


def runnable_blocks() -> list[tuple[Page, Block]]:
    return [(page, block) for page in pages() for block in page.blocks if block.runnable]


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree's tracked and unignored files, with the real .venv linked in."""
    copy = tmp_path_factory.mktemp("repo")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    return copy


def stale_entry_point(command: str) -> str | None:
    """Why `.venv/bin/early-exit` cannot run the CLI pyproject.toml names (None: it can)."""
    if not command.startswith(".venv/bin/early-exit"):
        return None
    script = ROOT / ".venv" / "bin" / "early-exit"
    wanted = re.search(r'^early-exit\s*=\s*"([\w.]+):', (ROOT / "pyproject.toml").read_text(), re.M)
    if not script.is_file() or not wanted:
        return f"{script} is missing: run the set-up (scripts/setup.sh)"
    if f"from {wanted.group(1)} import" not in script.read_text():
        return (
            f"{script} was installed for an older entry point than pyproject.toml's "
            f"{wanted.group(1)}; reinstall the package (pip install -e .)"
        )
    return None


@pytest.mark.parametrize(
    "page, block",
    runnable_blocks(),
    ids=[page.where(block.line) for page, block in runnable_blocks()],
)
def test_runnable_blocks_run(page: Page, block: Block, repo_copy: Path) -> None:
    commands = [(n, line.strip()) for n, line in block.lines if line.strip()]
    commands = [(n, c) for n, c in commands if not c.startswith("#")]
    assert commands, f"{page.where(block.line)}: a runnable block with no command"
    for number, command in commands:
        command = re.sub(r"\s+#.*$", "", command)
        assert any(p.search(command) for p in CHEAP), (
            f"{page.where(number)}: {command!r} is marked runnable but is not a cheap, "
            "offline command (a dry run or --help)"
        )
        reason = stale_entry_point(command)
        if reason:
            pytest.skip(f"{page.where(number)}: {reason}")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        try:
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=repo_copy,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{page.where(number)}: {command!r} took over 180 s")
        assert done.returncode == 0, (
            f"{page.where(number)}: {command!r} exited {done.returncode}:\n"
            f"{(done.stdout + done.stderr)[-2000:]}"
        )


# ---------------------------------------------------------------------------------------
# the checker catches what it should


BROKEN = """\
# Title

See `src/early_exit/nowhere.py`, `config/missing.yaml`, `training/finetune.py` and
`early_exit.exits.nothing`, `early_exit.support.layout.no_such_function` and
`early_exit.modeling.model.MultiExitModel.no_member`; fine: `early_exit.support.layout.run_dir`,
`results/{task}/x.tsv`, `fnlp/elasticbert-base`, `notebooks/*.py`, `src/early_exit/recipes/mine.py`
and `early_exit.recipes.mine.stages`.
[a link](nowhere.md), [an anchor](#title), [a bad anchor](#nope).

<!-- new-files: src/early_exit/recipes/mine.py -->

```bash
make run
make nothing
.venv/bin/early-exit predict results/t/m/seed1 --policy entropy --no-such-flag 2 < in.txt
.venv/bin/snakemake -n --configfile config/absent.yaml --profile profiles/local
```
"""


def test_the_checker_names_each_broken_reference(tmp_path: Path) -> None:
    page = parse_page(tmp_path / "page.md", BROKEN)
    problems = "\n".join(reference_problems(page) + link_problems(page) + usage_problems(page))
    expected = [
        "page.md:3: path 'src/early_exit/nowhere.py' does not exist",
        "page.md:3: path 'config/missing.yaml' does not exist",
        "page.md:3: path 'training/finetune.py' does not exist",
        "page.md:4: module 'early_exit.exits.nothing'",
        "page.md:4: module 'early_exit.support.layout.no_such_function'",
        "page.md:5: module 'early_exit.modeling.model.MultiExitModel.no_member'",
        "page.md:8: link 'nowhere.md'",
        "page.md:8: link '#nope'",
        "page.md:14: make target 'nothing'",
        "page.md:15: early-exit predict has no option '--no-such-flag'",
        "page.md:16: path 'config/absent.yaml' does not exist",
        "page.md:16: --configfile 'config/absent.yaml': no such file",
    ]
    for message in expected:
        assert message in problems, f"not reported: {message}\n{problems}"
    assert len(problems.splitlines()) == len(expected), problems


def test_runnable_marks_are_recognised(tmp_path: Path) -> None:
    text = "<!-- runnable -->\n\n```bash\n.venv/bin/snakemake -n\n```\n\n```bash runnable\nx\n```\n"
    text += "```bash\nmake run\n```\n"
    blocks = parse_page(tmp_path / "p.md", text).blocks
    assert [b.runnable for b in blocks] == [True, True, False]
