"""The course as a website: it builds offline, and every page is whole when opened from disk.

`scripts/build_site.py` builds the site (with no network where the machine allows it: `unshare
-rn` gives the build a network namespace of its own, with no way out). Then a headless Chromium
opens every page from disk (file://) with every request to another host refused, and checks: no
console error, no request to another host, every file the page loads exists, every image loaded,
math typeset by the local MathJax, every internal link (and #anchor) resolves, and every "Show
solution" toggle opens to show the code. A small site built from one made-up notebook with a
solution, math and a figure shows the toggle really works, and pages broken on purpose show the
check catches each kind of breakage. Screenshots land in test-artifacts/site/.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import browser_support
import pytest
from browser_support import chromium, is_local, unavailable

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = browser_support.ARTIFACTS / "site"
MATHJAX = Path("/usr/share/javascript/mathjax")  # Debian's libjs-mathjax, as scripts/build_site.py uses


def network_free_prefix() -> list[str]:
    """`unshare -rn` where it works: the build then has no network at all, which proves it needs none."""
    if shutil.which("unshare"):
        probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
        if probe.returncode == 0:
            return ["unshare", "-rn"]
    return []


def build_site(out: Path, notebooks: Path | None = None) -> tuple[str, float, bool]:
    if not (MATHJAX / "MathJax.js").is_file():
        unavailable(f"no MathJax in {MATHJAX} (sudo apt-get install libjs-mathjax)")
    prefix = network_free_prefix()
    command = prefix + [sys.executable, str(ROOT / "scripts" / "build_site.py"), "--out", str(out)]
    if notebooks is not None:
        command += ["--notebooks", str(notebooks)]
    start = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - start
    assert done.returncode == 0, f"the site did not build:\n{done.stdout}\n{done.stderr}"
    return done.stderr, seconds, bool(prefix)


# module scope: Playwright's sync API allows one instance at a time, so this one must be closed
# before the other browser test module starts its own
@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def course_site(tmp_path_factory, browser):
    """The real site, built from the stored notebooks (the browser first: no build without a check)."""
    out = tmp_path_factory.mktemp("site") / "_site"
    warnings, seconds, offline = build_site(out)
    return out, warnings, seconds, offline


def solution_notebook() -> dict:
    """A made-up lesson with math, a figure, an exercise stub and its folded solution."""
    pixel = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9a"
             "wAAAABJRU5ErkJggg==")

    def code(source, count, outputs=(), **metadata):
        return {"cell_type": "code", "execution_count": count, "metadata": metadata,
                "outputs": list(outputs), "source": source}

    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                         "language_info": {"name": "python"}},
            "cells": [
                {"cell_type": "markdown", "metadata": {}, "source": "# 01 · A lesson\n\nThe softmax "
                 "$p_i = e^{z_i} / \\sum_j e^{z_j}$ sums to one:\n\n$$\\sum_i p_i = 1$$"},
                code("answer = None", 1),
                code("print(40 + 2)", 2, [{"output_type": "stream", "name": "stdout", "text": "42\n"}]),
                code("answer = 42  # the secret solution\nassert answer == 42", 3,
                     [{"output_type": "stream", "name": "stdout", "text": "solved: the answer\n"}],
                     tags=["solution"], jupyter={"source_hidden": True}),
                code("plt.plot([0, 1])", 4, [{"output_type": "display_data", "metadata": {},
                                               "data": {"image/png": pixel, "text/plain": "<Figure>"}}]),
                {"cell_type": "markdown", "metadata": {},
                 "source": "## Summary\n\nSee [the top](#a-lesson)."},
            ]}


@pytest.fixture(scope="module")
def small_site(tmp_path_factory, browser):
    folder = tmp_path_factory.mktemp("small-notebooks")
    (folder / "01_a_lesson.ipynb").write_text(json.dumps(solution_notebook()), encoding="utf-8")
    out = tmp_path_factory.mktemp("small-site") / "_site"
    build_site(out, folder)
    return out


def pages_of(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.parts)


class LinkTargets:
    """The ids of each page, read once, to check links with a #fragment."""

    def __init__(self):
        self.ids: dict[Path, set[str]] = {}

    def has(self, path: Path, fragment: str) -> bool:
        if path not in self.ids:
            text = path.read_text(encoding="utf-8", errors="replace")
            self.ids[path] = set(re.findall(r'\sid="([^"]+)"', text))
        return fragment in self.ids[path]


