"""Root pytest configuration shared by the unit tests and the strict nbval run of notebooks/.

Strict nbval compares every output of a cell, stderr included. Warnings (stderr) legitimately
differ between a CPU and a CUDA run, or between library versions, while the lesson does not; so
stderr streams are left out of the comparison. stdout, results and errors are still compared.
"""

try:
    from nbval.plugin import IPyNbCell
except ImportError:  # nbval not installed: only the unit tests run
    IPyNbCell = None


def _without_stderr(outputs):
    return [o for o in outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]


if IPyNbCell is not None and not getattr(IPyNbCell, "_fashion_course_patched", False):
    _compare_outputs = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        return _compare_outputs(self, _without_stderr(test), _without_stderr(ref), skip_compare)

    IPyNbCell.compare_outputs = compare_outputs
    IPyNbCell._fashion_course_patched = True
