"""padocc-compile: declarative archive workflows compiled to Snakemake.

Stages, in the one direction data flows (no stage imports a later one):
  core     - diagnostics and the status-file format, shared by every stage
  load     - YAML with source positions -> raw types mirroring the files
  model    - raw types -> the frozen, checked, resolved model
  render   - model -> generated Snakefiles and build artifacts
  runtime  - helpers that generated Snakefiles and jobs call at run time
  commands - one module per subcommand, each one function returning an exit code
"""

__version__ = "0.1.0"
MANIFEST_VERSION = 1
