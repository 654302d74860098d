"""brandkit: turn a small business's own writing into a model that writes in its brand voice.

The stages, in the order data flows: collect -> clean -> examples -> train -> compare -> report,
over the shared config (and, for training, hardware, chat and models). Each stage has a small public
API; notebooks, the `brandkit` CLI and the tests all call the same functions. The README's Layout
section names every room. To write with a tuned model: `brandkit.write(request, run_dir=...)`.
"""

from .config import (BrandKit, BrandkitError, CleanConfig, CollectConfig, CompareConfig, ExamplesConfig,
                     RunConfig, TrainConfig, sample_brands)
from .writer import write

__version__ = "0.1.0"

__all__ = ["BrandKit", "BrandkitError", "CleanConfig", "CollectConfig", "CompareConfig", "ExamplesConfig",
           "RunConfig", "TrainConfig", "sample_brands", "write", "__version__"]
