"""``gridcosim view``: the page of a run, checked against its file and in a browser.

Two runs are made once for the module: three slots of ``ieee123-nmg`` (the balanced
feeder, six microgrids) and the day of ``tem-eulv`` (the market on the three-phase
European LV feeder). Without a browser the tests parse the page: the embedded JSON holds
every slot and every bus with its coordinates, and its values are the file's (read with
h5py, not with the code under test). With Debian's Chromium (``/usr/bin/chromium``) and
the ``playwright`` package the pages are opened headless: no console or page errors, no
request leaves the file, the slider moves the colours, the screenshot is not blank.
"""

from __future__ import annotations

import base64
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from gridcosim.outputs.overview import summary_dict
from gridcosim.outputs.view import embedded_data
from gridcosim.outputs.view_data import Feeder, layout, page_data
from gridcosim.scenarios.network import load_network
from gridcosim.simulator.cli import main

CHROMIUM = Path("/usr/bin/chromium")
RUNS = {"ieee123-nmg": {"slots": 3, "horizon": 3}, "tem-eulv": {"seed": 0}}
#: Two slots whose voltages differ (night and midday on the market's day).
SLOT_PAIRS = {"ieee123-nmg": (0, 2), "tem-eulv": (3, 12)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two trajectories and their pages (written by ``gridcosim view``)."""
    from gridcosim.scenarios import load_scenario
    from gridcosim.simulator.cosim import RunSettings
    from gridcosim.simulator.runner import run_scenario

    folder = tmp_path_factory.mktemp("view")
    out = {}
    for name, settings in RUNS.items():
        h5 = folder / f"{name}.h5"
        outcome = run_scenario(load_scenario(name), h5, RunSettings(**settings), progress=False)
        assert outcome.status == "finished", outcome.failure
        assert main(["view", str(h5), "--out", str(folder / f"{name}.html")]) == 0
        out[name] = h5
    return out


class _DataScript(HTMLParser):
    """The text of ``<script type="application/json" id="gridcosim-data">`` and every
    ``src``/``href`` of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.data, self.links = False, "", []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        self.inside = tag == "script" and given.get("id") == "gridcosim-data"
        self.links += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.data += data

    def handle_endtag(self, tag: str) -> None:
        self.inside = False


def parsed(page: Path) -> tuple[dict[str, Any], list[str]]:
    """The data a page embeds and the links it holds."""
    parser = _DataScript()
    parser.feed(page.read_text(encoding="utf-8"))
    return json.loads(parser.data), parser.links


def _close(got: list, want: np.ndarray) -> bool:
    """JSON values (``None`` for no value) equal to the file's within the rounding."""
    got_array = np.array([np.nan if v is None else v for v in got], dtype=float)
    return bool(np.allclose(got_array, want, atol=1e-6, rtol=0, equal_nan=True))


def _file_voltages(f: h5py.File, n: int) -> dict[str, dict[tuple[str, str], np.ndarray]]:
    """``variable -> (bus, phase) -> values per slot`` read straight from the file."""
    out: dict[str, dict[tuple[str, str], np.ndarray]] = {}
    if "phase_bus" in f:
        ids = f["phase_bus/ids"].asstr()[:]
        for p in "abc":
            for j, bus in enumerate(ids):
                values = f[f"phase_bus/vm_{p}_pu"][:n, j]
                out.setdefault("phase_bus/vm_pu", {})[(str(bus), p)] = values
        return out
    for var in ("vm_real_pu", "vm_pu", "vm_lin_pu"):
        for j, bus in enumerate(f["bus/ids"].asstr()[:]):
            out.setdefault(f"bus/{var}", {})[(str(bus), "bus")] = f[f"bus/{var}"][:n, j]
    return out


# ------------------------------------------------------------------ the page, parsed
@pytest.mark.parametrize("name", list(RUNS))
def test_the_page_holds_every_slot_and_bus_of_the_file(runs: dict[str, Path], name: str
                                                       ) -> None:
    data, links = parsed(runs[name].with_suffix(".html"))
    assert embedded_data(runs[name].with_suffix(".html").read_text(encoding="utf-8")) == data
    assert all(link.startswith(("data:", "#")) for link in links), links
    with h5py.File(runs[name], "r", swmr=True) as f:
        n = int(f["checkpoint/committed"][0])
        config = json.loads(f.attrs["scenario_json"])
        voltages = _file_voltages(f, n)
    assert len(data["slot_labels"]) == data["meta"]["slots"] == n > 0
    assert data["meta"]["total_cost_usd"] == pytest.approx(
        summary_dict(runs[name])["cost_usd"]["total"])
    assert (data["meta"]["v_min_pu"], data["meta"]["v_max_pu"]) == (
        config["network"]["v_min_pu"], config["network"]["v_max_pu"])
    net = load_network(config["network"]["source"])
    drawn = {b["id"]: (b["x"], b["y"]) for b in data["buses"]}
    assert drawn == {str(bus): (row.x, row.y) for bus, row in net.buses.iterrows()}
    assert data["layout"] == {"drawable": True, "note": ""}
    assert len(data["lines"]) == len(net.buses) - 1
    _check_voltages(data, voltages, n)


def _check_voltages(data: dict[str, Any], voltages: dict, n: int) -> None:
    index = {b["id"]: i for i, b in enumerate(data["buses"])}
    shown = {v["name"]: v["values"] for v in data["voltages"]}
    assert set(shown) == set(voltages)
    for var, by_node in voltages.items():
        for (bus, phase), want in by_node.items():
            key = phase
            if "." in bus:  # "bus.phase" of a three-phase co-simulation
                bus, key = bus.rsplit(".", 1)
            column = [row[index[bus]] for row in shown[var][key]]
            assert len(column) == n and _close(column, want), (var, bus, key)


def test_the_exchanges_are_the_files(runs: dict[str, Path]) -> None:
    data, _ = parsed(runs["ieee123-nmg"].with_suffix(".html"))
    with h5py.File(runs["ieee123-nmg"], "r", swmr=True) as f:
        ids = [str(i) for i in f["microgrid/ids"].asstr()[:]]
        buses = {m["name"]: str(m["bus"]) for m in json.loads(f.attrs["scenario_json"])
                 ["microgrids"]}
        rows = {r["name"]: r for r in data["exchanges"]["rows"]}
        assert list(rows) == ids
        for j, mg in enumerate(ids):
            assert rows[mg]["bus"] == buses[mg]
            assert _close(rows[mg]["p"], f["microgrid/p_ex_kw"][:, j])
            assert _close(rows[mg]["q"], f["microgrid/q_ex_kvar"][:, j])
    market, _ = parsed(runs["tem-eulv"].with_suffix(".html"))
    names = [r["name"] for r in market["exchanges"]["rows"]]
    assert names == ["G1", "G2", "wind", "PV", "upstream"]
    assert market["phases"] == ["a", "b", "c"]


def test_missing_coordinates_are_said_not_drawn(runs: dict[str, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    none = Feeder(buses=["1", "2"], lines=[("1", "2")], root="1")
    assert layout(none, ["1", "2"])["drawable"] is False
    assert "no bus coordinates" in layout(none, ["1", "2"])["note"]
    some = Feeder(buses=["1", "2", "3"], xy={"1": (0.0, 0.0), "2": (1.0, 0.0)}, root="1")
    assert layout(some, ["1", "2", "3"]) == {
        "drawable": True, "note": "1 of 3 buses have no coordinates and are not drawn."}
    monkeypatch.setattr("gridcosim.outputs.view_data.load_feeder",
                        lambda source: Feeder(note=f"the network data set {source!r} is gone"))
    data = page_data(runs["ieee123-nmg"])
    assert data["layout"]["drawable"] is False and "is gone" in data["layout"]["note"]
    assert data["lines"] == [] and len(data["buses"]) == 123  # the file's buses, no x, y
    assert all(b["x"] is None for b in data["buses"])


def test_view_refuses_to_overwrite_and_bad_inputs(runs: dict[str, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    page = runs["ieee123-nmg"].with_suffix(".html")
    before = page.read_bytes()
    assert main(["view", str(runs["ieee123-nmg"]), "--out", str(page)]) == 2
    assert "--force" in capsys.readouterr().err and page.read_bytes() == before
    assert main(["view", str(runs["ieee123-nmg"]), "--out", str(page), "--force"]) == 0
    not_h5 = tmp_path / "notes.h5"
    not_h5.write_text("not HDF5")
    for argv in (["view", str(tmp_path / "missing.h5")], ["view", str(not_h5)],
                 ["view", str(runs["ieee123-nmg"]), "--out", str(runs["ieee123-nmg"])],
                 ["view", str(runs["ieee123-nmg"]), "--out", str(tmp_path / "no/x.html")]):
        assert main(argv) == 2, argv
        assert "gridcosim:" in capsys.readouterr().err
    assert not (tmp_path / "notes.html").exists()


def _no_slots(run: Path, folder: Path) -> Path:
    """A copy of ``run`` whose committed counts are zero (a run stopped before a slot)."""
    copy = folder / "empty.h5"
    shutil.copy(run, copy)
    with h5py.File(copy, "r+") as f:
        f["checkpoint/committed"][:] = 0
    assert main(["view", str(copy)]) == 0
    return copy.with_suffix(".html")


# ------------------------------------------------------------------ in a browser
def _browser() -> Any:
    if not CHROMIUM.is_file():
        pytest.skip(f"no {CHROMIUM} (apt-get install chromium) for the browser checks")
    try:
        from playwright import sync_api
    except ImportError as err:
        pytest.skip(f"no playwright package for the browser checks ({err})")
    return sync_api


@pytest.fixture(scope="module")
def browser() -> Any:
    """Headless Debian Chromium driven by playwright (no browser download)."""
    sync_api = _browser()
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


def open_page(browser: Any, page_file: Path) -> tuple[Any, list[str]]:
    """The page opened from disk, and the list its errors and outside requests go to."""
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: problems.append(f"request {r.url}")
            if not r.url.startswith(("file:", "data:")) else None)
    page.goto(page_file.resolve().as_uri())
    return page, problems


def _fills(page: Any) -> list[str]:
    return page.eval_on_selector_all("#buses circle", "cs => cs.map(c => c.getAttribute('fill'))")


def _move_slider(page: Any, slot: int) -> None:
    page.eval_on_selector("#slot", "(e, v) => { e.value = String(v); "
                          "e.dispatchEvent(new Event('input', { bubbles: true })); }", slot)


def _distinct_colours(page: Any, png: bytes) -> int:
    """Distinct colours among a grid of the screenshot's pixels (decoded by the browser)."""
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    return page.evaluate("""async (url) => {
        const img = new Image(); img.src = url; await img.decode();
        const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data, seen = new Set();
        for (let i = 0; i < d.length; i += 4 * 97) seen.add(d[i] + ',' + d[i+1] + ',' + d[i+2]);
        return seen.size; }""", url)


@pytest.mark.parametrize("name", list(RUNS))
def test_the_page_in_a_browser(runs: dict[str, Path], browser: Any, name: str) -> None:
    page, problems = open_page(browser, runs[name].with_suffix(".html"))
    first, later = SLOT_PAIRS[name]
    _move_slider(page, first)
    before = _fills(page)
    assert len(before) == len(page_data(runs[name])["buses"])
    _move_slider(page, later)
    after = _fills(page)
    assert page.inner_text("#slot-label").startswith(f"slot {later} ")
    assert sum(a != b for a, b in zip(before, after, strict=True)) > 0
    assert _distinct_colours(page, page.screenshot()) > 20
    if name == "tem-eulv":  # a phase on its own, and the run's range as the scale
        page.select_option("#phase", "c")
        page.select_option("#scale", "range")
        assert _fills(page) != after
    page.click("#play")
    page.wait_for_function(f"document.getElementById('slot').value !== '{later}'",
                           timeout=3000)
    page.click("#play")
    page.hover("#buses circle:nth-child(20)")
    assert page.inner_text("#hover").startswith("bus ")
    assert problems == []
    page.close()


def test_a_page_without_slots_or_coordinates_opens_cleanly(
        runs: dict[str, Path], browser: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    page, problems = open_page(browser, _no_slots(runs["ieee123-nmg"], tmp_path))
    assert "no committed slot" in page.inner_text("#summary")
    page.close()
    monkeypatch.setattr("gridcosim.outputs.view_data.load_feeder",
                        lambda source: Feeder(buses=[str(b) for b in range(1, 124)], root="1"))
    assert main(["view", str(runs["tem-eulv"]), "--out", str(tmp_path / "m.html")]) == 0
    page, more = open_page(browser, tmp_path / "m.html")
    assert "no bus coordinates" in page.inner_text("#layout-note")
    assert page.eval_on_selector_all("#bus-table tr", "rows => rows.length") > 1
    assert problems + more == []
    page.close()