def check_page(browser, path: Path, targets: LinkTargets, screenshot: Path | None = None) -> list[str]:
    """Open a page from disk with the network refused; return what is broken on it."""
    found: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        context.route(lambda url: not is_local(url), lambda route: route.abort())
        page = context.new_page()
        def console(message):
            if message.type == "error":
                found.append(f"console {message.type}: {message.text}")

        def request(request):
            if not is_local(request.url):
                found.append(f"request to another host: {request.url}")

        def failed(request):
            if is_local(request.url):
                found.append(f"failed to load {request.url}")

        page.on("console", console)
        page.on("pageerror", lambda error: found.append(f"script error: {error}"))
        page.on("request", request)
        page.on("requestfailed", failed)
        page.goto(path.as_uri(), wait_until="load")
        if page.evaluate("() => typeof MathJax !== 'undefined'"):
            finished = page.evaluate("""() => new Promise(done => {
                setTimeout(() => done(false), 30000);
                const wait = () => MathJax.Hub && MathJax.isReady
                    ? MathJax.Hub.Queue(() => done(true)) : setTimeout(wait, 100);
                wait();
            })""")
            if not finished:
                found.append("MathJax did not finish within 30 s")
            math = page.evaluate("""() => ({
                spans: document.querySelectorAll('.math').length,
                typeset: document.querySelectorAll('.math .MathJax_CHTML').length,
                errors: document.querySelectorAll('.MathJax_Error, .mjx-merror').length})""")
            if math["typeset"] < math["spans"]:
                found.append(f"math not typeset: {math['typeset']} of {math['spans']} formulas")
            if math["errors"]:
                found.append(f"{math['errors']} formulas show a MathJax error")
        elif page.locator(".math").count():
            found.append("the page has math but loads no MathJax")
        images = page.evaluate("""async () => {
            const images = [...document.images];
            images.forEach(i => { i.loading = 'eager'; });
            await Promise.all(images.map(i => i.decode().catch(() => null)));
            return images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
        }""")
        found += [f"image not loaded: {src}" for src in images]
        links = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
        for link in sorted(set(links)):
            parsed = urllib.parse.urlsplit(link)
            if parsed.scheme != "file":
                continue
            target = Path(urllib.parse.unquote(parsed.path))
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                found.append(f"broken link: {link}")
            elif parsed.fragment and target.suffix == ".html" and not targets.has(target, parsed.fragment):
                found.append(f"broken anchor: {link}")
        found += check_toggles(page)
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot))
    finally:
        context.close()
    return found


def check_toggles(page) -> list[str]:
    """Each solution is folded, and its toggle opens it to show the code."""
    found = []
    toggles = page.locator(".course-solution details")
    for index in range(toggles.count()):
        details = toggles.nth(index)
        code = details.locator("pre").first
        if details.evaluate("d => d.open") or code.is_visible():
            found.append(f"solution {index + 1} is not folded")
            continue
        summary = details.locator("summary")
        if "Show solution" not in summary.inner_text():
            found.append(f"solution {index + 1}'s toggle does not say 'Show solution'")
        summary.click()
        if not (details.evaluate("d => d.open") and code.is_visible() and code.inner_text().strip()):
            found.append(f"solution {index + 1} did not open to show its code")
    return found


def test_the_site_builds_offline_without_warnings(course_site):
    out, warnings, seconds, offline = course_site
    print(f"built in {seconds:.1f} s, {'with no network' if offline else 'network not cut off (no unshare)'}")
    assert not re.search(r"WARNING|ERROR", warnings), warnings
    assert [p.name for p in out.parent.iterdir()] == ["_site"], "the build wrote beside its output folder"
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for path in notebooks:
        assert (out / "notebooks" / f"{path.stem}.html").is_file(), f"no page for {path.name}"
    home = (out / "index.html").read_text(encoding="utf-8")
    for path in notebooks:
        assert f'href="notebooks/{path.stem}.html"' in home, f"the course map does not link {path.name}"
    for page in ("results.html", "usage.html", "api.html"):
        assert (out / page).is_file()
    api = (out / "api.html").read_text(encoding="utf-8")
    import fashion_course as fc

    missing = [name for name in fc.__all__ if f'id="fashion_course.{name}"' not in api
               and f'id="module-fashion_course.{name}"' not in api]
    assert not missing, f"the API reference misses {missing}"


@pytest.fixture(scope="module")
def artifacts(request):
    return browser_support.screenshots(request.config, "website screenshots", ARTIFACTS)


