"""``gridcosim view``: one self-contained HTML page of a run (docs/view.md).

The page is the template ``view_page.html`` with its script ``view_page.js`` and the run's
data (:func:`gridcosim.outputs.view_data.page_data`) written into it: inline SVG, vanilla
JavaScript and embedded JSON, so that it opens from disk with no network access.
"""

from __future__ import annotations

import html
import json
import os
import re
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import Any

from gridcosim.outputs.view_data import page_data

#: Where the page's data, script and title go in the template.
_PLACEHOLDER = re.compile(r"__GRIDCOSIM_(TITLE|DATA|SCRIPT)__")
#: The id of the ``<script type="application/json">`` element that holds the data.
DATA_ELEMENT_ID = "gridcosim-data"
_DATA_RE = re.compile(r'<script type="application/json" id="gridcosim-data">(.*?)</script>',
                      re.DOTALL)


def _resource(name: str) -> str:
    return (files("gridcosim.outputs") / name).read_text(encoding="utf-8")


def data_json(data: dict[str, Any]) -> str:
    """The data as JSON that is safe inside a ``<script>`` element.

    ASCII only, and ``<`` written as its JSON escape (the same string once parsed), so that
    no text of the file (a scenario's description, say) can close the element.
    """
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")


def render_page(data: dict[str, Any]) -> str:
    """The HTML page of a run's data (see :func:`gridcosim.outputs.view_data.page_data`)."""
    meta = data["meta"]
    parts = {"TITLE": html.escape(f"gridcosim view: {meta.get('scenario') or meta['file']}"),
             "DATA": data_json(data), "SCRIPT": _resource("view_page.js")}
    return _PLACEHOLDER.sub(lambda m: parts[m[1]], _resource("view_page.html"))


def embedded_data(page: str) -> dict[str, Any]:
    """The data a page embeds (what :func:`render_page` wrote), e.g. to check a page.

    Raises:
        ValueError: If the page holds no data element.

    """
    match = _DATA_RE.search(page)
    if match is None:
        raise ValueError(f"no <script id={DATA_ELEMENT_ID!r}> element in the page")
    return json.loads(match[1])


def write_view(run: str | Path, out: str | Path) -> Path:
    """Write the page of the trajectory ``run`` to ``out``; see :func:`write_page`.

    Raises:
        OSError, KeyError, ValueError: If ``run`` is not a readable trajectory (OSError
            also when ``out`` cannot be written).

    """
    return write_page(page_data(run), out)


def write_page(data: dict[str, Any], out: str | Path) -> Path:
    """Write the page of a run's data to ``out``, replacing it atomically.

    The page goes to a temporary file beside ``out`` that is then renamed, so ``out`` is
    never left half written. Whether ``out`` may be replaced is the caller's decision.

    Returns:
        ``out`` as a path.

    Raises:
        OSError: If the page cannot be written.

    """
    out = Path(out)
    page = render_page(data)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
