"""Build the course's website from the stored notebooks, without running them.

    python scripts/build_site.py              # writes _site/ (open _site/index.html)
    python scripts/build_site.py --out DIR    # somewhere else

The pages: the course map as the home page (one row per notebook in notebooks/, titled by its
first heading), one page per notebook with its stored outputs and figures (exercise solutions
behind a "Show solution" toggle), the README's measured results, its data and command-line
sections, and an API reference generated from the docstrings of `fashion_course`'s public names.

Sphinx, myst-nb and the furo theme build it with no network; the site works opened from disk with
no network too: MathJax comes from Debian's libjs-mathjax (`sudo apt-get install libjs-mathjax`),
copied into the site.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
MATHJAX = Path("/usr/share/javascript/mathjax")
# what the site's MathJax configuration (TeX input, CommonHTML output, its menu) loads; the SVG and
# HTML-CSS renderers (17 MB) are left out, and the site's MathJax menu does not offer them
MATHJAX_PARTS = ["MathJax.js", "config/TeX-AMS_CHTML.js", "config/local", "extensions", "localization",
                 "jax/input/TeX", "jax/element", "jax/output/CommonHTML", "jax/output/PreviewHTML",
                 "fonts/HTML-CSS/TeX/woff"]


class SiteError(Exception):
    """Something the site needs is missing; the message says what to install or fix."""


def readme_sections(text: str) -> dict[str, str]:
    """The README split at its level-2 headings: {heading: body}; "" holds what comes first."""
    sections, current, lines = {}, "", []
    for line in text.splitlines():
        match = re.match(r"## (.+)", line)
        if match:
            sections[current] = "\n".join(lines).strip() + "\n"
            current, lines = match.group(1).strip(), []
        else:
            lines.append(line)
    sections[current] = "\n".join(lines).strip() + "\n"
    return sections


def course_map_rows(section: str) -> dict[str, str]:
    """From the README's course map: notebook name -> what it teaches."""
    rows = {}
    for match in re.finditer(r"^\|\s*\[(\d\d_\w+)\]\([^)]*\)\s*\|\s*(.*?)\s*\|", section, re.M):
        rows[match.group(1)] = match.group(2)
    return rows


def notebook_title(path: Path) -> str:
    """A notebook's title: its first markdown heading, without the #s."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return path.stem


def notebook_summary(path: Path) -> str:
    """The first paragraph under the title: what a notebook is about when the README has no row."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            paragraphs = [p for p in "".join(cell["source"]).split("\n\n") if p and not p.startswith("#")]
            if paragraphs:
                return " ".join(paragraphs[0].split())
    return ""


def rewrite_links(markdown: str, staging: Path, page: str = "") -> str:
    """Links of a README section or a notebook, made to work on the site.

    `page` is the folder of the page, relative to the repository (and to the site's sources): ""
    for a README section, "notebooks" for a notebook. A link to a notebook stays a link to its
    page; a link to another file of the repository becomes a download of a copy of it, and an image
    is copied next to where the page expects it; a link to anything else becomes its name as text.
    """
    up = "../" * len(Path(page).parts)

    def inside(target: str) -> Path | None:
        source = (ROOT / page / target).resolve()
        return source if source.is_file() and ROOT in source.parents else None

    def link(match: re.Match) -> str:
        text, target = match.group(1), match.group(2)
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            return match.group(0)
        path = target.partition("#")[0]
        source = inside(path)
        notebook = source is not None and source.parent == ROOT / "notebooks" and source.suffix == ".ipynb"
        if notebook and re.fullmatch(r"\d\d_\w+", source.stem):
            return match.group(0)
        if source is None:
            return f"{text} (`{path}`)" if text.strip("`") != path else f"`{path}`"
        relative = source.relative_to(ROOT).as_posix()
        copy = staging / "files" / relative
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, copy)
        return f"{{download}}`{text.replace('`', '')} <{up}files/{relative}>`"

    def image(match: re.Match) -> str:
        source = inside(match.group(2))
        if source is not None:
            copy = staging / source.relative_to(ROOT)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)
        return match.group(0)

    markdown = re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)", image, markdown)
    return re.sub(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)", link, markdown)


