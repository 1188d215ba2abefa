"""The stage runner: contract (what a stage declares), fingerprints, plan and execution."""
