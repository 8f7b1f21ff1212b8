#!/bin/bash
# A regsim sweep fanned out over a Slurm job array: array task I runs shard I of N (the runs
# r with r % N == I) and writes OUT/shard-I-of-N.json; a dependent job merges the shards into
# exactly what `regsim sweep` writes on one machine.
#
# From the repository root, on a file system every node sees, with regsim built
# (cargo build --release):
#
#   jobid=$(sbatch --parsable deploy/slurm-sweep.sh scenarios/sweeps/detection.toml)
#   sbatch --dependency=afterok:$jobid --wrap \
#       "target/release/regsim merge reports/sweeps/detection --out reports/sweeps/detection"
#
# N is the array size: change --array=0-7 below (or pass --array=0-15 to sbatch) and nothing
# else; `--shard auto` reads SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and
# SLURM_ARRAY_TASK_COUNT (ids may start at 0 or 1, steps are allowed). A shard exits 0 when
# its file is written, even if some of its runs failed an invariant: the merge lists them
# (with the command that reproduces each) and exits 1.
#
#SBATCH --job-name=regsim-sweep
#SBATCH --array=0-7
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=4
#SBATCH --mem=4G
#SBATCH --time=01:00:00
#SBATCH --output=regsim-sweep-%A_%a.log
set -euo pipefail
sweep="${1:-scenarios/sweeps/detection.toml}"
out="${2:-reports/sweeps/$(basename "$sweep" .toml)}"
regsim="${REGSIM:-target/release/regsim}"
exec "$regsim" sweep "$sweep" --shard auto --jobs "${SLURM_CPUS_PER_TASK:-1}" --out "$out"
