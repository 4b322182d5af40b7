"""Reference pandapower nets for the validator tests: a fresh net, loads of a point written in."""

from __future__ import annotations

import pandapower as pp

from gridcosim.scenarios.network import NetworkData
from gridcosim.scenarios.pandapower_net import build_pandapower_net
from gridcosim.simulator.validation.operating_point import OperatingPoint


def net_with_loads(network: NetworkData, point: OperatingPoint) -> pp.pandapowerNet:
    """A fresh net (slack at 1.0 p.u.) whose loads are the point's bus loads."""
    net = build_pandapower_net(network, v_ref_pu=1.0)
    row = {bus: k for k, bus in enumerate(network.bus_ids)}
    for idx in net.load.index:
        k = row[int(net.load.at[idx, "bus"])]
        net.load.at[idx, "p_mw"] = point.load_kw[k] / 1000.0
        net.load.at[idx, "q_mvar"] = point.load_kvar[k] / 1000.0
    return net
