"""Request policies: one module, one job, each a small testable step of the pipeline."""
