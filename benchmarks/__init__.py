"""The package's benchmarks: scripts run from the repository root as modules.

    python -m benchmarks.privacy_utility --quick --out /tmp/pu
    python -m benchmarks.render_results --check

Shared by the scripts: `benchmarks.common` (their command-line arguments, no
TensorFlow), `benchmarks.data` (data sets, splits, the MLP),
`benchmarks.baselines` (the defences the package does not ship, registered in
`keras_adamixup.recipes`) and `benchmarks.names` (benchmark recipe names, e.g.
``teachers_plateau_16_2_ckpt``, as entries of that table). docs/BENCHMARKS.md
has every measurement and the command that made it.
"""
