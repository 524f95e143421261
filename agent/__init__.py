"""The pipeline: repository index, search tools, stages, model runtimes, the trajectory, the CLI."""
