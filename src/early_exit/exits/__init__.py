"""Exit decisions from stored outputs: policies, calibration, metrics, sweeps."""
