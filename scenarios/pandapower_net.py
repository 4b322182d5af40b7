"""Build a balanced pandapower network from :class:`scenarios.network.NetworkData`.

This is the only ``scenarios`` module that imports pandapower. Conventions:

* pandapower bus index = project bus id (also stored in the ``bus_id`` column), all buses at
  ``network.base_kv``; use :func:`bus_index` rather than relying on the identity.
* ext_grid (slack) at the root bus with ``vm_pu = v_ref_pu``.
* ``line`` branches -> ``net.line`` from the positive-sequence totals (per-km values); the
  data carry no thermal ratings, so ``max_i_ka`` is set to a large 10 kA (never binding).
* ``switch`` branches -> closed bus-bus switches (``et="b"``), which pandapower fuses.
* loads -> constant-PQ ``net.load`` (index = bus id); capacitors -> ``net.shunt`` with
  negative ``q_mvar`` (pandapower counts shunt q as consumption; index = bus id).
"""

from __future__ import annotations

import pandapower as pp
from pandapower.auxiliary import pandapowerNet

from gridcosim.scenarios.network import NetworkData

KM_PER_KFT = 0.3048
#: No line ratings in the data: a large 10 kA rating, so loading results carry no meaning.
MAX_I_KA_PLACEHOLDER = 10.0


def _add_buses(net: pandapowerNet, network: NetworkData) -> None:
    ids = [int(b) for b in network.bus_ids]
    pp.create_buses(net, len(ids), vn_kv=network.base_kv, index=ids,
                    name=[str(b) for b in ids], bus_id=ids,
                    name_ieee=[str(network.buses.at[b, "name_ieee"]) for b in ids])


def _add_branches(net: pandapowerNet, network: NetworkData) -> None:
    """Lines and closed bus-bus switches, each table in the branches' order (one call each)."""
    br = network.branches
    switch = br["kind"] == "switch"
    if switch.any():
        sw = br[switch]
        pp.create_switches(net, buses=sw["from_bus"].astype(int).tolist(),
                           elements=sw["to_bus"].astype(int).tolist(), et="b", closed=True,
                           name=[str(label) for label in sw.index])
    lines = br[~switch]
    if lines.empty:
        return
    length_km = lines["length_kft"].to_numpy(dtype=float) * KM_PER_KFT
    pp.create_lines_from_parameters(
        net,
        from_buses=lines["from_bus"].astype(int).tolist(),
        to_buses=lines["to_bus"].astype(int).tolist(),
        length_km=length_km,
        r_ohm_per_km=lines["r_ohm"].to_numpy(dtype=float) / length_km,
        x_ohm_per_km=lines["x_ohm"].to_numpy(dtype=float) / length_km,
        c_nf_per_km=lines["c_nf"].to_numpy(dtype=float) / length_km,
        max_i_ka=MAX_I_KA_PLACEHOLDER,
        name=[str(label) for label in lines.index],
    )


def _add_injections(net: pandapowerNet, network: NetworkData) -> None:
    _add_loads(net, network)
    buses = [int(b) for b in network.shunts.index.unique()]
    if buses:
        q_shunt = network.shunt_q_kvar
        pp.create_shunts(net, buses=buses, q_mvar=[-q_shunt[b] / 1000.0 for b in buses],
                         p_mw=0.0, vn_kv=network.base_kv, name=[f"cap {b}" for b in buses],
                         index=buses)


def _add_loads(net: pandapowerNet, network: NetworkData) -> None:
    """One constant-PQ load per load bus at its nominal load (index = bus id)."""
    buses = [int(b) for b in network.loads.index.unique()]
    if buses:
        p_kw, q_kvar = network.load_p_kw, network.load_q_kvar
        pp.create_loads(net, buses=buses, p_mw=[p_kw[b] / 1000.0 for b in buses],
                        q_mvar=[q_kvar[b] / 1000.0 for b in buses],
                        name=[f"load {b}" for b in buses], index=buses)


def build_pandapower_net(network: NetworkData, *, v_ref_pu: float = 1.0) -> pandapowerNet:
    """Create the balanced pandapower model of ``network``.

    Args:
        network: Network data, e.g. from :func:`scenarios.network.load_network`.
        v_ref_pu: Slack voltage magnitude at the root bus.

    Returns:
        A pandapower net ready for ``pp.runpp``. A network read from a pandapower source
        gets that source net (:func:`source_net`).

    """
    if network.ac_net_json is not None:
        return source_net(network, v_ref_pu=v_ref_pu)
    net = pp.create_empty_network(name=network.name, f_hz=60.0, sn_mva=network.base_kva / 1000.0)
    _add_buses(net, network)
    _add_branches(net, network)
    _add_injections(net, network)
    pp.create_ext_grid(net, bus=network.root_bus, vm_pu=v_ref_pu, va_degree=0.0, name="substation")
    return net


def source_net(network: NetworkData, *, v_ref_pu: float = 1.0) -> pandapowerNet:
    """The source pandapower net of ``network``, prepared for the validator.

    Everything the source models stays (transformer taps and magnetising branches, line
    charging, switches, out-of-service elements); what the scenario sets instead is
    replaced: one constant-PQ load per load bus (index = bus id) at the network's nominal
    load, no static generators (the microgrids' and SVCs' sgens are added by the
    validator), the ext_grid at ``v_ref_pu``, lines named by their branch label
    (``line <index>``), buses given a ``bus_id`` column, and the per-unit power base.
    The net is cut to the feeder that was read (:func:`_keep_tree`), so that pandapower's
    internal arrays list exactly its buses and branches.
    """
    net = pp.from_json_string(network.ac_net_json)
    _keep_tree(net, network)
    net.sn_mva = network.base_kva / 1000.0
    for table in ("load", "sgen"):
        net[table] = net[table].iloc[0:0]
    _add_loads(net, network)
    net.ext_grid["vm_pu"] = v_ref_pu
    net.ext_grid["va_degree"] = 0.0
    net.line["name"] = [f"line {idx}" for idx in net.line.index]
    net.bus["bus_id"] = net.bus.index.astype(int)
    return net


def _keep_tree(net: pandapowerNet, network: NetworkData) -> None:
    """Drop the buses the feeder does not have, out-of-service and switched-off branches."""
    import pandapower.toolbox as tb

    tb.drop_buses(net, net.bus.index.difference(list(network.bus_ids)))
    sw = net.switch
    opened = sw[~sw["closed"].astype(bool)]
    for table, et, drop in (("line", "l", tb.drop_lines), ("trafo", "t", tb.drop_trafos)):
        frame = net[table]
        off = frame.index[~frame["in_service"].astype(bool)].union(
            opened.loc[opened["et"] == et, "element"].astype(int).unique())
        drop(net, off.intersection(frame.index))
    net.switch = net.switch[net.switch["closed"].astype(bool)]
    net.bus["in_service"] = True


def bus_index(net: pandapowerNet) -> dict[int, int]:
    """Map project bus ids to pandapower bus indices.

    Args:
        net: A net built by :func:`build_pandapower_net`.

    Returns:
        Bus id -> ``net.bus`` index.

    """
    return {int(bus_id): int(idx) for idx, bus_id in net.bus["bus_id"].items()}
