"""Convert the raw IEEE 123-node OpenDSS feeder into gridcosim's CSV network data.

Usage::

    python -m scenarios.tools.convert_ieee123 \
        --source scenarios/data/ieee123/opendss --out scenarios/data/ieee123

The result is a balanced positive-sequence equivalent (see ``scenarios/data/ieee123/README.md``
for every modelling decision). The parser handles the subset of the OpenDSS language used by
the feeder: CRLF line ends, ``!`` comments (also trailing ones), ``~`` continuation lines,
case-insensitive keys, ``Redirect`` and lower-triangular matrices in ``[...]`` or ``(...)``.

The data are cross-checked against the independent Kersting CSV tables (``kersting_csv/``).
Two line lengths are known to differ (L81 80-81: 175 ft here vs 475 ft there; L89 89-90:
250 ft here vs 225 ft there). We keep the OpenDSS values, so the cross-check prints them.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

BASE_KVA = 1000.0
BASE_KV = 4.16
Z_BASE_OHM = BASE_KV**2 / (BASE_KVA / 1000.0)  # 17.3056 ohm

#: Buses left out: substation, its regulator, XFM1's secondary and open-switch dummies.
EXCLUDED_BUSES = frozenset({"150", "150r", "149", "610", "300_OPEN", "94_OPEN"})
#: Voltage regulators held at neutral tap: the r-bus is merged into its base bus.
MERGED_BUSES = {"9r": "9", "25r": "25", "160r": "160"}
#: Buses beyond 1..114 renumbered to follow the seed paper's 1..123 numbering.
RENUMBERED = {
    "135": 115, "151": 116, "152": 117, "160": 118, "197": 119,
    "250": 120, "300": 121, "450": 122, "61s": 123,
}  # fmt: skip
ROOT_NAME = "1"
#: Impedance factor of single- and two-phase laterals in the balanced equivalent: a
#: lateral's load spread over three phases gives a third (two-phase: two thirds) of its
#: drop and losses, so its positive-sequence impedance is scaled by 3 (1.5) to keep them
#: (docs/three_phase.md: the error against OpenDSS falls from 0.025 to 0.019 p.u.).
LATERAL_FACTOR = {1: 3.0, 2: 1.5}
LOAD_MODELS = {1: "PQ", 2: "Z", 5: "I"}
FT_PER_KFT = 1000.0
_PROP_RE = re.compile(r"([\w%]+)\s*=\s*(\[[^\]]*\]|\([^)]*\)|\"[^\"]*\"|'[^']*'|\S+)")


@dataclass(frozen=True)
class DssObject:
    """One ``New Class.Name key=value ...`` definition with lower-cased keys."""

    cls: str
    name: str
    props: dict[str, str]


def strip_comment(line: str) -> str:
    """Remove an OpenDSS ``!`` or ``//`` comment (whole-line or trailing) from a line.

    Args:
        line: One raw text line.

    Returns:
        The line without its comment and surrounding whitespace.

    """
    for marker in ("!", "//"):
        line = line.split(marker, 1)[0]
    return line.strip()


def read_commands(path: Path) -> list[str]:
    """Read a DSS file into logical commands, following ``Redirect`` and ``~`` lines.

    Args:
        path: DSS file to read; redirected files are resolved relative to its folder.

    Returns:
        One string per command, with continuation lines appended to their command.

    """
    commands: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = strip_comment(raw.rstrip("\r"))
        if not line:
            continue
        if line.startswith("~"):
            commands[-1] += " " + line[1:]
        elif line.lower().startswith("more "):
            commands[-1] += " " + line[5:]
        elif line.lower().startswith("redirect"):
            commands.extend(read_commands(path.parent / line.split(None, 1)[1].strip()))
        else:
            commands.append(line)
    return commands


def parse_object(command: str) -> DssObject | None:
    """Parse a ``New Class.Name key=value ...`` command.

    Args:
        command: One logical command.

    Returns:
        The object, or ``None`` for commands other than ``New`` (``Set``, ``Clear``, ...).
        Repeated keys (e.g. transformer windings) keep their last value.

    """
    parts = command.split(None, 2)
    if len(parts) < 2 or parts[0].lower() != "new":
        return None
    head = parts[1].split("=", 1)[-1]  # "object=circuit.x" or "Line.L1"
    cls, name = head.split(".", 1)
    body = parts[2] if len(parts) > 2 else ""
    props = {key.lower(): value for key, value in _PROP_RE.findall(body)}
    return DssObject(cls.lower(), name, props)


def load_objects(master: Path) -> list[DssObject]:
    """Parse every ``New`` object of a master file and the files it redirects to.

    Args:
        master: The master DSS file.

    Returns:
        The objects in file order.

    """
    objects = (parse_object(command) for command in read_commands(master))
    return [obj for obj in objects if obj is not None]


def parse_matrix(text: str) -> np.ndarray:
    """Parse a lower-triangular OpenDSS matrix ``[a | b c | d e f]`` into a full matrix.

    Args:
        text: Matrix text including its brackets or parentheses.

    Returns:
        The symmetric ``n x n`` matrix.

    """
    rows = [[float(v) for v in row.split()] for row in text.strip("[]() ").split("|")]
    n = len(rows)
    full = np.zeros((n, n))
    for i, row in enumerate(rows):
        full[i, : i + 1] = row
        full[: i + 1, i] = row
    return full


def positive_sequence(matrix: np.ndarray) -> float:
    """Balanced positive-sequence value ``Zs - Zm`` of a phase matrix.

    Args:
        matrix: Symmetric ``n x n`` phase matrix (n = 1, 2 or 3).

    Returns:
        Mean diagonal minus mean off-diagonal; the self value for a 1-phase matrix.

    """
    n = matrix.shape[0]
    if n == 1:
        return float(matrix[0, 0])
    self_mean = float(np.trace(matrix)) / n
    mutual_mean = (float(matrix.sum()) - float(np.trace(matrix))) / (n * (n - 1))
    return self_mean - mutual_mean


def linecode_constants(objects: list[DssObject]) -> dict[str, tuple[float, float, float]]:
    """Positive-sequence constants of every line code.

    Args:
        objects: Parsed DSS objects.

    Returns:
        Line code name -> (r1 ohm/kft, x1 ohm/kft, c1 nF/kft).

    """
    codes: dict[str, tuple[float, float, float]] = {}
    for obj in objects:
        if obj.cls != "linecode":
            continue
        units = obj.props.get("units", "kft").lower()
        if units != "kft":
            raise ValueError(f"linecode {obj.name}: units {units!r}, expected kft")
        r1, x1, c1 = (
            positive_sequence(parse_matrix(obj.props[k])) for k in ("rmatrix", "xmatrix", "cmatrix")
        )
        codes[obj.name.lower()] = (r1, x1, c1)
    return codes


def bus_name(spec: str) -> str:
    """Bus name of a ``name.node.node`` bus spec (split on the first dot only).

    Args:
        spec: OpenDSS bus spec such as ``25r.1.3``.

    Returns:
        The bus name with the regulator r-buses merged into their base bus.

    """
    name = spec.split(".", 1)[0]
    return MERGED_BUSES.get(name, name)


def bus_id(name: str) -> int:
    """Project bus id (1..123) of an IEEE bus name.

    Args:
        name: IEEE bus name after merging (e.g. ``"35"``, ``"61s"``).

    Returns:
        The integer id.

    """
    return RENUMBERED[name] if name in RENUMBERED else int(name)


def line_electricals(
    obj: DssObject, codes: dict[str, tuple[float, float, float]]
) -> dict[str, object]:
    """Kind, line code, length and total r/x/c of one ``Line`` object.

    Args:
        obj: A ``Line`` object.
        codes: Positive-sequence line code constants.

    Returns:
        The electrical fields of a branch record; switches (``switch=yes``, whose
        ``Length=0.001`` has no units) get zero length and impedance.

    """
    if obj.props.get("switch", "no").lower() in ("yes", "true", "y", "t"):
        zero = {"length_kft": 0.0, "r_ohm": 0.0, "x_ohm": 0.0, "c_nf": 0.0}
        return {"kind": "switch", "linecode": "", **zero}
    if obj.props.get("units", "kft").lower() != "kft":
        raise ValueError(f"line {obj.name}: units other than kft")
    length = float(obj.props["length"])
    r1, x1, c1 = codes[obj.props["linecode"].lower()]
    factor = LATERAL_FACTOR.get(int(obj.props.get("phases", "3")), 1.0)
    return {
        "kind": "line",
        "linecode": obj.props["linecode"],
        "length_kft": length,
        "r_ohm": r1 * length * factor,
        "x_ohm": x1 * length * factor,
        "c_nf": c1 * length,
    }


def branch_rows(
    objects: list[DssObject], codes: dict[str, tuple[float, float, float]]
) -> list[dict[str, object]]:
    """Kept lines and closed switches as unoriented branch records (IEEE bus names).

    Lines touching an excluded bus (L115, Sw1, and the open switches Sw7/Sw8) are dropped.

    Args:
        objects: Parsed DSS objects.
        codes: Positive-sequence line code constants.

    Returns:
        Records with branch, bus names a/b, kind, linecode, length and totals.

    """
    rows: list[dict[str, object]] = []
    for obj in objects:
        if obj.cls != "line":
            continue
        a, b = bus_name(obj.props["bus1"]), bus_name(obj.props["bus2"])
        if {a, b} & EXCLUDED_BUSES:
            print(f"  dropped {obj.name} ({a}-{b})")
            continue
        rows.append({"branch": obj.name, "a": a, "b": b, **line_electricals(obj, codes)})
    return rows


def orient_from_root(rows: list[dict[str, object]], root: str) -> dict[str, str]:
    """Breadth-first parent map of the branch graph from the root bus.

    Args:
        rows: Branch records with bus names ``a`` and ``b``.
        root: Root bus name.

    Returns:
        Bus name -> parent bus name (the root maps to itself).

    Raises:
        ValueError: If the graph is not a spanning tree.

    """
    adjacency: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        adjacency[str(row["a"])].append(str(row["b"]))
        adjacency[str(row["b"])].append(str(row["a"]))
    parent, queue = {root: root}, [root]
    for bus in queue:
        for other in adjacency[bus]:
            if other in parent and parent[bus] != other:
                raise ValueError(f"loop at {bus}-{other}")
            if other not in parent:
                parent[other] = bus
                queue.append(other)
    if len(parent) != len(adjacency) or len(rows) != len(parent) - 1:
        raise ValueError("branch graph is not a connected tree")
    return parent


def branches_frame(rows: list[dict[str, object]], parent: dict[str, str]) -> pd.DataFrame:
    """Branch table oriented parent -> child with project bus ids and per-unit values.

    Args:
        rows: Branch records from :func:`branch_rows`.
        parent: Parent map from :func:`orient_from_root`.

    Returns:
        The ``branches.csv`` table.

    """
    records = []
    for row in rows:
        a, b = str(row["a"]), str(row["b"])
        src, dst = (a, b) if parent[b] == a else (b, a)
        records.append(
            {
                "branch": row["branch"],
                "from_bus": bus_id(src),
                "to_bus": bus_id(dst),
                **{k: row[k] for k in ("kind", "linecode", "length_kft", "r_ohm", "x_ohm", "c_nf")},
            }
        )
    frame = pd.DataFrame.from_records(records)
    frame["r_pu"] = frame["r_ohm"] / Z_BASE_OHM
    frame["x_pu"] = frame["x_ohm"] / Z_BASE_OHM
    return frame


def buses_frame(parent: dict[str, str], coords_file: Path) -> pd.DataFrame:
    """Bus table with ids, IEEE names and BusCoords.dat coordinates.

    Args:
        parent: Parent map whose keys are the kept bus names.
        coords_file: ``BusCoords.dat``.

    Returns:
        The ``buses.csv`` table sorted by bus id.

    """
    coords: dict[str, tuple[float, float]] = {}
    for line in coords_file.read_text(encoding="utf-8").splitlines():
        fields = strip_comment(line.replace(",", " ")).split()
        if len(fields) >= 3:
            coords[fields[0].lower()] = (float(fields[1]), float(fields[2]))
    records = [
        {
            "bus": bus_id(name),
            "name_ieee": name,
            "x": coords.get(name.lower(), (np.nan, np.nan))[0],
            "y": coords.get(name.lower(), (np.nan, np.nan))[1],
        }
        for name in parent
    ]
    return pd.DataFrame.from_records(records).sort_values("bus").reset_index(drop=True)


def loads_frame(objects: list[DssObject]) -> pd.DataFrame:
    """Per-bus sum of all load phases (delta loads count fully) with the dominant model.

    Args:
        objects: Parsed DSS objects.

    Returns:
        The ``loads.csv`` table; ``model`` is the OpenDSS model carrying most kW at the bus.

    """
    records = []
    for obj in objects:
        if obj.cls == "load":
            model = LOAD_MODELS[int(obj.props.get("model", "1"))]
            records.append(
                {
                    "bus": bus_id(bus_name(obj.props["bus1"])),
                    "model": model,
                    "p_kw": float(obj.props["kw"]),
                    "q_kvar": float(obj.props["kvar"]),
                }
            )
    raw = pd.DataFrame.from_records(records)
    totals = raw.groupby("bus")[["p_kw", "q_kvar"]].sum()
    by_model = raw.groupby(["bus", "model"])["p_kw"].sum().reset_index()
    dominant = by_model.sort_values("p_kw", ascending=False).drop_duplicates("bus")
    totals["model"] = dominant.set_index("bus")["model"]
    return totals.reset_index()


def shunts_frame(objects: list[DssObject]) -> pd.DataFrame:
    """Per-bus capacitor kvar at nominal voltage.

    Args:
        objects: Parsed DSS objects.

    Returns:
        The ``shunts.csv`` table.

    """
    records = [
        {"bus": bus_id(bus_name(obj.props["bus1"])), "q_kvar": float(obj.props["kvar"])}
        for obj in objects
        if obj.cls == "capacitor"
    ]
    frame = pd.DataFrame.from_records(records)
    return frame.groupby("bus", as_index=False)["q_kvar"].sum()


def kersting_name(name: str) -> str:
    """Map a Kersting CSV bus name to the merged IEEE name used here.

    Args:
        name: Bus name in ``kersting_csv`` (701..705 stand for regulator/transformer buses).

    Returns:
        The equivalent bus name after merging regulators.

    """
    aliases = {"701": "150r", "702": "9r", "703": "25r", "704": "160r", "705": "61s"}
    return MERGED_BUSES.get(aliases.get(name, name), aliases.get(name, name))


def cross_check_buses(kersting: Path, names: set[str]) -> list[str]:
    """Compare the kept bus set with the Kersting segment table.

    Args:
        kersting: The ``kersting_csv`` folder.
        names: Kept bus names (merged IEEE names).

    Returns:
        Discrepancy messages (empty if the sets agree).

    """
    segments = pd.read_csv(kersting / "line_segments.csv", dtype=str)
    open_cfg = set(pd.read_csv(kersting / "switches.csv").query("state == 'open'")["config"])
    closed = segments[~segments["config"].isin(open_cfg)]
    other = {kersting_name(n.strip()) for n in pd.concat([closed["bus1"], closed["bus2"]])}
    other -= EXCLUDED_BUSES
    msgs = [f"bus {n} only in OpenDSS" for n in sorted(names - other)]
    return msgs + [f"bus {n} only in kersting_csv" for n in sorted(other - names)]


def cross_check_lengths(kersting: Path, rows: list[dict[str, object]]) -> list[str]:
    """Compare line lengths with the Kersting segment table.

    Args:
        kersting: The ``kersting_csv`` folder.
        rows: Branch records from :func:`branch_rows`.

    Returns:
        Discrepancy messages (L81 and L89 are known to differ; OpenDSS values are kept).

    """
    segments = pd.read_csv(kersting / "line_segments.csv", dtype={"bus1": str, "bus2": str})
    lengths = {
        frozenset((kersting_name(a), kersting_name(b))): float(ft)
        for a, b, ft in zip(segments["bus1"], segments["bus2"], segments["length"], strict=True)
    }
    msgs = []
    for row in rows:
        key = frozenset((str(row["a"]), str(row["b"])))
        ours, theirs = float(row["length_kft"]) * FT_PER_KFT, lengths.get(key)
        if theirs is None:
            msgs.append(f"{row['branch']}: no segment {sorted(key)} in kersting_csv")
        elif row["kind"] == "line" and abs(ours - theirs) > 1e-6:
            msgs.append(f"{row['branch']} {sorted(key)}: {ours:g} ft (kept) vs {theirs:g} ft")
    return msgs


def cross_check_loads(kersting: Path, loads: pd.DataFrame) -> list[str]:
    """Compare the per-bus loads with the Kersting spot-load table.

    Args:
        kersting: The ``kersting_csv`` folder.
        loads: The ``loads.csv`` table.

    Returns:
        Discrepancy messages (empty if every bus total matches).

    """
    spot = pd.read_csv(kersting / "spot_loads.csv", dtype={"bus": str})
    spot["bus"] = [bus_id(kersting_name(n)) for n in spot["bus"]]
    spot["p_kw"] = spot[["kw_ph1", "kw_ph2", "kw_ph3"]].sum(axis=1)
    spot["q_kvar"] = spot[["kvar_ph1", "kvar_ph2", "kvar_ph3"]].sum(axis=1)
    both = loads.merge(spot, on="bus", how="outer", suffixes=("", "_k"), indicator="found")
    msgs = []
    for row in both.itertuples():
        if row.found != "both" or abs(row.p_kw - row.p_kw_k) + abs(row.q_kvar - row.q_kvar_k):
            msgs.append(
                f"load at bus {row.bus}: {row.p_kw}/{row.q_kvar} vs "
                f"{row.p_kw_k}/{row.q_kvar_k} kW/kvar ({row.found})"
            )
    return msgs


def cross_check(
    kersting: Path, rows: list[dict[str, object]], names: set[str], loads: pd.DataFrame
) -> None:
    """Run the Kersting cross-checks and print every discrepancy.

    Args:
        kersting: The ``kersting_csv`` folder (skipped with a note if missing).
        rows: Branch records.
        names: Kept bus names.
        loads: The ``loads.csv`` table.

    """
    if not kersting.is_dir():
        print(f"cross-check skipped: {kersting} not found")
        return
    msgs = (
        cross_check_buses(kersting, names)
        + cross_check_lengths(kersting, rows)
        + cross_check_loads(kersting, loads)
    )
    print(f"cross-check against {kersting.name}: {len(msgs)} discrepancies")
    for msg in msgs:
        print(f"  {msg}")


def convert(source: Path, out: Path) -> dict[str, pd.DataFrame]:
    """Convert the OpenDSS feeder in ``source`` and write the CSV tables to ``out``.

    Args:
        source: Folder with ``IEEE123Master.dss`` and friends.
        out: Output folder (created if missing).

    Returns:
        The written tables by file stem.

    """
    objects = load_objects(source / "IEEE123Master.dss")
    rows = branch_rows(objects, linecode_constants(objects))
    parent = orient_from_root(rows, ROOT_NAME)
    tables = {
        "buses": buses_frame(parent, source / "BusCoords.dat"),
        "branches": branches_frame(rows, parent),
        "loads": loads_frame(objects),
        "shunts": shunts_frame(objects),
    }
    cross_check(source / "kersting_csv", rows, set(parent), tables["loads"])
    out.mkdir(parents=True, exist_ok=True)
    for stem, frame in tables.items():
        frame.to_csv(out / f"{stem}.csv", index=False, float_format="%.10g", lineterminator="\n")
    return tables


def summarize(tables: dict[str, pd.DataFrame]) -> None:
    """Print counts and totals of the converted tables.

    Args:
        tables: Tables returned by :func:`convert`.

    """
    loads, branches = tables["loads"], tables["branches"]
    print(
        f"buses: {len(tables['buses'])}, branches: {len(branches)} "
        f"({(branches['kind'] == 'switch').sum()} switches)"
    )
    print(
        f"load: {loads['p_kw'].sum():g} kW / {loads['q_kvar'].sum():g} kvar "
        f"on {len(loads)} buses; shunts: {tables['shunts']['q_kvar'].sum():g} kvar"
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point.

    Args:
        argv: Arguments (defaults to ``sys.argv[1:]``).

    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("scenarios/data/ieee123/opendss"))
    parser.add_argument("--out", type=Path, default=Path("scenarios/data/ieee123"))
    args = parser.parse_args(argv)
    summarize(convert(args.source, args.out))


if __name__ == "__main__":
    main()
