"""The config checker (the top floor): what the schema cannot express, hub copies, the
SLURM pre-flight check and SplitEE settings, checked when the Snakefile loads."""