def test_every_page_is_whole_offline(course_site, browser, artifacts):
    out = course_site[0]
    targets = LinkTargets()
    broken = {}
    pages = pages_of(out)
    for path in pages:
        name = path.relative_to(out).as_posix()
        screenshot = ARTIFACTS / (name.replace("/", "__") + ".png")
        found = check_page(browser, path, targets, screenshot)
        artifacts.add(screenshot)
        if found:
            broken[name] = found
    assert len(pages) >= 6
    assert not broken, json.dumps(broken, indent=1)


def test_a_solution_is_folded_behind_its_toggle(small_site, browser, artifacts):
    page_path = small_site / "notebooks" / "01_a_lesson.html"
    html = page_path.read_text(encoding="utf-8")
    assert html.count("Show solution") == 1 and "the secret solution" in html
    assert check_page(browser, page_path, LinkTargets(), ARTIFACTS / "small__solution.png") == []
    artifacts.add(ARTIFACTS / "small__solution.png")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(page_path.as_uri())
        secret = page.get_by_text("the secret solution")
        assert not secret.is_visible(), "the solution's code shows before the toggle is opened"
        assert page.get_by_text("solved: the answer").is_visible(), "the solution's output is hidden"
        page.get_by_text("Show solution").click()
        assert secret.is_visible()
        assert page.locator(".math .MathJax_CHTML").count() >= 2
    finally:
        context.close()


def test_the_page_check_catches_what_breaks_a_page(small_site, browser, tmp_path):
    broken = tmp_path / "site"
    shutil.copytree(small_site, broken)
    page_path = broken / "notebooks" / "01_a_lesson.html"
    html = page_path.read_text(encoding="utf-8")
    html = html.replace("</body>", '<a href="missing.html">gone</a><a href="#no-such-anchor">here</a>'
                        '<img src="missing.png"><script src="https://cdn.example.org/x.js"></script>'
                        '<script>undefinedFunction()</script></body>')
    html = html.replace('<details class="', '<details open class="', 1)
    page_path.write_text(html, encoding="utf-8")
    for png in (broken / "_images").glob("*.png"):
        png.unlink()
    shutil.rmtree(broken / "_static" / "mathjax" / "jax" / "output")
    found = "\n".join(check_page(browser, page_path, LinkTargets()))
    for expected in ("broken link: file://", "missing.html", "broken anchor:", "#no-such-anchor",
                     "image not loaded: missing.png", "image not loaded: ../_images/",
                     "request to another host: https://cdn.example.org/x.js",
                     "script error:", "undefinedFunction", "solution 1 is not folded",
                     "failed to load file://", "math not typeset"):
        assert expected in found, f"{expected!r} not reported in:\n{found}"


def test_links_to_repository_files_become_downloads_or_text(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_site
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    readme = ("[05](notebooks/05_optimization_loop.ipynb), [`results`](benchmarks/results-cpu.json), "
              "[gone](benchmarks/no-such-file.md), [docs](https://pytorch.org/docs), [top](#top), "
              "![a coat](examples/coat_test00006.png)")
    assert build_site.rewrite_links(readme, tmp_path) == (
        "[05](notebooks/05_optimization_loop.ipynb), "
        "{download}`results <files/benchmarks/results-cpu.json>`, gone (`benchmarks/no-such-file.md`), "
        "[docs](https://pytorch.org/docs), [top](#top), "
        "![a coat](examples/coat_test00006.png)")
    assert (tmp_path / "files" / "benchmarks" / "results-cpu.json").is_file()
    assert (tmp_path / "examples" / "coat_test00006.png").is_file()
    in_notebook = "[the package](../fashion_course/data.py), [next](06_save_load_onnx.ipynb)"
    assert build_site.rewrite_links(in_notebook, tmp_path, "notebooks") == (
        "{download}`the package <../files/fashion_course/data.py>`, [next](06_save_load_onnx.ipynb)")


def test_the_course_map_lists_the_notebooks_present(small_site):
    """Titles come from each notebook's first heading; without a README row, its first paragraph."""
    home = (small_site / "index.html").read_text(encoding="utf-8")
    rows = re.findall(r'<a class="reference internal" href="notebooks/([^"]+)\.html">.*?</a>', home)
    assert set(rows) == {"01_a_lesson"}
    assert "01 · A lesson" in home and "The softmax" in home
    assert "01 · Tensors" not in home
