"""What a run emits: tables, HDF5 trajectories (writer and reader), figures (``plots``)."""

from gridcosim.outputs.hdf5 import TrajectoryWriter
from gridcosim.outputs.reader import Trajectory, read, summary

__all__ = ["Trajectory", "TrajectoryWriter", "read", "summary"]