def stage_notebook(path: Path, staging: Path) -> None:
    """A notebook's copy for the site, its links to other files of the repository made to work."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"])
            cell["source"] = rewrite_links(source, staging, "notebooks")
    (staging / "notebooks" / path.name).write_text(json.dumps(nb), encoding="utf-8")


def home_page(sections: dict[str, str], notebooks: list[Path]) -> str:
    rows = course_map_rows(sections.get("The course", ""))
    lines = ["# fashion_course", "", sections[""].split("\n", 1)[1].strip() if sections[""].startswith("#")
             else sections[""].strip(), "", "## The course", "",
             "Each page is a notebook as stored in the repository, with the outputs of its last clean",
             "run; nothing was re-run to build this site. Exercise solutions are folded: open one with",
             "its \"Show solution\" toggle once you have tried.", "",
             "| notebook | what it teaches |", "|---|---|"]
    for path in notebooks:
        what = rows.get(path.stem) or notebook_summary(path)
        lines.append(f"| [{notebook_title(path)}](notebooks/{path.name}) | {what} |")
    lines += ["", "## Run it yourself", "", sections.get("Two commands", "").strip(), "",
              "## Also on this site", "",
              "- [Measured results](results.md): accuracy, training time and inference latency, with the "
              "command that measured each.",
              "- [Data and command line](usage.md): where the data comes from, offline, and the "
              "`python -m fashion_course` commands.",
              "- [API reference](api.rst): every public name of `fashion_course`, from its docstring.", "",
              "```{toctree}", ":hidden:", ":caption: The course", ""]
    lines += [f"notebooks/{path.stem}" for path in notebooks]
    lines += ["```", "", "```{toctree}", ":hidden:", ":caption: Reference", "", "results", "usage", "api",
              "```", ""]
    return "\n".join(lines)


def home_module(name: str, obj, package) -> str:
    """The submodule that defines a public name (where autodoc groups it)."""
    module = getattr(obj, "__module__", None)
    if inspect.ismodule(obj):
        return obj.__name__
    if module and module.startswith(package.__name__ + ".") and (inspect.isclass(obj) or callable(obj)):
        return module
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):  # __main__ would run the command line
            continue
        submodule = importlib.import_module(f"{package.__name__}.{info.name}")
        if vars(submodule).get(name) is obj:
            return submodule.__name__
    return package.__name__


def data_comment(name: str, module_name: str) -> list[str]:
    """The comment lines written right above a constant's assignment in its module."""
    module = importlib.import_module(module_name)
    source = inspect.getsource(module).splitlines()
    for index, line in enumerate(source):
        if re.match(rf"{re.escape(name)}\s*(:[^=]*)?=", line):
            comment = []
            for above in reversed(source[:index]):
                if not above.startswith("#"):
                    break
                comment.insert(0, above.lstrip("#").strip())
            return comment
    return []


def data_entry(name: str, obj, module_name: str) -> list[str]:
    """A constant: its value (or, for a dict, its keys) and the comment above its definition."""
    lines = [f".. py:data:: {name}"]
    if isinstance(obj, dict) and (len(repr(obj)) > 200 or "<" in repr(obj)):
        keys = ", ".join(f"``{key!r}``" for key in obj)
        text = [f"A ``dict`` with the keys {keys}."]
        lines.append("   :type: dict")
    else:
        text = []
        lines.append(f"   :value: {obj!r}")
    return lines + [""] + [f"   {line}" for line in data_comment(name, module_name) + text] + [""]


def api_page() -> str:
    """reStructuredText for every name in `fashion_course.__all__`, grouped by the defining module."""
    sys.path.insert(0, str(ROOT))
    package = importlib.import_module("fashion_course")
    groups: dict[str, list[tuple[str, object]]] = {}
    for name in package.__all__:
        obj = getattr(package, name)
        groups.setdefault(home_module(name, obj, package), []).append((name, obj))
    lines = ["API reference", "=============", "",
             "Everything ``fashion_course`` exports, as a notebook uses it: ``import fashion_course as fc``,",
             "then ``fc.<name>``. Grouped by the module that defines it; each docstring names the notebook",
             "that teaches the idea.", ""]
    for module_name in sorted(groups):
        lines += [module_name, "-" * len(module_name), ""]
        members = groups[module_name]
        if any(inspect.ismodule(obj) and obj.__name__ == module_name for _, obj in members):
            # a public subpackage (fc.exercises): its docstring and its own public names
            lines += [f".. automodule:: {module_name}", "   :members:", ""]
            members = [(name, obj) for name, obj in members if not inspect.ismodule(obj)]
        elif module_name != package.__name__:
            # the module's docstring as the group's introduction (`fc.predict` is also a function)
            lines += [f".. automodule:: {module_name}", "   :no-members:", "   :no-index:", ""]
        lines += [".. currentmodule:: fashion_course", ""]
        for name, obj in members:
            if inspect.isclass(obj):
                lines += [f".. autoclass:: fashion_course.{name}", ""]
            elif callable(obj):
                lines += [f".. autofunction:: fashion_course.{name}", ""]
            else:
                lines += data_entry(name, obj, module_name)
    return "\n".join(lines)


