"""Sphinx configuration of the course's website (built by scripts/build_site.py, never by hand).

The notebooks are rendered with their stored outputs (myst-nb, nothing is executed), in the furo
theme. The site works opened from disk with no network: math is typeset by a local copy of MathJax 2
(Debian's libjs-mathjax, copied into _static/mathjax by the build script), and no page refers to
another host for a script, a font or a style sheet.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "fashion_course"
author = "the fashion_course authors"
copyright = "the fashion_course authors"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "course_site",
]

# the stored outputs are the lesson: render them as they are, never re-run a notebook
nb_execution_mode = "off"
# no require.js or widget scripts from a CDN (the notebooks hold no widget state anyway)
nb_ipywidgets_js = {}
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
# MathJax 2 is configured below; myst's rewrite of a MathJax 3/4 configuration does not apply
myst_update_mathjax = False

mathjax_path = "mathjax/MathJax.js?config=TeX-AMS_CHTML"
mathjax2_config = {
    "tex2jax": {
        # Sphinx writes inline math as \( \) and display math as \[ \]; a "$" in a cell output
        # (a price, a shell prompt) must stay text
        "inlineMath": [["\\(", "\\)"]],
        "displayMath": [["\\[", "\\]"]],
        "processEscapes": False,
        "processEnvironments": False,
    },
    # only CommonHTML is shipped with the site: a learner cannot switch to a renderer that is absent
    "MathMenu": {"showRenderer": False},
    "CommonHTML": {"linebreaks": {"automatic": True}},
}

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True
default_role = "literal"

html_theme = "furo"
html_title = "fashion_course: PyTorch from tensors to a deployed classifier"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
exclude_patterns = ["_build", "**.ipynb_checkpoints", "files"]
suppress_warnings = ["myst.header"]
