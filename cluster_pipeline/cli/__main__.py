import sys

from cluster_pipeline.cli import main

sys.exit(main())
