"""What a run emits: tables, HDF5 trajectories (writer and reader)."""

from outputs.hdf5 import TrajectoryWriter
from outputs.reader import Trajectory, read, summary

__all__ = ["Trajectory", "TrajectoryWriter", "read", "summary"]