def copy_mathjax(static: Path) -> None:
    if not (MATHJAX / "MathJax.js").is_file():
        raise SiteError(f"no MathJax in {MATHJAX}: install it with `sudo apt-get install libjs-mathjax`")
    target = static / "mathjax"
    for part in MATHJAX_PARTS:
        source = MATHJAX / part
        if source.is_dir():
            shutil.copytree(source, target / part, symlinks=False, dirs_exist_ok=True)
        elif source.is_file():
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / part)
        else:
            raise SiteError(f"{source} is missing: `sudo apt-get install --reinstall libjs-mathjax`")


def stage(staging: Path, folder: Path) -> list[Path]:
    """Write the site's sources (pages and notebook copies) into `staging`; return the notebooks."""
    notebooks = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise SiteError(f"no notebooks (NN_name.ipynb) in {folder}")
    sections = readme_sections((ROOT / "README.md").read_text(encoding="utf-8"))
    (staging / "notebooks").mkdir(parents=True)
    for path in notebooks:
        stage_notebook(path, staging)
    pages = {
        "index.md": home_page(sections, notebooks),
        "results.md": "# Measured results\n\n" + sections.get("Measured results", ""),
        "usage.md": "# Data and command line\n\n## The data, offline first\n\n"
                    + sections.get("The data, offline first", "")
                    + "\n## The command line\n\n" + sections.get("The command line", ""),
    }
    for page, markdown in pages.items():
        (staging / page).write_text(rewrite_links(markdown, staging), encoding="utf-8")
    (staging / "api.rst").write_text(api_page(), encoding="utf-8")
    return notebooks


def build(out: Path, notebooks_folder: Path = ROOT / "notebooks") -> str:
    """Build the site into `out`; return Sphinx's warnings (empty when there are none)."""
    if out.exists():
        if not (out / ".buildinfo").exists() and any(out.iterdir()):
            raise SiteError(f"{out} exists and is not a site built by this script: choose another --out")
        shutil.rmtree(out)
    with tempfile.TemporaryDirectory(prefix="fashion-course-site-") as tmp:
        staging = Path(tmp) / "source"
        notebooks = stage(staging, notebooks_folder)
        # built in the temporary folder and moved: myst-nb writes its images next to the output
        html = Path(tmp) / "html"
        command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", "1", "-c", str(SITE),
                   "-d", str(Path(tmp) / "doctrees"), str(staging), str(html)]
        done = subprocess.run(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
        sys.stderr.write(done.stderr.replace(str(staging) + "/", ""))
        if done.returncode:
            raise SiteError(f"sphinx-build failed (exit {done.returncode})")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(html, out)
    copy_mathjax(out / "_static")
    pages = len(list(out.rglob("*.html")))
    print(f"built {pages} pages ({len(notebooks)} notebooks) in {out}; open {out / 'index.html'}")
    warnings = done.stderr.count("WARNING") + done.stderr.count("ERROR")
    if warnings:
        print(f"{warnings} warnings from Sphinx (above)")
    return done.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_site", help="output folder (default: _site)")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks",
                        help="the folder of NN_name.ipynb notebooks (default: notebooks)")
    parser.add_argument("--strict", action="store_true", help="exit with 2 when Sphinx warns")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        warnings = build(args.out.resolve(), args.notebooks.resolve())
    except SiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{time.perf_counter() - start:.1f} s")
    return 2 if args.strict and warnings else 0


if __name__ == "__main__":
    sys.exit(main())
