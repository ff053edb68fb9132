"""Sphinx extension of the course's site: exercise solutions behind a "Show solution" toggle.

In the notebooks a solution is a code cell tagged `solution` whose input JupyterLab shows
collapsed (metadata `"jupyter": {"source_hidden": true}`). On the website the same cell's code
sits in a closed <details> element labelled "Show solution"; its output stays visible, as in
JupyterLab. Any other cell whose input is collapsed in JupyterLab gets a "Show code" toggle.
myst-nb draws these toggles for its `hide-input` tag; this transform marks the cells before myst-nb
wraps them.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform


class CollapsedCells(SphinxPostTransform):
    """Give solution cells (and other collapsed inputs) myst-nb's hide-input treatment."""

    # before myst-nb's HideInputCells (199), which wraps the marked inputs in <details>
    default_priority = 198
    formats = ("html",)

    def run(self, **kwargs) -> None:
        for node in self.document.findall(nodes.container):
            if node.get("nb_element") != "cell_code":
                continue
            metadata = node.get("cell_metadata") or {}
            tags = metadata.get("tags") or []
            hidden = (metadata.get("jupyter") or {}).get("source_hidden") is True
            if "solution" in tags:
                show, hide = "Show solution", "Hide solution"
            elif hidden:
                show, hide = "Show code", "Hide code"
            else:
                continue
            if node.get("hide_mode") in ("all", "input", "input+output"):
                continue  # the cell's own hide tags already fold its input
            node["hide_mode"] = "input+output" if node.get("hide_mode") == "output" else "input"
            node["prompt_show"], node["prompt_hide"] = show, hide
            node["classes"].append("course-solution" if "solution" in tags else "course-hidden-code")


def setup(app):
    app.add_post_transform(CollapsedCells)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
