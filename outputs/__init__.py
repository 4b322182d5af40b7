"""What a run emits: tables, HDF5 trajectories (writer and reader)."""
